/**
 * Python's definitions and imports, found without a query.
 *
 * A query (or a walk) visits every node of the tree, and in Python that costs about a quarter of
 * the parse itself. But every Python definition and import begins with a keyword: `def`, `class`,
 * `lambda` (`handler = lambda event: …`), `import` (`import x`, `from x import y`). A regular
 * expression finds those words in the text, and the tree says what each one is: the word is a
 * keyword token whose parent is the definition or statement, or it is part of a string, a comment
 * or a longer name and is dropped. So the tree is consulted a few times per definition instead of
 * once per node, and the result is what the query found (docs/code-analysis.md):
 *
 *   (function_definition name: (identifier) @name) @def.function
 *   (class_definition name: (identifier) @name) @def.class
 *   (assignment left: (identifier) @name right: (lambda)) @def.function
 *   (module (expression_statement (assignment left: (identifier) @name) @def.const))
 *   (import_statement) / (import_from_statement)
 */
import type { Node, Tree } from 'web-tree-sitter';
import { detach, textOf, type Found, type RawDefinition } from './symbols.ts';
import type { ImportRef, SymbolKind } from './types.ts';

const KEYWORDS = /\b(?:def|class|lambda|import)\b/g;

// Priorities, as the query's pattern order had them: a module-level `F = lambda: 0` is a function, not a constant.
const FUNCTION = 0;
const CLASS = 1;
const LAMBDA = 2;
const CONSTANT = 3;

function pythonImports(source: string, statement: Node, type: string): ImportRef[] {
  const line = statement.startPosition.row + 1;
  const nameOf = (node: Node) => {
    if (node.type !== 'aliased_import') return textOf(source, node);
    const name = node.childForFieldName('name');
    return name ? textOf(source, name) : '';
  };
  if (type === 'import_statement') {
    return statement.childrenForFieldName('name').flatMap((node) => (node ? [{ specifier: detach(nameOf(node)), line }] : []));
  }
  const module = statement.childForFieldName('module_name');
  if (!module) return [];
  const names = statement
    .childrenForFieldName('name')
    .map((node) => (node ? detach(nameOf(node)) : ''))
    .filter(Boolean);
  return [{ specifier: detach(textOf(source, module).replace(/\s+/g, '')), line, ...(names.length > 0 ? { names } : {}) }];
}

export function findPython(tree: Tree, source: string): Found {
  const root = tree.rootNode;
  const definitions: RawDefinition[] = [];
  const imports: ImportRef[] = [];
  const add = (def: Node, type: string, nameNode: Node | null, kind: SymbolKind, priority: number) => {
    if (nameNode) definitions.push({ def, type, nameNode, kind, start: def.startIndex, end: def.endIndex, priority });
  };

  for (const match of source.matchAll(KEYWORDS)) {
    const keyword = match[0];
    // The smallest node spanning the word: the keyword token itself, or the string, comment or name it is part of.
    const token = root.descendantForIndex(match.index, match.index + keyword.length);
    if (token?.type !== keyword) continue;
    const owner = token.parent;
    if (!owner) continue;
    const ownerType = owner.type;
    if (keyword === 'def') {
      if (ownerType === 'function_definition') add(owner, ownerType, owner.childForFieldName('name'), 'function', FUNCTION);
    } else if (keyword === 'class') {
      if (ownerType === 'class_definition') add(owner, ownerType, owner.childForFieldName('name'), 'class', CLASS);
    } else if (keyword === 'lambda') {
      // The token's parent is the lambda expression; a definition when it is the whole right side of `name = …`.
      const assignment = ownerType === 'lambda' ? owner.parent : null;
      if (assignment?.type === 'assignment' && assignment.childForFieldName('right')?.id === owner.id) {
        const left = assignment.childForFieldName('left');
        if (left?.type === 'identifier') add(assignment, 'assignment', left, 'function', LAMBDA);
      }
    } else if (ownerType === 'import_statement' || ownerType === 'import_from_statement') {
      // One `import` token per statement (`from __future__ import …` is another statement type, not an import).
      imports.push(...pythonImports(source, owner, ownerType));
    }
  }

  // Module-level `NAME = …`. Only a name written as a constant becomes a symbol (languages.ts), so
  // only statements starting with a capital letter are looked at.
  for (const statement of root.namedChildren) {
    if (!statement || !/[A-Z]/.test(source[statement.startIndex] ?? '') || statement.type !== 'expression_statement') continue;
    for (const child of statement.namedChildren) {
      if (child?.type !== 'assignment') continue;
      const left = child.childForFieldName('left');
      if (left?.type === 'identifier') add(child, 'assignment', left, 'const', CONSTANT);
    }
  }
  return { definitions, exportedNames: new Set(), imports };
}
