/**
 * The entry point the GitHub/GitLab sync calls once per repository: a repository archive stream in,
 * graph items out through the sync's GraphSink, and a report back (per-file results, counted
 * warnings, whether the pass saw everything). See docs/code-analysis.md for the caller's contract.
 *
 * Emitted (ids from ids.ts):
 * - `symbol` nodes and `DEFINES` file → symbol, for every parsed file;
 * - `IMPORTS` file → file (resolved) and file → package, for every parsed file;
 * - `package` nodes and `DEPENDS_ON` repository → package, from every manifest, on every pass.
 * File and repository nodes are the sync's (it has them from the tree API); edges point at them.
 *
 * Incremental: a file whose blob SHA equals `previousShas[path]` is not read or parsed and emits
 * nothing (status `unchanged`); the caller keeps its items by not sweeping them (see the doc).
 *
 * Parallel: an extractor with `concurrency` > 1 (the worker pool) gets that many files at once
 * while the archive read goes on; results are still emitted one file at a time, in archive order.
 */
import { createHash } from 'node:crypto';
import type { GraphSink } from '#connectors/types.ts';
import type { GraphEdgeInput, GraphNodeInput } from '#graph/model.ts';
import { ValidationError } from '#platform/errors.ts';
import { DEFAULT_ARCHIVE_LIMITS, readArchive, type ArchiveFile, type ArchiveLimits, type ArchiveSource } from './archive.ts';
import { classifyPath, looksBinary, looksMinified, type ManifestKind } from './filters.ts';
import { codeIds, type RepositoryRef } from './ids.ts';
import { parseManifest, type ManifestFacts } from './manifests.ts';
import { emptyResolutionContext, ImportResolver, type ImportTarget } from './resolve.ts';
import { GrammarUnavailableError, ParseTimeoutError } from './tree-sitter.ts';
import type { CodeSymbol, CodeWarning, Ecosystem, FileExtraction, FileResult, ImportRef, LanguageId, ManifestDependency, WarningCode } from './types.ts';
import { defaultExtractor } from './worker-pool.ts';

/** Node and edge types this analysis writes: what a caller marks incomplete when a pass did not see everything. */
export const CODE_GRAPH_KINDS = ['symbol', 'package', 'DEFINES', 'IMPORTS', 'DEPENDS_ON'] as const;

/** What parses one file; the default is tree-sitter (tests hand in one that throws). */
export interface SymbolExtractor {
  extract(language: LanguageId, source: string): Promise<FileExtraction & { truncated?: boolean }>;
  /** How many `extract` calls may run at once (a worker pool); 1 when absent. */
  readonly concurrency?: number;
}

export interface AnalyzeRepositoryInput {
  repository: RepositoryRef;
  archive: ArchiveSource;
  graph: GraphSink;
  /** path → blob SHA as of the last analysis; an equal SHA now means the file is not parsed again. */
  previousShas?: ReadonlyMap<string, string>;
  /** path → blob SHA from the git tree API. Without it the SHA is computed from the archive's bytes. */
  currentShas?: ReadonlyMap<string, string>;
  limits?: Partial<ArchiveLimits>;
  /** Default: tree-sitter in this thread, or a worker pool when `OPENTRACE_CODE_WORKERS` is set (worker-pool.ts). */
  extractor?: SymbolExtractor;
  /** Stops the read at the next entry (the slice's time budget); the result is then incomplete. */
  signal?: AbortSignal;
  /** Called every `progressEvery` files with the running counts. */
  onProgress?: (stats: AnalyzeStats) => void | Promise<void>;
  progressEvery?: number;
}

export interface AnalyzeStats {
  entries: number;
  files: number;
  parsed: number;
  unchanged: number;
  skipped: number;
  ignored: number;
  manifests: number;
  symbols: number;
  importEdges: number;
  dependencies: number;
  packages: number;
  inflatedBytes: number;
  sourceBytes: number;
}

export interface AnalyzeRepositoryResult {
  /**
   * False when the archive was not read to the end (a limit, a corrupt or truncated download, the
   * abort signal): the caller must then mark CODE_GRAPH_KINDS incomplete so nothing is swept.
   */
  complete: boolean;
  incompleteReason?: string;
  /** Every code file and manifest, in archive order (ignored paths are only counted). */
  files: FileResult[];
  warnings: CodeWarning[];
  stats: AnalyzeStats;
}

interface PendingImports {
  path: string;
  language: LanguageId;
  imports: ImportRef[];
}

const MAX_EXAMPLES = 5;
const PROPS_TEXT_MAX = 300;

/** Git's blob id: sha1("blob <size>\0" + bytes). */
export function gitBlobSha(content: Uint8Array): string {
  return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
}

class Warnings {
  readonly #byCode = new Map<WarningCode, CodeWarning>();
  add(code: WarningCode, example: string): void {
    let warning = this.#byCode.get(code);
    if (!warning) this.#byCode.set(code, (warning = { code, count: 0, examples: [] }));
    warning.count++;
    if (warning.examples.length < MAX_EXAMPLES) warning.examples.push(example.slice(0, 200));
  }
  list(): CodeWarning[] {
    return [...this.#byCode.values()];
  }
}

const WARNING_TEXT: Record<WarningCode, string> = {
  'unsafe-path': 'archive entries with an unsafe path (absolute or with ..) skipped',
  'link-entry': 'symbolic or hard links skipped (never followed)',
  'special-entry': 'special archive entries (devices, FIFOs) skipped',
  'duplicate-entry': 'duplicate archive entries skipped',
  'file-too-large': 'files over the size cap skipped',
  binary: 'binary files skipped',
  'not-utf8': 'files that are not UTF-8 text skipped',
  'syntax-errors': 'files with syntax errors parsed on a best-effort basis',
  'parse-timeout': 'files whose parse ran past its time budget skipped',
  'parser-crashed': 'files the parser failed on skipped',
  'grammar-unavailable': 'files skipped because their grammar could not be loaded',
  'too-many-symbols': 'files with more symbols than the per-file cap (the rest left out)',
  'invalid-item': 'symbols or edges refused by the graph and left out',
  'manifest-unreadable': 'dependency manifests that could not be parsed',
  'archive-limit': 'archive limit reached: the read stopped early',
  'archive-corrupt': 'the archive could not be read to the end',
  aborted: 'the analysis stopped early (time budget)',
};

/** One line per warning kind, for SyncContext.warn: "3 binary files skipped (e.g. logo.png, a.bin)". */
export function formatWarnings(warnings: CodeWarning[]): string[] {
  return warnings.map((warning) => `Code analysis: ${warning.count} × ${WARNING_TEXT[warning.code]} (e.g. ${warning.examples.join(', ')})`);
}

const clip = (text: string) => (text.length > PROPS_TEXT_MAX ? `${text.slice(0, PROPS_TEXT_MAX - 1)}…` : text);

/**
 * Files being parsed, at most `limit` at once, finished (emitted) one at a time in the order they
 * were added, so the sink sees what a sequential pass would send. `add` waits while the window is
 * full, which holds the archive read back: at most `limit` sources are in memory. A failed finish
 * (the graph store is down) fails every later one and is thrown by `add` or `drain`.
 */
class InFlight {
  readonly #limit: number;
  readonly #window: Promise<void>[] = [];
  #last: Promise<void> = Promise.resolve();

  constructor(limit: number) {
    this.#limit = Math.max(1, limit);
  }

  async add(finish: () => Promise<void>): Promise<void> {
    const done = this.#last.then(finish);
    // Observed by the `add` or `drain` that awaits it; never an unhandled rejection meanwhile.
    done.catch(() => undefined);
    this.#last = done;
    this.#window.push(done);
    while (this.#window.length >= this.#limit) await this.#window.shift();
  }

  drain(): Promise<void> {
    this.#window.length = 0;
    return this.#last;
  }
}

export async function analyzeRepositoryArchive(input: AnalyzeRepositoryInput): Promise<AnalyzeRepositoryResult> {
  const { repository, graph } = input;
  const limits: ArchiveLimits = { ...DEFAULT_ARCHIVE_LIMITS, ...input.limits };
  const extractor: SymbolExtractor = input.extractor ?? defaultExtractor();
  const inFlight = new InFlight(extractor.concurrency ?? 1);
  const warnings = new Warnings();
  const files: FileResult[] = [];
  const stats: AnalyzeStats = { entries: 0, files: 0, parsed: 0, unchanged: 0, skipped: 0, ignored: 0, manifests: 0, symbols: 0, importEdges: 0, dependencies: 0, packages: 0, inflatedBytes: 0, sourceBytes: 0 };
  const allPaths = new Set<string>(input.currentShas?.keys() ?? []);
  const pending: PendingImports[] = [];
  const manifests: { kind: ManifestKind; path: string; facts: ManifestFacts }[] = [];
  const pythonRoots = new Set<string>(['']);
  const emittedPackages = new Set<string>();
  const progressEvery = input.progressEvery ?? 500;

  const upsert = async (item: { node?: GraphNodeInput; edge?: GraphEdgeInput }, example: string): Promise<boolean> => {
    try {
      if (item.node) await graph.upsertNode(item.node);
      if (item.edge) await graph.upsertEdge(item.edge);
      return true;
    } catch (error) {
      // A refused item (over a limit) is one item lost, not a failed sync; anything else is the store's failure.
      if (!(error instanceof ValidationError)) throw error;
      warnings.add('invalid-item', example);
      return false;
    }
  };

  const emitPackage = async (ecosystem: Ecosystem, name: string): Promise<string> => {
    const id = codeIds.package(ecosystem, name);
    if (!emittedPackages.has(id)) {
      emittedPackages.add(id);
      if (await upsert({ node: { id, type: 'package', name: name.slice(0, 512), props: { ecosystem } } }, `${ecosystem}:${name}`)) stats.packages++;
    }
    return id;
  };

  const emitSymbols = async (path: string, language: LanguageId, symbols: CodeSymbol[]): Promise<number> => {
    const fileId = codeIds.file(repository, path);
    let emitted = 0;
    for (const symbol of symbols) {
      const id = codeIds.symbol(repository, path, symbol.qualifiedName);
      const props = {
        kind: symbol.kind,
        line: symbol.line,
        endLine: symbol.endLine,
        signature: symbol.signature,
        exported: symbol.exported,
        qualifiedName: clip(symbol.qualifiedName),
        ...(symbol.parent ? { parent: clip(symbol.parent) } : {}),
        language,
        path: clip(path),
      };
      if (!(await upsert({ node: { id, type: 'symbol', name: symbol.name, props } }, `${path}#${symbol.qualifiedName}`))) continue;
      if (await upsert({ edge: { from: fileId, type: 'DEFINES', to: id } }, `${path}#${symbol.qualifiedName}`)) emitted++;
    }
    return emitted;
  };

  const analyzeCode = async (entry: ArchiveFile, language: LanguageId, result: FileResult): Promise<void> => {
    const knownSha = input.currentShas?.get(entry.path);
    const previous = input.previousShas?.get(entry.path);
    if (knownSha && previous === knownSha) {
      result.status = 'unchanged';
      stats.unchanged++;
      return;
    }
    const bytes = await entry.read();
    const sha = knownSha ?? gitBlobSha(bytes);
    result.sha = sha;
    if (previous === sha) {
      result.status = 'unchanged';
      stats.unchanged++;
      return;
    }
    const skip = (code: WarningCode) => {
      result.status = 'skipped';
      result.reason = code;
      stats.skipped++;
      warnings.add(code, entry.path);
    };
    if (looksBinary(bytes)) return skip('binary');
    let source: string;
    try {
      source = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
    } catch {
      return skip('not-utf8');
    }
    if (looksMinified(source)) {
      result.status = 'ignored';
      result.reason = 'generated';
      stats.ignored++;
      return;
    }
    // The parse starts now; with a worker pool the archive read goes on meanwhile (InFlight).
    const parsing = Promise.resolve()
      .then(() => extractor.extract(language, source))
      .then(
        (extraction: FileExtraction & { truncated?: boolean }) => ({ extraction }),
        (error: unknown) => ({ error }),
      );
    const size = bytes.length;
    await inFlight.add(async () => {
      const outcome = await parsing;
      if ('error' in outcome) {
        const { error } = outcome;
        return skip(error instanceof GrammarUnavailableError ? 'grammar-unavailable' : error instanceof ParseTimeoutError ? 'parse-timeout' : 'parser-crashed');
      }
      const { extraction } = outcome;
      if (extraction.hasSyntaxErrors) warnings.add('syntax-errors', entry.path);
      if (extraction.truncated) warnings.add('too-many-symbols', entry.path);
      result.status = 'parsed';
      stats.parsed++;
      stats.sourceBytes += size;
      result.symbols = await emitSymbols(entry.path, language, extraction.symbols);
      stats.symbols += result.symbols;
      result.imports = extraction.imports.length;
      if (extraction.imports.length > 0) pending.push({ path: entry.path, language, imports: extraction.imports });
    });
  };

  const reading = readArchive(
    input.archive,
    {
      warn: (code, detail) => warnings.add(code, detail),
      file: async (entry) => {
        allPaths.add(entry.path);
        stats.files++;
        const kind = classifyPath(entry.path);
        const name = entry.path.slice(entry.path.lastIndexOf('/') + 1);
        if (name === 'setup.py' || name === 'setup.cfg' || name === 'pyproject.toml') pythonRoots.add(entry.path.slice(0, Math.max(0, entry.path.lastIndexOf('/'))));
        if (kind.kind === 'ignored') {
          stats.ignored++;
          return;
        }
        const result: FileResult = { path: entry.path, status: 'skipped', symbols: 0, imports: 0, ...(kind.kind === 'code' ? { language: kind.language } : {}) };
        files.push(result);
        if (entry.size > limits.maxFileBytes) {
          result.reason = 'file-too-large';
          stats.skipped++;
          warnings.add('file-too-large', `${entry.path} (${entry.size} bytes)`);
        } else if (kind.kind === 'manifest') {
          result.status = 'manifest';
          stats.manifests++;
          const bytes = await entry.read();
          result.sha = input.currentShas?.get(entry.path) ?? gitBlobSha(bytes);
          try {
            manifests.push({ kind: kind.manifest, path: entry.path, facts: parseManifest(kind.manifest, entry.path, new TextDecoder().decode(bytes)) });
          } catch (error) {
            warnings.add('manifest-unreadable', `${entry.path}: ${(error as Error).message.split('\n')[0]}`);
          }
        } else {
          await analyzeCode(entry, kind.language, result);
        }
        if (input.onProgress && stats.files % progressEvery === 0) await input.onProgress({ ...stats });
      },
    },
    limits,
    input.signal,
  );
  let archive: Awaited<typeof reading>;
  try {
    archive = await reading;
  } catch (error) {
    // Files still in flight settle first: nothing reaches the sink after the analysis has settled.
    await inFlight.drain().catch(() => undefined);
    throw error;
  }
  // Files read before the stop (complete or not) are finished before imports are resolved.
  await inFlight.drain();
  stats.entries = archive.entries;
  stats.inflatedBytes = archive.inflatedBytes;

  // Manifests: declared dependencies, and what import resolution needs to know.
  const ctx = emptyResolutionContext(allPaths);
  ctx.pythonRoots = pythonRoots;
  const declared: ManifestDependency[] = [];
  for (const { path, facts } of manifests) {
    const dir = path.slice(0, Math.max(0, path.lastIndexOf('/')));
    if (facts.packageImports) ctx.packageImports.set(dir, facts.packageImports);
    if (facts.goModule) ctx.goModules.push({ dir, module: facts.goModule });
    for (const dependency of facts.dependencies) {
      declared.push(dependency);
      let names = ctx.declared.get(dependency.ecosystem);
      if (!names) ctx.declared.set(dependency.ecosystem, (names = new Set()));
      names.add(dependency.name);
      if (dependency.ecosystem === 'go') ctx.goRequires.add(dependency.name);
    }
  }

  // Imports, resolved now that every path and manifest is known.
  const resolver = new ImportResolver(ctx);
  for (const file of pending) {
    const fromId = codeIds.file(repository, file.path);
    const seen = new Set<string>();
    for (const ref of file.imports) {
      let targets: ImportTarget[];
      try {
        targets = resolver.resolve(file.language, file.path, ref);
      } catch {
        continue;
      }
      for (const target of targets) {
        if (target.kind === 'file' && target.path === file.path) continue;
        const to = target.kind === 'file' ? codeIds.file(repository, target.path) : await emitPackage(target.ecosystem, target.name);
        if (seen.has(to)) continue;
        seen.add(to);
        if (await upsert({ edge: { from: fromId, type: 'IMPORTS', to, props: { line: ref.line } } }, `${file.path} → ${ref.specifier}`)) stats.importEdges++;
      }
    }
  }

  // DEPENDS_ON: one edge per package; the manifest nearest the root decides the version, prod wins over dev.
  const byPackage = new Map<string, ManifestDependency & { prod: boolean }>();
  const depth = (path: string) => path.split('/').length;
  for (const dependency of declared) {
    const key = `${dependency.ecosystem}\u0000${dependency.name}`;
    const current = byPackage.get(key);
    const prod = (current?.prod ?? false) || dependency.scope === 'prod';
    if (!current || depth(dependency.manifest) < depth(current.manifest) || (depth(dependency.manifest) === depth(current.manifest) && dependency.manifest < current.manifest)) {
      byPackage.set(key, { ...dependency, prod });
    } else current.prod = prod;
  }
  const repositoryId = codeIds.repository(repository);
  const sortedDependencies = [...byPackage.values()].sort((a, b) => a.ecosystem.localeCompare(b.ecosystem) || a.name.localeCompare(b.name));
  for (const dependency of sortedDependencies) {
    const to = await emitPackage(dependency.ecosystem, dependency.name);
    const props = { version: clip(dependency.version), scope: dependency.prod ? 'prod' : 'dev', ecosystem: dependency.ecosystem, manifest: clip(dependency.manifest) };
    if (await upsert({ edge: { from: repositoryId, type: 'DEPENDS_ON', to, props } }, `${dependency.ecosystem}:${dependency.name}`)) stats.dependencies++;
  }

  return {
    complete: archive.complete,
    ...(archive.incompleteReason ? { incompleteReason: archive.incompleteReason } : {}),
    files,
    warnings: warnings.list(),
    stats,
  };
}
