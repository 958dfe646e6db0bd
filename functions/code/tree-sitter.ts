/**
 * The tree-sitter runtime (web-tree-sitter, wasm) and its grammars (@vscode/tree-sitter-wasm):
 * plain files, no native code, so the same code runs in Lambda on arm64 and here.
 *
 * Where the .wasm files come from, first match wins:
 * 1. `options.wasmDir`, or the `OPENTRACE_TREE_SITTER_DIR` environment variable;
 * 2. a `tree-sitter/` folder next to this module (where the Lambda bundle copies them);
 * 3. the installed npm packages (tests, the bench, the local stack).
 *
 * Each grammar loads once per extractor, on first use, with its own parser (switching a parser's
 * language resets it and recreates the grammar's external scanner). A grammar that fails to load
 * or a parse that throws is reported per file (the caller skips the file with a warning), never
 * thrown out of the analysis. A parse that runs past its time budget is cancelled the same way.
 * Trees are deleted as soon as their file is extracted: they live in the wasm heap, not V8's.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Language, Parser, Query, type ParseState, type Tree } from 'web-tree-sitter';
import { LANGUAGES } from './languages.ts';
import { extractFromTree, type CompiledLanguage } from './symbols.ts';
import type { FileExtraction, LanguageId } from './types.ts';

export const RUNTIME_WASM = 'web-tree-sitter.wasm';

/** Loads a .wasm file by name (`web-tree-sitter.wasm`, `tree-sitter-python.wasm`). */
export type WasmLoader = (file: string) => Promise<Uint8Array>;

export interface ExtractorOptions {
  wasmDir?: string;
  /** Replaces file loading entirely (tests use it to hand a broken grammar). */
  loadWasm?: WasmLoader;
  /** Per-file parse budget; a parse past it is cancelled (`parse-timeout`). */
  parseTimeoutMs?: number;
  maxSymbolsPerFile?: number;
}

export class GrammarUnavailableError extends Error {}
export class ParseTimeoutError extends Error {}
export class ParserCrashedError extends Error {}

function defaultLoader(wasmDir: string | undefined): WasmLoader {
  const dir = wasmDir ?? process.env.OPENTRACE_TREE_SITTER_DIR;
  if (dir) return (file) => readFile(join(dir, file));
  const bundled = join(dirname(fileURLToPath(import.meta.url)), 'tree-sitter');
  if (existsSync(join(bundled, RUNTIME_WASM))) return (file) => readFile(join(bundled, file));
  const require = createRequire(import.meta.url);
  const grammars = dirname(require.resolve('@vscode/tree-sitter-wasm/package.json'));
  return (file) => (file === RUNTIME_WASM ? readFile(require.resolve(`web-tree-sitter/${RUNTIME_WASM}`)) : readFile(join(grammars, 'wasm', file)));
}

let runtime: Promise<void> | undefined;

/** The wasm runtime is one per process (web-tree-sitter keeps it in module state). */
function initRuntime(load: WasmLoader): Promise<void> {
  runtime ??= load(RUNTIME_WASM).then((wasmBinary) => Parser.init({ wasmBinary }));
  runtime.catch(() => (runtime = undefined));
  return runtime;
}

export class TreeSitterExtractor {
  readonly #load: WasmLoader;
  readonly #parseTimeoutMs: number;
  readonly #maxSymbols: number;
  readonly #languages = new Map<LanguageId, Promise<CompiledLanguage>>();
  readonly #parsers = new Map<LanguageId, Parser>();

  constructor(options: ExtractorOptions = {}) {
    this.#load = options.loadWasm ?? defaultLoader(options.wasmDir);
    this.#parseTimeoutMs = options.parseTimeoutMs ?? 5_000;
    this.#maxSymbols = options.maxSymbolsPerFile ?? 5_000;
  }

  async #compiled(language: LanguageId): Promise<CompiledLanguage> {
    let compiled = this.#languages.get(language);
    if (!compiled) {
      const spec = LANGUAGES[language];
      compiled = (async () => {
        await initRuntime(this.#load);
        const grammar = await Language.load(await this.#load(spec.grammar));
        return { spec, grammar, ...(spec.find ? {} : { query: new Query(grammar, `${spec.symbols ?? ''}\n${spec.imports ?? ''}`) }) };
      })();
      this.#languages.set(language, compiled);
    }
    try {
      return await compiled;
    } catch (error) {
      throw new GrammarUnavailableError(`the ${language} grammar could not be loaded: ${(error as Error).message}`);
    }
  }

  /** Loads the grammars up front (a warm Lambda then pays nothing per repository). */
  async preload(languages: LanguageId[]): Promise<void> {
    await Promise.allSettled(languages.map((language) => this.#compiled(language)));
  }

  async extract(language: LanguageId, source: string): Promise<FileExtraction & { truncated: boolean }> {
    const compiled = await this.#compiled(language);
    let tree: Tree | null = null;
    try {
      let parser = this.#parsers.get(language);
      if (!parser) {
        parser = new Parser();
        parser.setLanguage(compiled.grammar);
        this.#parsers.set(language, parser);
      }
      const deadline = performance.now() + this.#parseTimeoutMs;
      // The progress callback costs a call out of wasm every few thousand steps: only big files need it.
      const options = source.length > 32 * 1024 ? { progressCallback: ((_state: ParseState) => performance.now() > deadline) as (state: ParseState) => void } : undefined;
      tree = parser.parse(source, null, options);
      if (!tree) {
        parser.reset();
        throw new ParseTimeoutError(`parsing took longer than ${this.#parseTimeoutMs} ms`);
      }
      return extractFromTree(compiled, tree, source, this.#maxSymbols);
    } catch (error) {
      if (error instanceof ParseTimeoutError) throw error;
      // A trap inside the wasm parser may leave it in any state: start the next file with a new one.
      this.#discardParser(language);
      throw new ParserCrashedError(`the ${language} parser failed: ${(error as Error).message}`);
    } finally {
      tree?.delete();
    }
  }

  #discardParser(language: LanguageId): void {
    try {
      this.#parsers.get(language)?.delete();
    } catch {
      // The old parser is gone either way.
    }
    this.#parsers.delete(language);
  }

  /** Frees the parser and queries (grammars stay cached in the wasm module's memory until the process ends). */
  async dispose(): Promise<void> {
    for (const language of [...this.#parsers.keys()]) this.#discardParser(language);
    for (const compiled of this.#languages.values()) {
      try {
        (await compiled).query?.delete();
      } catch {
        // A grammar that never loaded has nothing to free.
      }
    }
    this.#languages.clear();
  }
}

let shared: TreeSitterExtractor | undefined;

/** One extractor per process: a warm Lambda reuses its loaded grammars across invocations. */
export function sharedExtractor(): TreeSitterExtractor {
  return (shared ??= new TreeSitterExtractor());
}
