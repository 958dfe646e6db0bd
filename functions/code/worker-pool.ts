/**
 * Parsing on worker threads: a `SymbolExtractor` that hands each file to one of a few threads,
 * each with its own TreeSitterExtractor (its own wasm runtime, grammars and parsers).
 *
 * Why: tree-sitter's parse is most of the time (docs/code-analysis.md) and it is single-threaded
 * wasm, so a second core only helps with a second thread. `concurrency` tells the analysis how
 * many files to keep in flight (two per thread, so a thread never waits for the next file); the
 * analysis still reads the archive as a stream and emits in archive order (analyze.ts).
 *
 * Costs: each thread holds its own wasm heap (grammars, the trees of its current file) and a V8
 * isolate with capped heaps (below); files cross threads as copies (at most `concurrency` of them, each ≤
 * maxFileBytes). It pays off only with a second free core (Lambda allocates CPU in proportion to
 * memory, one vCPU's worth at 1,769 MB), so the pool is opt-in (`OPENTRACE_CODE_WORKERS`, or an
 * extractor passed to the analysis), never the default.
 *
 * The thread runs parse-worker.ts (or a bundled parse-worker.mjs) next to this module; without it
 * (a bundle that does not ship one) `defaultExtractor` stays on one thread.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { GrammarUnavailableError, ParserCrashedError, ParseTimeoutError, sharedExtractor, type ExtractorOptions } from './tree-sitter.ts';
import type { FileExtraction, LanguageId } from './types.ts';

/** The options a worker can receive (a `loadWasm` function cannot cross threads). */
export type WorkerExtractorOptions = Pick<ExtractorOptions, 'wasmDir' | 'parseTimeoutMs' | 'maxSymbolsPerFile'>;

export interface ParseJob {
  id: number;
  language: LanguageId;
  source: string;
}

export type ParseReply =
  | { id: number; result: FileExtraction & { truncated: boolean } }
  | { id: number; error: 'grammar-unavailable' | 'parse-timeout' | 'parser-crashed'; message: string };

interface Slot {
  worker: Worker;
  jobs: Map<number, { resolve: (result: FileExtraction & { truncated: boolean }) => void; reject: (error: Error) => void }>;
}

/** The worker entry next to this module: the source in the repository, or a bundled build of it. */
export function workerScript(): URL | undefined {
  return ['./parse-worker.ts', './parse-worker.mjs'].map((name) => new URL(name, import.meta.url)).find((url) => existsSync(fileURLToPath(url)));
}

/**
 * V8 heap limits per thread. A thread's live data is one file and its symbols, but V8 sizes a new
 * isolate's heap for the machine, and an allocation-heavy thread then holds hundreds of MB it
 * does not need: a 57 MB archive that one thread streams in 343 MB RSS took two threads without
 * limits to 600–800 MB. The young generation is what grows: at 16 MB the same run peaks at 377 MB
 * for no measurable CPU. The old-generation cap is a backstop (a thread over it ends, and its
 * file counts as a parser crash).
 */
const DEFAULT_HEAP_LIMIT_MB = 128;
const YOUNG_GENERATION_MB = 16;

const ERRORS = { 'grammar-unavailable': GrammarUnavailableError, 'parse-timeout': ParseTimeoutError, 'parser-crashed': ParserCrashedError };

export class WorkerPoolExtractor {
  /** Files the analysis keeps in flight: two per thread. */
  readonly concurrency: number;
  readonly #size: number;
  readonly #options: WorkerExtractorOptions;
  readonly #heapLimitMb: number;
  readonly #script: URL;
  readonly #slots: Slot[] = [];
  #nextId = 1;

  constructor(options: WorkerExtractorOptions & { workers?: number; heapLimitMb?: number } = {}) {
    const { workers = 2, heapLimitMb = DEFAULT_HEAP_LIMIT_MB, ...extractorOptions } = options;
    this.#heapLimitMb = heapLimitMb;
    this.#size = Math.max(1, Math.floor(workers));
    this.#options = extractorOptions;
    this.concurrency = this.#size * 2;
    const script = workerScript();
    if (!script) throw new Error('the parse worker (parse-worker.ts or .mjs) is not next to worker-pool');
    this.#script = script;
  }

  extract(language: LanguageId, source: string): Promise<FileExtraction & { truncated: boolean }> {
    while (this.#slots.length < this.#size) this.#slots.push(this.#spawn());
    const slot = this.#slots.reduce((best, next) => (next.jobs.size < best.jobs.size ? next : best));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      slot.jobs.set(id, { resolve, reject });
      // Idle threads do not keep the process alive; a thread with work does (someone awaits it).
      if (slot.jobs.size === 1) slot.worker.ref();
      slot.worker.postMessage({ id, language, source } satisfies ParseJob);
    });
  }

  #spawn(): Slot {
    const worker = new Worker(this.#script, {
      workerData: { options: this.#options },
      resourceLimits: { maxOldGenerationSizeMb: this.#heapLimitMb, maxYoungGenerationSizeMb: YOUNG_GENERATION_MB },
    });
    const slot: Slot = { worker, jobs: new Map() };
    worker.unref();
    worker.on('message', (reply: ParseReply) => {
      const job = slot.jobs.get(reply.id);
      if (!job) return;
      slot.jobs.delete(reply.id);
      if (slot.jobs.size === 0) worker.unref();
      if ('result' in reply) job.resolve(reply.result);
      else job.reject(new ERRORS[reply.error](reply.message));
    });
    // A thread that dies (a crash, out of memory, terminate) fails its files as parser crashes; the next file gets a new thread.
    const lost = (reason: string) => {
      const index = this.#slots.indexOf(slot);
      if (index !== -1) this.#slots.splice(index, 1);
      for (const job of slot.jobs.values()) job.reject(new ParserCrashedError(`the parse worker stopped: ${reason}`));
      slot.jobs.clear();
    };
    worker.on('error', (error) => lost(error.message));
    worker.on('exit', (code) => lost(`exit code ${code}`));
    return slot;
  }

  /** Stops the threads (files still in flight fail as parser crashes). */
  async dispose(): Promise<void> {
    const slots = this.#slots.splice(0);
    await Promise.all(slots.map((slot) => slot.worker.terminate()));
  }
}

let sharedPool: WorkerPoolExtractor | undefined;

/**
 * What the analysis parses with when the caller passes no extractor: the in-thread extractor,
 * or a pool of `OPENTRACE_CODE_WORKERS` threads when that is set (and the worker entry exists).
 */
export function defaultExtractor(): WorkerPoolExtractor | ReturnType<typeof sharedExtractor> {
  const workers = Number(process.env.OPENTRACE_CODE_WORKERS ?? 0);
  if (!(workers >= 1) || !workerScript()) return sharedExtractor();
  return (sharedPool ??= new WorkerPoolExtractor({ workers }));
}
