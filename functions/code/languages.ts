/**
 * Per-language knowledge: which grammar, the tree-sitter queries that find definitions and
 * imports (or, for Python, a finder that does without one: python.ts), and the few rules a query
 * cannot say (what "exported" means, what a function inside a class is). Captures:
 * - `@def.<kind>` the whole definition, `@name` its name;
 * - `@receiver` a Go method's receiver type; `@scope.impl` a Rust impl block (`@name` = its type),
 *   which names its methods' parent without being a symbol itself;
 * - `@export.name` a name a JS/TS export list or CommonJS `module.exports = { … }` exports;
 * - `@import` a module specifier; `@import.stmt` an import statement read in code (Python, Java).
 */
import type { Node, Tree } from 'web-tree-sitter';
import { findPython } from './python.ts';
import { textOf, type Found } from './symbols.ts';
import type { LanguageId, SymbolKind } from './types.ts';

export interface DefinitionContext {
  def: Node;
  /** `def.type`, read once (each read of a node property is a call into wasm). */
  type: string;
  /** The file's text: node texts are sliced from it. */
  source: string;
  name: string;
  kind: SymbolKind;
  /** The enclosing definition's kind, when there is one. */
  parentKind?: SymbolKind;
  parentExported?: boolean;
  /** Names a JS/TS export list or `module.exports = { … }` exported. */
  exportedNames: Set<string>;
  topLevel: boolean;
}

export interface LanguageSpec {
  id: LanguageId;
  /** File name in @vscode/tree-sitter-wasm's wasm/ folder. */
  grammar: string;
  /** Query patterns for definitions and imports (captures above); unused when `find` is given. */
  symbols?: string;
  imports?: string;
  /** Finds definitions and imports without a query (Python: python.ts). */
  find?(tree: Tree, source: string): Found;
  /** A parent that is not an enclosing range (JS `Foo.prototype.bar = function…` belongs to Foo). */
  parentOf?(def: Node, type: string, source: string): string | undefined;
  /** Kind after context (a function inside a class is a method); undefined drops the definition. */
  refineKind?(ctx: DefinitionContext): SymbolKind | undefined;
  exported(ctx: DefinitionContext): boolean;
}

const CLASS_LIKE = new Set<SymbolKind>(['class', 'interface', 'struct', 'trait', 'enum']);
const isConstantName = (name: string) => /^[A-Z][A-Z0-9_]*$/.test(name);
const hasChildOfType = (node: Node, type: string) => node.children.some((child) => child?.type === type);
const modifiersText = (source: string, node: Node) => {
  const modifiers = node.children.find((child) => child?.type === 'modifiers');
  return modifiers ? textOf(source, modifiers) : '';
};

// ---------------------------------------------------------------- JavaScript and TypeScript

const JS_FUNCTION_VALUES = '[(arrow_function) (function_expression) (generator_function)]';

const jsCommon = (className: string, fieldDefinition: string) => `
(function_declaration name: (identifier) @name) @def.function
(generator_function_declaration name: (identifier) @name) @def.function
(class_declaration name: (${className}) @name) @def.class
(method_definition name: [(property_identifier) (private_property_identifier) (string) (computed_property_name)] @name) @def.method
${fieldDefinition}
(variable_declarator name: (identifier) @name value: ${JS_FUNCTION_VALUES}) @def.function
(variable_declarator name: (identifier) @name value: (class)) @def.class
(assignment_expression left: [(identifier) @name (member_expression property: (property_identifier) @name)] right: ${JS_FUNCTION_VALUES}) @def.function
(pair key: [(property_identifier) (string) (computed_property_name)] @name value: ${JS_FUNCTION_VALUES}) @def.method
(program (lexical_declaration (variable_declarator name: (identifier) @name) @def.const))
(program (export_statement declaration: (lexical_declaration (variable_declarator name: (identifier) @name) @def.const)))
(export_statement (export_clause (export_specifier name: (identifier) @export.name)))
(export_statement value: (identifier) @export.name)
(assignment_expression left: (member_expression) @_left right: (object (shorthand_property_identifier) @export.name))
`;

const JS_IMPORTS = `
(import_statement source: (string (string_fragment) @import))
(export_statement source: (string (string_fragment) @import))
(call_expression function: (identifier) @_require arguments: (arguments . (string (string_fragment) @import)))
(call_expression function: (import) arguments: (arguments . (string (string_fragment) @import)))
`;

const TS_SYMBOLS = `${jsCommon('type_identifier', '(public_field_definition name: [(property_identifier) (private_property_identifier)] @name value: ' + JS_FUNCTION_VALUES + ') @def.method')}
(function_signature name: (identifier) @name) @def.function
(abstract_class_declaration name: (type_identifier) @name) @def.class
(interface_declaration name: (type_identifier) @name) @def.interface
(type_alias_declaration name: (type_identifier) @name) @def.type
(enum_declaration name: (identifier) @name) @def.enum
(method_signature name: [(property_identifier) (private_property_identifier) (string) (computed_property_name)] @name) @def.method
(abstract_method_signature name: [(property_identifier) (private_property_identifier) (string)] @name) @def.method
(internal_module name: [(identifier) (nested_identifier)] @name) @def.namespace
(module name: [(identifier) (nested_identifier) (string)] @name) @def.module
`;

const TS_IMPORTS = `${JS_IMPORTS}
(import_require_clause source: (string (string_fragment) @import))
`;

/** Whether a JS/TS declaration sits directly in an `export` statement. */
function jsExportedDeclaration(def: Node, type: string): boolean {
  let node: Node | null = def;
  // variable_declarator → lexical_declaration → export_statement
  if (type === 'variable_declarator') node = node.parent;
  const parent = node?.parent;
  if (parent?.type === 'export_statement') return true;
  // `declare function f()` / `declare class C` inside `export declare …` or a declared module.
  if (parent?.type === 'ambient_declaration') return parent.parent?.type === 'export_statement';
  return false;
}

function jsExported(ctx: DefinitionContext): boolean {
  const { def, type, source, name, kind } = ctx;
  if (type === 'assignment_expression') {
    // exports.f = function…, module.exports.f = …
    const left = def.childForFieldName('left');
    return /^(module\.)?exports\./.test(left ? textOf(source, left) : '');
  }
  if (kind === 'method') {
    if (name.startsWith('#')) return false;
    if (def.children.some((child) => child?.type === 'accessibility_modifier' && textOf(source, child) !== 'public')) return false;
    return ctx.parentExported ?? false;
  }
  if (jsExportedDeclaration(def, type)) return true;
  return ctx.topLevel && ctx.exportedNames.has(name);
}

/** `Foo.prototype.bar = function…` → Foo. */
function jsParentOf(def: Node, type: string, source: string): string | undefined {
  if (type !== 'assignment_expression') return undefined;
  const object = def.childForFieldName('left')?.childForFieldName('object');
  const match = object ? /^([\w$.]+)\.prototype$/.exec(textOf(source, object)) : null;
  return match?.[1];
}

function jsRefineKind(ctx: DefinitionContext): SymbolKind | undefined {
  if (ctx.type === 'assignment_expression') {
    if (ctx.name === 'exports') return undefined;
    if (ctx.parentKind === 'class' && jsParentOf(ctx.def, ctx.type, ctx.source)) return 'method';
  }
  // Object-literal members and assigned functions outside a class are functions.
  if (ctx.kind === 'method' && (ctx.parentKind === undefined || !CLASS_LIKE.has(ctx.parentKind))) {
    return ctx.type === 'method_signature' || ctx.type === 'abstract_method_signature' ? 'method' : 'function';
  }
  if (ctx.kind === 'const') {
    // `const x = 1` at module level: a symbol when exported or written as a constant.
    const declaration = ctx.def.parent;
    if (declaration?.firstChild?.type !== 'const') return undefined;
    if (!jsExported(ctx) && !isConstantName(ctx.name)) return undefined;
  }
  return ctx.kind;
}

// ---------------------------------------------------------------- the specs

export const LANGUAGES: Record<LanguageId, LanguageSpec> = {
  typescript: {
    id: 'typescript',
    grammar: 'tree-sitter-typescript.wasm',
    symbols: TS_SYMBOLS,
    imports: TS_IMPORTS,
    parentOf: jsParentOf,
    refineKind: jsRefineKind,
    exported: jsExported,
  },
  tsx: {
    id: 'tsx',
    grammar: 'tree-sitter-tsx.wasm',
    symbols: TS_SYMBOLS,
    imports: TS_IMPORTS,
    parentOf: jsParentOf,
    refineKind: jsRefineKind,
    exported: jsExported,
  },
  javascript: {
    id: 'javascript',
    grammar: 'tree-sitter-javascript.wasm',
    symbols: jsCommon('identifier', `(field_definition property: [(property_identifier) (private_property_identifier)] @name value: ${JS_FUNCTION_VALUES}) @def.method`),
    imports: JS_IMPORTS,
    parentOf: jsParentOf,
    refineKind: jsRefineKind,
    exported: jsExported,
  },
  python: {
    id: 'python',
    grammar: 'tree-sitter-python.wasm',
    find: findPython,
    refineKind(ctx) {
      if (ctx.kind === 'const') return isConstantName(ctx.name) ? 'const' : undefined;
      if (ctx.kind === 'function' && ctx.parentKind === 'class') return 'method';
      return ctx.kind;
    },
    exported(ctx) {
      const isPublic = !ctx.name.startsWith('_') || (ctx.name.startsWith('__') && ctx.name.endsWith('__'));
      if (!isPublic) return false;
      if (ctx.topLevel) return true;
      return ctx.parentKind === 'class' && (ctx.parentExported ?? false);
    },
  },
  go: {
    id: 'go',
    grammar: 'tree-sitter-go.wasm',
    symbols: `
(function_declaration name: (identifier) @name) @def.function
(method_declaration receiver: (parameter_list (parameter_declaration type: (_) @receiver)) name: (field_identifier) @name) @def.method
(type_spec name: (type_identifier) @name type: (struct_type)) @def.struct
(type_spec name: (type_identifier) @name type: (interface_type)) @def.interface
(type_spec name: (type_identifier) @name) @def.type
(type_alias name: (type_identifier) @name) @def.type
(method_elem name: (field_identifier) @name) @def.method
(source_file (const_declaration (const_spec name: (identifier) @name) @def.const))
`,
    imports: `(import_spec path: (_) @import)`,
    exported: (ctx) => /^\p{Lu}/u.test(ctx.name),
  },
  java: {
    id: 'java',
    grammar: 'tree-sitter-java.wasm',
    symbols: `
(class_declaration name: (identifier) @name) @def.class
(interface_declaration name: (identifier) @name) @def.interface
(enum_declaration name: (identifier) @name) @def.enum
(record_declaration name: (identifier) @name) @def.class
(annotation_type_declaration name: (identifier) @name) @def.interface
(method_declaration name: (identifier) @name) @def.method
(constructor_declaration name: (identifier) @name) @def.method
(field_declaration declarator: (variable_declarator name: (identifier) @name)) @def.const
`,
    imports: `(import_declaration) @import.stmt`,
    refineKind(ctx) {
      if (ctx.kind !== 'const') return ctx.kind;
      const modifiers = modifiersText(ctx.source, ctx.def);
      const inInterface = ctx.parentKind === 'interface';
      return inInterface || (/\bstatic\b/.test(modifiers) && /\bfinal\b/.test(modifiers)) ? 'const' : undefined;
    },
    exported(ctx) {
      if (ctx.parentKind === 'interface') return ctx.parentExported ?? false;
      if (!/\bpublic\b/.test(modifiersText(ctx.source, ctx.def))) return false;
      return ctx.topLevel || (ctx.parentExported ?? false);
    },
  },
  rust: {
    id: 'rust',
    grammar: 'tree-sitter-rust.wasm',
    symbols: `
(function_item name: (identifier) @name) @def.function
(function_signature_item name: (identifier) @name) @def.method
(struct_item name: (type_identifier) @name) @def.struct
(union_item name: (type_identifier) @name) @def.struct
(enum_item name: (type_identifier) @name) @def.enum
(trait_item name: (type_identifier) @name) @def.trait
(type_item name: (type_identifier) @name) @def.type
(const_item name: (identifier) @name) @def.const
(static_item name: (identifier) @name) @def.const
(mod_item name: (identifier) @name) @def.module
(macro_definition name: (identifier) @name) @def.macro
(impl_item type: (_) @name) @scope.impl
`,
    refineKind(ctx) {
      if (ctx.kind === 'function' && ctx.parentKind !== undefined && CLASS_LIKE.has(ctx.parentKind)) return 'method';
      return ctx.kind;
    },
    exported(ctx) {
      if (ctx.type === 'function_signature_item') return ctx.parentExported ?? false;
      if (ctx.type === 'macro_definition') {
        const attribute = ctx.def.previousNamedSibling;
        return attribute ? textOf(ctx.source, attribute).includes('macro_export') : false;
      }
      return hasChildOfType(ctx.def, 'visibility_modifier');
    },
  },
  ruby: {
    id: 'ruby',
    grammar: 'tree-sitter-ruby.wasm',
    symbols: `
(class name: [(constant) (scope_resolution)] @name) @def.class
(module name: [(constant) (scope_resolution)] @name) @def.module
(method name: (_) @name) @def.method
(singleton_method name: (_) @name) @def.method
`,
    imports: `(call method: (identifier) @_require arguments: (argument_list . (string (string_content) @import)))`,
    refineKind: (ctx) => (ctx.kind === 'method' && ctx.parentKind === undefined ? 'function' : ctx.kind),
    exported: () => true,
  },
  csharp: {
    id: 'csharp',
    grammar: 'tree-sitter-c-sharp.wasm',
    symbols: `
(class_declaration name: (identifier) @name) @def.class
(interface_declaration name: (identifier) @name) @def.interface
(struct_declaration name: (identifier) @name) @def.struct
(enum_declaration name: (identifier) @name) @def.enum
(record_declaration name: (identifier) @name) @def.class
(delegate_declaration name: (identifier) @name) @def.type
(method_declaration name: (identifier) @name) @def.method
(constructor_declaration name: (identifier) @name) @def.method
(namespace_declaration name: (_) @name) @def.namespace
`,
    exported(ctx) {
      if (ctx.kind === 'namespace') return true;
      if (ctx.parentKind === 'interface') return ctx.parentExported ?? false;
      const isPublic = ctx.def.children.some((child) => child?.type === 'modifier' && textOf(ctx.source, child) === 'public');
      return isPublic && (ctx.topLevel || ctx.parentKind === 'namespace' || (ctx.parentExported ?? false));
    },
  },
};
