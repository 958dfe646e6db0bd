/**
 * Shared shapes of the code analysis (docs/code-analysis.md): what a parsed file yields, what a
 * repository analysis returns, and the counted warnings that go on the sync run.
 */

export type LanguageId = 'typescript' | 'tsx' | 'javascript' | 'python' | 'go' | 'java' | 'rust' | 'ruby' | 'csharp';

export type SymbolKind =
  | 'function'
  | 'class'
  | 'method'
  | 'interface'
  | 'type'
  | 'enum'
  | 'struct'
  | 'trait'
  | 'const'
  | 'module'
  | 'namespace'
  | 'macro';

export interface CodeSymbol {
  name: string;
  /** Dotted path through the enclosing symbols, e.g. `GraphWriter.flush`; unique within a file (first definition wins). */
  qualifiedName: string;
  kind: SymbolKind;
  /** 1-based line of the symbol's name. */
  line: number;
  endLine: number;
  /** The declaration up to its body, whitespace collapsed, at most SIGNATURE_MAX_CHARS. Never a constant's value. */
  signature: string;
  exported: boolean;
  /** Qualified name of the enclosing symbol, if any. */
  parent?: string;
}

/** An import as written in the source; resolved against the repository's files once the whole archive was read. */
export interface ImportRef {
  /** Module specifier (`./model.ts`, `express`, `github.com/x/y/z`), Python dotted module (`.models`, `os.path`), Java type (`com.acme.Foo`). */
  specifier: string;
  line: number;
  /** Python `from X import a, b`: names that may be submodules of X. */
  names?: string[];
}

export interface FileExtraction {
  symbols: CodeSymbol[];
  imports: ImportRef[];
  /** Whether tree-sitter had to recover from syntax errors (symbols are then best effort). */
  hasSyntaxErrors: boolean;
}

export type WarningCode =
  | 'unsafe-path'
  | 'link-entry'
  | 'special-entry'
  | 'duplicate-entry'
  | 'file-too-large'
  | 'binary'
  | 'not-utf8'
  | 'syntax-errors'
  | 'parse-timeout'
  | 'parser-crashed'
  | 'grammar-unavailable'
  | 'too-many-symbols'
  | 'invalid-item'
  | 'manifest-unreadable'
  | 'archive-limit'
  | 'archive-corrupt'
  | 'aborted';

/** One kind of problem, counted: the sync puts `formatWarnings(result)` on its run. */
export interface CodeWarning {
  code: WarningCode;
  count: number;
  /** Up to five paths (or details) as examples. */
  examples: string[];
}

export type FileStatus = 'parsed' | 'unchanged' | 'skipped' | 'manifest' | 'ignored';

export interface FileResult {
  path: string;
  /** Git blob SHA-1 of the content (from `currentShas`, or computed from the bytes when the caller gave none). */
  sha?: string;
  status: FileStatus;
  language?: LanguageId;
  /** Why a file was skipped (a WarningCode) or ignored (`vendored`, `lock-file`, `not-code`…). */
  reason?: string;
  symbols: number;
  imports: number;
}

export interface ManifestDependency {
  ecosystem: Ecosystem;
  /** The package's name in its ecosystem (npm `@scope/pkg`, PyPI normalized name, Go module path, Maven `group:artifact`). */
  name: string;
  /** The version constraint as written (`^4.19.0`, `>=2,<3`, `v1.9.1`); empty when none was given. */
  version: string;
  scope: 'prod' | 'dev';
  /** Repository path of the manifest that declared it. */
  manifest: string;
}

export type Ecosystem = 'npm' | 'pypi' | 'go' | 'maven' | 'cargo' | 'gem';
