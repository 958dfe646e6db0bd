/**
 * Turns a syntax tree into symbols and imports: runs the language's queries (in wasm, so only the
 * matches cross into JavaScript), nests definitions by their ranges to find each one's enclosing
 * symbol, and applies the language's rules for kinds and exports.
 */
import type { Language, Node, Query, QueryMatch, Tree } from 'web-tree-sitter';
import type { DefinitionContext, LanguageSpec } from './languages.ts';
import type { CodeSymbol, FileExtraction, ImportRef, SymbolKind } from './types.ts';

export const SIGNATURE_MAX_CHARS = 200;
const NAME_MAX_CHARS = 200;

export interface CompiledLanguage {
  spec: LanguageSpec;
  grammar: Language;
  /** Definitions and imports in one query: one walk of the tree instead of two. */
  query: Query;
}

const isImportMatch = (match: QueryMatch) => match.captures.some((capture) => capture.name === 'import' || capture.name === 'import.stmt');

interface RawDefinition {
  def: Node;
  nameNode: Node;
  kind: SymbolKind | 'scope';
  start: number;
  end: number;
  patternIndex: number;
  receiver?: Node;
}

interface Placed {
  end: number;
  qualifiedName: string;
  kind: SymbolKind;
  exported: boolean;
  /** An impl block: a parent for names, not a symbol. */
  scope: boolean;
}

/**
 * A copy that does not point into the file's source. V8 keeps a substring as a view of its parent
 * (for 13+ characters), so one kept symbol name or import would keep the whole file alive until
 * the end of the archive; a real copy lets each source go as soon as its file is done.
 */
export const detach = (text: string) => (text.length < 13 ? text : Buffer.from(text, 'utf8').toString('utf8'));

const unquote = (text: string) => text.replace(/^(['"`])(.*)\1$/s, '$2');

/** `*Server`, `Server[T]`, `Foo<T>`, `&'a mut Foo` → `Server` / `Foo`. */
function typeName(text: string): string {
  const cleaned = text.replace(/^[&*\s]+|'\w+\s+|\bmut\s+|\bdyn\s+/g, '');
  return cleaned.replace(/[<[].*$/s, '').trim();
}

function collapse(text: string): string {
  const flat = text.replace(/\s+/g, ' ').replace(/\s*;$/, '').trim();
  return flat.length > SIGNATURE_MAX_CHARS ? `${flat.slice(0, SIGNATURE_MAX_CHARS - 1)}…` : flat;
}

/**
 * The declaration up to its body: `export async function charge(card: Card): Promise<Receipt>`,
 * `class GraphWriter`. A constant's signature stops before its value, so no literal (a key, a
 * password) is ever copied into the graph.
 */
function signatureOf(source: string, raw: RawDefinition, kind: SymbolKind): string {
  const { def, nameNode } = raw;
  let start = def.startIndex;
  let end: number | undefined;
  if (def.type === 'type_spec' || def.type === 'type_alias') {
    // Go: `type Server struct`, `type Handler func(…)`, `type ID = string`.
    const type = def.childForFieldName('type');
    const shape = type?.type === 'struct_type' ? 'struct' : type?.type === 'interface_type' ? 'interface' : (type?.text ?? '');
    return collapse(`type ${nameNode.text}${def.type === 'type_alias' ? ' =' : ''} ${shape}`);
  }
  if (def.type === 'macro_definition') return `macro_rules! ${nameNode.text}`;
  if (def.type === 'variable_declarator' && kind !== 'const' && def.parent && def.parent.namedChildCount > 1) {
    // `const a = 1, f = () => {}`: f's signature is its own declarator.
    const value = def.childForFieldName('value');
    const body = value?.childForFieldName('body');
    return collapse(`${def.parent.firstChild?.text ?? 'const'} ${source.slice(def.startIndex, body ? body.startIndex : nameNode.endIndex)}`.replace(/\s*(=>|[{:=])\s*$/, (_m, token: string) => (token === '=>' ? ' =>' : '')));
  }
  if (kind === 'const') {
    if (def.type === 'const_spec') return collapse(`const ${source.slice(def.startIndex, def.childForFieldName('value')?.startIndex ?? nameNode.endIndex).replace(/\s*=\s*$/, '')}`);
    const holder = nameNode.parent ?? def;
    const value = holder.childForFieldName('value') ?? holder.childForFieldName('right') ?? def.childForFieldName('value');
    end = value && value.startIndex > nameNode.startIndex ? value.startIndex : nameNode.endIndex;
    // `export const X` / `const X`: keep the keyword that declares it.
    if (def.type === 'variable_declarator') start = def.parent?.startIndex ?? start;
    if (def.type === 'variable_declarator' && def.parent && def.parent.namedChildCount > 1) {
      return collapse(`${def.parent.firstChild?.text ?? 'const'} ${source.slice(def.startIndex, end).replace(/\s*=\s*$/, '')}`);
    }
  } else {
    const value = def.childForFieldName('value') ?? def.childForFieldName('right');
    const body = def.childForFieldName('body') ?? value?.childForFieldName('body');
    if (body && body.startIndex > start) end = body.startIndex;
    else if (value && value.startIndex > start && kind !== 'type') end = value.startIndex + Math.min(value.text.length, SIGNATURE_MAX_CHARS);
    if (def.type === 'variable_declarator' && def.parent) start = def.parent.startIndex;
  }
  if (end === undefined) {
    const newline = source.indexOf('\n', nameNode.endIndex);
    end = Math.min(def.endIndex, newline === -1 ? source.length : newline);
  }
  // A signature never runs past a few lines: what follows is body.
  const text = source.slice(start, Math.min(end, start + SIGNATURE_MAX_CHARS * 4));
  return collapse(text.replace(/\s*(=>|[{:=])\s*$/, (_match, token: string) => (token === '=>' ? ' =>' : '')));
}

function definitionsOf(matches: QueryMatch[], exportedNames: Set<string>): RawDefinition[] {
  const byKey = new Map<string, RawDefinition>();
  for (const match of matches) {
    let def: Node | undefined;
    let kind: RawDefinition['kind'] | undefined;
    let nameNode: Node | undefined;
    let receiver: Node | undefined;
    let left: Node | undefined;
    for (const capture of match.captures) {
      const captureName = capture.name;
      if (captureName === 'name') nameNode = capture.node;
      else if (captureName.startsWith('def.')) {
        def = capture.node;
        kind = captureName.slice(4) as SymbolKind;
      } else if (captureName === 'scope.impl') {
        def = capture.node;
        kind = 'scope';
      } else if (captureName === 'receiver') receiver = capture.node;
      else if (captureName === '_left') left = capture.node;
    }
    if (!def || !kind || !nameNode) {
      const exportName = match.captures.find((capture) => capture.name === 'export.name')?.node;
      if (exportName && exportListApplies(exportName, left)) exportedNames.add(exportName.text);
      continue;
    }
    const key = `${def.startIndex}:${def.endIndex}:${nameNode.startIndex}`;
    const existing = byKey.get(key);
    if (existing && existing.patternIndex <= match.patternIndex) continue;
    byKey.set(key, { def, nameNode, kind, start: def.startIndex, end: def.endIndex, patternIndex: match.patternIndex, ...(receiver ? { receiver } : {}) });
  }
  return [...byKey.values()].sort((a, b) => a.start - b.start || b.end - a.end);
}

/** `export { a, b }` without a `from` (a re-export names nothing local), or `module.exports = { a, b }`. */
function exportListApplies(name: Node, left: Node | undefined): boolean {
  if (left) return left.text === 'module.exports' || left.text === 'exports';
  let statement: Node | null = name.parent;
  while (statement && statement.type !== 'export_statement') statement = statement.parent;
  return !!statement && !statement.childForFieldName('source');
}

export function extractSymbols(spec: LanguageSpec, matches: QueryMatch[], source: string, maxSymbols: number): { symbols: CodeSymbol[]; truncated: boolean } {
  const exportedNames = new Set<string>();
  const raws = definitionsOf(matches, exportedNames);
  const symbols: CodeSymbol[] = [];
  const stack: Placed[] = [];
  const taken = new Set<string>();
  let truncated = false;

  for (const raw of raws) {
    while (stack.length > 0 && stack[stack.length - 1]!.end <= raw.start) stack.pop();
    const enclosing = stack[stack.length - 1];
    const name = detach(unquote(raw.nameNode.text).slice(0, NAME_MAX_CHARS));
    if (!name) continue;

    if (raw.kind === 'scope') {
      const scopeName = detach(typeName(name));
      stack.push({ end: raw.end, qualifiedName: enclosing ? `${enclosing.qualifiedName}.${scopeName}` : scopeName, kind: 'struct', exported: false, scope: true });
      continue;
    }

    let parentName = enclosing?.qualifiedName;
    let parentKind = enclosing?.kind;
    let parentExported = enclosing?.exported;
    if (raw.receiver) {
      // Go: `func (s *Server) Start()` belongs to Server, which is not an enclosing range.
      parentName = detach(typeName(raw.receiver.text));
      parentKind = 'struct';
      parentExported = /^\p{Lu}/u.test(parentName);
    } else {
      const owner = spec.parentOf?.(raw.def);
      if (owner) {
        parentName = owner;
        parentKind = 'class';
        parentExported = false;
      }
    }
    const ctx: DefinitionContext = {
      def: raw.def,
      name,
      kind: raw.kind,
      ...(parentKind ? { parentKind } : {}),
      ...(parentExported !== undefined ? { parentExported } : {}),
      exportedNames,
      topLevel: !parentName,
    };
    const kind = spec.refineKind ? spec.refineKind(ctx) : raw.kind;
    if (!kind) continue;
    ctx.kind = kind;
    const exported = spec.exported(ctx);
    const line = raw.nameNode.startPosition.row + 1;

    let qualifiedName = parentName ? `${parentName}.${name}` : name;
    // Redefinitions (overloads, `if`-guarded defs) keep their own node: the first one has the plain name.
    if (taken.has(qualifiedName)) qualifiedName = `${qualifiedName}@${line}`;
    taken.add(qualifiedName);

    if (symbols.length >= maxSymbols) {
      truncated = true;
      break;
    }
    symbols.push({
      name,
      qualifiedName,
      kind,
      line,
      endLine: raw.def.endPosition.row + 1,
      signature: detach(signatureOf(source, raw, kind)),
      exported,
      ...(parentName ? { parent: parentName } : {}),
    });
    stack.push({ end: raw.end, qualifiedName, kind, exported, scope: false });
  }
  return { symbols, truncated };
}

function pythonImports(statement: Node): ImportRef[] {
  const line = statement.startPosition.row + 1;
  const nameOf = (node: Node) => (node.type === 'aliased_import' ? (node.childForFieldName('name')?.text ?? '') : node.text);
  if (statement.type === 'import_statement') {
    return statement.childrenForFieldName('name').flatMap((node) => (node ? [{ specifier: detach(nameOf(node)), line }] : []));
  }
  const module = statement.childForFieldName('module_name');
  if (!module) return [];
  const names = statement
    .childrenForFieldName('name')
    .map((node) => (node ? detach(nameOf(node)) : ''))
    .filter(Boolean);
  return [{ specifier: detach(module.text.replace(/\s+/g, '')), line, ...(names.length > 0 ? { names } : {}) }];
}

function javaImport(statement: Node): ImportRef[] {
  const match = /^import\s+(static\s+)?([\w.$]+)(\s*\.\s*\*)?\s*;?/.exec(statement.text.replace(/\s+/g, ' '));
  if (!match) return [];
  return [{ specifier: detach(`${match[2]}${match[3] ? '.*' : ''}`), line: statement.startPosition.row + 1 }];
}

export function extractImports(spec: LanguageSpec, matches: QueryMatch[]): ImportRef[] {
  const imports: ImportRef[] = [];
  const language = spec.id;
  for (const match of matches) {
    let specifierNode: Node | undefined;
    let statement: Node | undefined;
    let callee: string | undefined;
    for (const capture of match.captures) {
      if (capture.name === 'import') specifierNode = capture.node;
      else if (capture.name === 'import.stmt') statement = capture.node;
      else if (capture.name === '_require') callee = capture.node.text;
    }
    if (statement) {
      imports.push(...(language === 'python' ? pythonImports(statement) : javaImport(statement)));
      continue;
    }
    if (!specifierNode) continue;
    let specifier = unquote(specifierNode.text);
    if (callee !== undefined) {
      if (language === 'ruby') {
        if (callee === 'require_relative') specifier = specifier.startsWith('.') ? specifier : `./${specifier}`;
        else if (callee !== 'require') continue;
      } else if (callee !== 'require') continue;
    }
    if (specifier) imports.push({ specifier: detach(specifier), line: specifierNode.startPosition.row + 1 });
  }
  return imports;
}

export function extractFromTree(compiled: CompiledLanguage, tree: Tree, source: string, maxSymbols: number): FileExtraction & { truncated: boolean } {
  const definitionMatches: QueryMatch[] = [];
  const importMatches: QueryMatch[] = [];
  for (const match of compiled.query.matches(tree.rootNode)) (isImportMatch(match) ? importMatches : definitionMatches).push(match);
  const { symbols, truncated } = extractSymbols(compiled.spec, definitionMatches, source, maxSymbols);
  return { symbols, imports: extractImports(compiled.spec, importMatches), hasSyntaxErrors: tree.rootNode.hasError, truncated };
}
