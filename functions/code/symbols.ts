/**
 * Turns a syntax tree into symbols and imports. A language's definitions and imports are found
 * either by its tree-sitter query (run in wasm, so only the matches cross into JavaScript) or by
 * its own finder (Python: languages.ts); then definitions are nested by their ranges to find each
 * one's enclosing symbol, and the language's rules for kinds and exports apply.
 *
 * Every property of a web-tree-sitter `Node` other than `startIndex`/`startPosition` is a call into
 * wasm, so a node's type is read once (`RawDefinition.type`) and texts are sliced from the source.
 */
import type { Language, Node, Query, QueryMatch, Tree } from 'web-tree-sitter';
import type { DefinitionContext, LanguageSpec } from './languages.ts';
import type { CodeSymbol, FileExtraction, ImportRef, SymbolKind } from './types.ts';

export const SIGNATURE_MAX_CHARS = 200;
const NAME_MAX_CHARS = 200;

export interface CompiledLanguage {
  spec: LanguageSpec;
  grammar: Language;
  /** Definitions and imports in one query (one walk of the tree instead of two); none when the spec has a finder. */
  query?: Query;
}

/** A definition as found, before its context (enclosing symbol, final kind, exported) is applied. */
export interface RawDefinition {
  def: Node;
  /** `def.type`, read once. */
  type: string;
  nameNode: Node;
  kind: SymbolKind | 'scope';
  start: number;
  end: number;
  /** When two rules find the same definition, the lower number wins (a query's pattern order). */
  priority: number;
  receiver?: Node;
}

/** What a language's query or finder yields for one file. */
export interface Found {
  definitions: RawDefinition[];
  /** Names a JS/TS export list or `module.exports = { … }` exported. */
  exportedNames: Set<string>;
  imports: ImportRef[];
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

/** A node's text, sliced from the source (`node.text` would cost a call into wasm and a copy out of it). */
export const textOf = (source: string, node: Node) => source.slice(node.startIndex, node.endIndex);

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
  const { def, nameNode, type: defType } = raw;
  let start = raw.start;
  let end: number | undefined;
  if (defType === 'type_spec' || defType === 'type_alias') {
    // Go: `type Server struct`, `type Handler func(…)`, `type ID = string`.
    const type = def.childForFieldName('type');
    const typeType = type?.type;
    const shape = typeType === 'struct_type' ? 'struct' : typeType === 'interface_type' ? 'interface' : type ? textOf(source, type) : '';
    return collapse(`type ${textOf(source, nameNode)}${defType === 'type_alias' ? ' =' : ''} ${shape}`);
  }
  if (defType === 'macro_definition') return `macro_rules! ${textOf(source, nameNode)}`;
  // `const a = 1, f = () => {}`: each declarator's signature is the keyword plus its own text.
  const declaration = defType === 'variable_declarator' ? def.parent : null;
  const sharedDeclaration = declaration && declaration.namedChildCount > 1 ? declaration : null;
  const keyword = () => {
    const first = sharedDeclaration?.firstChild;
    return first ? textOf(source, first) : 'const';
  };
  if (sharedDeclaration && kind !== 'const') {
    const body = def.childForFieldName('value')?.childForFieldName('body');
    return collapse(`${keyword()} ${source.slice(raw.start, body ? body.startIndex : nameNode.endIndex)}`.replace(/\s*(=>|[{:=])\s*$/, (_m, token: string) => (token === '=>' ? ' =>' : '')));
  }
  if (kind === 'const') {
    if (defType === 'const_spec') return collapse(`const ${source.slice(raw.start, def.childForFieldName('value')?.startIndex ?? nameNode.endIndex).replace(/\s*=\s*$/, '')}`);
    const holder = nameNode.parent ?? def;
    const value = holder.childForFieldName('value') ?? holder.childForFieldName('right') ?? def.childForFieldName('value');
    end = value && value.startIndex > nameNode.startIndex ? value.startIndex : nameNode.endIndex;
    // `export const X` / `const X`: keep the keyword that declares it.
    if (declaration) start = declaration.startIndex;
    if (sharedDeclaration) return collapse(`${keyword()} ${source.slice(raw.start, end).replace(/\s*=\s*$/, '')}`);
  } else {
    const body = def.childForFieldName('body');
    if (body && body.startIndex > start) end = body.startIndex;
    else {
      const value = def.childForFieldName('value') ?? def.childForFieldName('right');
      const valueBody = body ? null : value?.childForFieldName('body');
      if (valueBody && valueBody.startIndex > start) end = valueBody.startIndex;
      else if (value && value.startIndex > start && kind !== 'type') end = value.startIndex + Math.min(value.endIndex - value.startIndex, SIGNATURE_MAX_CHARS);
    }
    if (declaration) start = declaration.startIndex;
  }
  if (end === undefined) {
    const newline = source.indexOf('\n', nameNode.endIndex);
    end = Math.min(raw.end, newline === -1 ? source.length : newline);
  }
  // A signature never runs past a few lines: what follows is body.
  const text = source.slice(start, Math.min(end, start + SIGNATURE_MAX_CHARS * 4));
  return collapse(text.replace(/\s*(=>|[{:=])\s*$/, (_match, token: string) => (token === '=>' ? ' =>' : '')));
}

/** One definition per node and name (the lowest priority wins), in document order, enclosing ones first. */
function ordered(definitions: RawDefinition[]): RawDefinition[] {
  const byKey = new Map<string, RawDefinition>();
  for (const raw of definitions) {
    const key = `${raw.start}:${raw.end}:${raw.nameNode.startIndex}`;
    const existing = byKey.get(key);
    if (!existing || raw.priority < existing.priority) byKey.set(key, raw);
  }
  return [...byKey.values()].sort((a, b) => a.start - b.start || b.end - a.end);
}

/** Definitions, export lists and imports from a language's query matches. */
function findWithQuery(spec: LanguageSpec, query: Query, tree: Tree, source: string): Found {
  const definitions: RawDefinition[] = [];
  const exportedNames = new Set<string>();
  const importMatches: QueryMatch[] = [];
  for (const match of query.matches(tree.rootNode)) {
    let def: Node | undefined;
    let kind: RawDefinition['kind'] | undefined;
    let nameNode: Node | undefined;
    let receiver: Node | undefined;
    let left: Node | undefined;
    let exportName: Node | undefined;
    let isImport = false;
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
      else if (captureName === 'export.name') exportName = capture.node;
      else if (captureName === 'import' || captureName === 'import.stmt') isImport = true;
    }
    if (isImport) importMatches.push(match);
    else if (def && kind && nameNode) {
      definitions.push({ def, type: def.type, nameNode, kind, start: def.startIndex, end: def.endIndex, priority: match.patternIndex, ...(receiver ? { receiver } : {}) });
    } else if (exportName && exportListApplies(source, exportName, left)) exportedNames.add(textOf(source, exportName));
  }
  return { definitions, exportedNames, imports: extractImports(spec, importMatches, source) };
}

/** `export { a, b }` without a `from` (a re-export names nothing local), or `module.exports = { a, b }`. */
function exportListApplies(source: string, name: Node, left: Node | undefined): boolean {
  if (left) {
    const target = textOf(source, left);
    return target === 'module.exports' || target === 'exports';
  }
  let statement: Node | null = name.parent;
  while (statement && statement.type !== 'export_statement') statement = statement.parent;
  return !!statement && !statement.childForFieldName('source');
}

export function extractSymbols(spec: LanguageSpec, found: Found, source: string, maxSymbols: number): { symbols: CodeSymbol[]; truncated: boolean } {
  const { exportedNames } = found;
  const symbols: CodeSymbol[] = [];
  const stack: Placed[] = [];
  const taken = new Set<string>();
  let truncated = false;

  for (const raw of ordered(found.definitions)) {
    while (stack.length > 0 && stack[stack.length - 1]!.end <= raw.start) stack.pop();
    const enclosing = stack[stack.length - 1];
    const name = detach(unquote(textOf(source, raw.nameNode)).slice(0, NAME_MAX_CHARS));
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
      parentName = detach(typeName(textOf(source, raw.receiver)));
      parentKind = 'struct';
      parentExported = /^\p{Lu}/u.test(parentName);
    } else {
      const owner = spec.parentOf?.(raw.def, raw.type, source);
      if (owner) {
        parentName = owner;
        parentKind = 'class';
        parentExported = false;
      }
    }
    const ctx: DefinitionContext = {
      def: raw.def,
      type: raw.type,
      source,
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

function javaImport(source: string, statement: Node): ImportRef[] {
  const match = /^import\s+(static\s+)?([\w.$]+)(\s*\.\s*\*)?\s*;?/.exec(textOf(source, statement).replace(/\s+/g, ' '));
  if (!match) return [];
  return [{ specifier: detach(`${match[2]}${match[3] ? '.*' : ''}`), line: statement.startPosition.row + 1 }];
}

function extractImports(spec: LanguageSpec, matches: QueryMatch[], source: string): ImportRef[] {
  const imports: ImportRef[] = [];
  const language = spec.id;
  for (const match of matches) {
    let specifierNode: Node | undefined;
    let statement: Node | undefined;
    let callee: string | undefined;
    for (const capture of match.captures) {
      if (capture.name === 'import') specifierNode = capture.node;
      else if (capture.name === 'import.stmt') statement = capture.node;
      else if (capture.name === '_require') callee = textOf(source, capture.node);
    }
    if (statement) {
      imports.push(...javaImport(source, statement));
      continue;
    }
    if (!specifierNode) continue;
    let specifier = unquote(textOf(source, specifierNode));
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
  const { spec, query } = compiled;
  const found = spec.find ? spec.find(tree, source) : findWithQuery(spec, query!, tree, source);
  const { symbols, truncated } = extractSymbols(spec, found, source, maxSymbols);
  return { symbols, imports: found.imports, hasSyntaxErrors: tree.rootNode.hasError, truncated };
}
