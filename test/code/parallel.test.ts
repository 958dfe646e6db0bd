/**
 * Parsing in parallel (functions/code/worker-pool.ts) and files in flight (analyze.ts): the graph
 * is the one a single thread writes, in the same order; failures in a worker are the same counted
 * warnings; the archive is still read as a stream with a bounded number of files in flight.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { analyzeRepositoryArchive, type AnalyzeRepositoryInput, type SymbolExtractor } from '../../functions/code/analyze.ts';
import { ParserCrashedError, TreeSitterExtractor } from '../../functions/code/tree-sitter.ts';
import type { CodeSymbol, LanguageId } from '../../functions/code/types.ts';
import { WorkerPoolExtractor } from '../../functions/code/worker-pool.ts';
import { MemorySink, repoArchive, streamOf } from './support.ts';

const repo = { source: 'github', repoKey: 'acme/parallel' };
const pools: WorkerPoolExtractor[] = [];
const pool = (options: ConstructorParameters<typeof WorkerPoolExtractor>[0] = {}) => {
  const created = new WorkerPoolExtractor(options);
  pools.push(created);
  return created;
};

afterAll(async () => {
  await Promise.all(pools.map((created) => created.dispose()));
});

/** This analysis' own sources plus a Python and a JavaScript file: real code in three languages. */
async function mixedRepository(): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  const dir = join(process.cwd(), 'functions/code');
  for (const name of (await readdir(dir)).sort()) if (name.endsWith('.ts')) files[`src/${name}`] = await readFile(join(dir, name), 'utf8');
  files['app/models.py'] = 'import os\n\nclass Invoice:\n    def total(self):\n        return 1\n\nMAX_ITEMS = 10\n';
  files['web/api.js'] = "const http = require('http');\nclass Client {\n  get(path) {}\n}\nmodule.exports = { Client };\n";
  return files;
}

async function analyze(files: Record<string, string>, extra: Partial<AnalyzeRepositoryInput> = {}) {
  const sink = new MemorySink();
  const result = await analyzeRepositoryArchive({ repository: repo, archive: streamOf(await repoArchive(files)), graph: sink, ...extra });
  return { sink, result };
}

const bigTypeScript = (functions: number) => Array.from({ length: functions }, (_, i) => `export function f${i}(a: number): number { return a + ${i}; }`).join('\n');

describe('a worker pool', () => {
  it('writes the graph one thread writes, in the same order', async () => {
    const files = await mixedRepository();
    const single = await analyze(files, { extractor: new TreeSitterExtractor() });
    const parallel = await analyze(files, { extractor: pool({ workers: 2 }) });
    expect(single.result.stats.parsed).toBe(Object.keys(files).length);
    expect(parallel.result).toEqual(single.result);
    expect([...parallel.sink.nodes.keys()]).toEqual([...single.sink.nodes.keys()]);
    expect([...parallel.sink.nodes.values()]).toEqual([...single.sink.nodes.values()]);
    expect(parallel.sink.edges).toEqual(single.sink.edges);
  });

  it('turns failures inside a worker into the same counted warnings', async () => {
    const slow = await analyze({ 'big.ts': bigTypeScript(3000), 'small.ts': 'export const S = 1;\n' }, { extractor: pool({ workers: 1, parseTimeoutMs: 0 }) });
    expect(slow.result.warnings.find((warning) => warning.code === 'parse-timeout')).toMatchObject({ count: 1, examples: ['big.ts'] });
    expect(slow.result.files.find((file) => file.path === 'small.ts')?.status).toBe('parsed');

    const noGrammars = await analyze({ 'a.py': 'def a():\n    pass\n' }, { extractor: pool({ workers: 1, wasmDir: join(process.cwd(), 'no-such-folder') }) });
    expect(noGrammars.result.complete).toBe(true);
    expect(noGrammars.result.warnings).toEqual([{ code: 'grammar-unavailable', count: 1, examples: ['a.py'] }]);
  });

  it('fails the files of a thread that dies as parser crashes, and parses the next file on a new thread', async () => {
    const extractor = pool({ workers: 1 });
    const lost = extractor.extract('typescript', bigTypeScript(20_000));
    await extractor.dispose();
    await expect(lost).rejects.toBeInstanceOf(ParserCrashedError);
    const next = await extractor.extract('python', 'def after():\n    pass\n');
    expect(next.symbols.map((symbol) => symbol.name)).toEqual(['after']);
  });
});

/**
 * Parses nothing: one symbol per file. It answers only when `concurrency` calls wait, and then the
 * newest first, so later files always finish before earlier ones (the file count must be a
 * multiple of 4). A fifth call while four wait would be the analysis overrunning its window.
 */
class OutOfOrderExtractor implements SymbolExtractor {
  readonly concurrency = 4;
  maxInFlight = 0;
  readonly #waiting: (() => void)[] = [];

  async extract(_language: LanguageId, source: string) {
    await new Promise<void>((resolve) => {
      this.#waiting.push(resolve);
      this.maxInFlight = Math.max(this.maxInFlight, this.#waiting.length);
      if (this.#waiting.length === this.concurrency) for (const release of this.#waiting.splice(0).reverse()) release();
    });
    const name = source.trim();
    const symbol: CodeSymbol = { name, qualifiedName: name, kind: 'function', line: 1, endLine: 1, signature: `${name}()`, exported: true };
    return { symbols: [symbol], imports: [], hasSyntaxErrors: false };
  }
}

describe('files in flight', () => {
  const files = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`src/f${String(i).padStart(2, '0')}.ts`, `f${i}\n`]));

  it('are emitted in archive order, at most `concurrency` at a time', async () => {
    const extractor = new OutOfOrderExtractor();
    const { sink, result } = await analyze(files, { extractor });
    expect(extractor.maxInFlight).toBe(4);
    expect(result.files.map((file) => file.path)).toEqual(Object.keys(files));
    expect(result.files.every((file) => file.status === 'parsed' && file.symbols === 1)).toBe(true);
    expect([...sink.nodes.values()].map((node) => node.name)).toEqual(Object.keys(files).map((_, i) => `f${i}`));
  });

  it('stop at the first sink failure, and nothing reaches the sink after the analysis failed', async () => {
    let calls = 0;
    const failing = new MemorySink();
    failing.upsertNode = async () => {
      if (++calls === 3) throw new Error('the graph store is down');
    };
    const run = analyzeRepositoryArchive({ repository: repo, archive: streamOf(await repoArchive(files)), graph: failing, extractor: new OutOfOrderExtractor() });
    await expect(run).rejects.toThrow('the graph store is down');
    const callsAtFailure = calls;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(calls).toBe(callsAtFailure);
  });
});
