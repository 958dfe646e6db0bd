/**
 * Symbol extraction on a fixed real corpus, beside universal-ctags on the same files in the same run:
 * - TypeScript: zod's own sources (node_modules/zod/src), JavaScript: undici's (node_modules/undici/lib),
 *   Python: the standard library Debian ships (/usr/lib/python3.X, tests left out);
 * - per language and overall: time against ctags on one thread (ctags is single-threaded) and with a
 *   pool of 2 parse workers, tree-sitter's parse alone (the floor under our time: no extraction),
 *   files/s, symbols/s, and recall of ctags' function/class/method definitions (matched by file,
 *   name and line). Passes are interleaved and the best of three is kept; the CPU other processes
 *   used meanwhile is printed, since a shared machine slows the 2-worker figure first;
 * - a ~200 MB tar.gz built from those sources repeated, streamed through analyzeRepositoryArchive in
 *   a child process, on one thread and with 2 workers: throughput and peak RSS.
 * Targets: recall ≥ 95 %, time within 3× of ctags, peak RSS < 512 MB for the 200 MB archive.
 * Without universal-ctags (`apt-get install universal-ctags`) the comparison is skipped, not failed.
 *
 * `BENCH_CODE_ARCHIVE_MB` sets the archive size (0 skips that part); `BENCH_CODE_ARCHIVE_WORKERS`
 * the archive runs' worker counts (default `0,2`: one thread, then 2 workers).
 */
import { spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tarStream from 'tar-stream';
import { Language, Parser } from 'web-tree-sitter';
import { prepareEdge, prepareNode } from '#graph/model.ts';
import type { GraphSink } from '#connectors/types.ts';
import { analyzeRepositoryArchive, type SymbolExtractor } from '../functions/code/analyze.ts';
import { LANGUAGES } from '../functions/code/languages.ts';
import { TreeSitterExtractor } from '../functions/code/tree-sitter.ts';
import type { CodeSymbol, LanguageId } from '../functions/code/types.ts';
import { WorkerPoolExtractor } from '../functions/code/worker-pool.ts';
import { figure } from './support.ts';

const ROOT = process.cwd();
const ARCHIVE_MB = Number(process.env.BENCH_CODE_ARCHIVE_MB ?? 200);
const ARCHIVE_WORKERS = (process.env.BENCH_CODE_ARCHIVE_WORKERS ?? '0,2').split(',').map(Number);
const CTAGS_KINDS = new Set(['function', 'class', 'method', 'member']);
const PASSES = 3;
const POOL_WORKERS = 2;

interface Corpus {
  label: string;
  language: LanguageId;
  ctagsLanguage: string;
  root: string;
  files: string[];
}

function walk(dir: string, keep: (path: string) => boolean, skipDir: (name: string) => boolean, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!skipDir(entry.name)) walk(path, keep, skipDir, out);
    } else if (entry.isFile() && keep(path) && statSync(path).size < 1024 * 1024) out.push(path);
  }
  return out;
}

function corpora(): Corpus[] {
  const list: Corpus[] = [];
  const zod = join(ROOT, 'node_modules/zod/src');
  if (existsSync(zod)) list.push({ label: 'TypeScript (zod/src)', language: 'typescript', ctagsLanguage: 'TypeScript', root: zod, files: walk(zod, (path) => path.endsWith('.ts') && !path.endsWith('.d.ts'), () => false) });
  const undici = join(ROOT, 'node_modules/undici/lib');
  if (existsSync(undici)) list.push({ label: 'JavaScript (undici/lib)', language: 'javascript', ctagsLanguage: 'JavaScript', root: undici, files: walk(undici, (path) => path.endsWith('.js'), () => false) });
  const python = readdirSync('/usr/lib')
    .filter((name) => /^python3\.\d+$/.test(name))
    .sort((a, b) => Number(b.split('.')[1]) - Number(a.split('.')[1]))[0];
  if (python) {
    const root = join('/usr/lib', python);
    const skip = new Set(['test', 'tests', 'idle_test', 'site-packages', 'dist-packages', '__pycache__']);
    list.push({ label: `Python (/usr/lib/${python})`, language: 'python', ctagsLanguage: 'Python', root, files: walk(root, (path) => path.endsWith('.py'), (name) => skip.has(name)) });
  }
  return list.filter((corpus) => corpus.files.length > 0);
}

function ctagsAvailable(): boolean {
  const probe = spawnSync('ctags', ['--version'], { encoding: 'utf8' });
  return probe.status === 0 && /Universal Ctags/.test(probe.stdout);
}

/** ctags on the corpus: its run time (best of three) and its function/class/method tags by file. */
function runCtags(corpus: Corpus): { ms: number; tags: Map<string, { name: string; line: number; kind: string }[]>; count: number } {
  const args = [`--languages=${corpus.ctagsLanguage}`, '--extras=-{anonymous}', '--output-format=json', '--fields=+n', '-f', '-', '-L', '-'];
  let best = Infinity;
  let stdout = '';
  for (let run = 0; run < 3; run++) {
    const started = performance.now();
    const result = spawnSync('ctags', args, { input: corpus.files.join('\n'), encoding: 'utf8', maxBuffer: 512 * 1024 * 1024 });
    best = Math.min(best, performance.now() - started);
    stdout = result.stdout;
  }
  const tags = new Map<string, { name: string; line: number; kind: string }[]>();
  let count = 0;
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const tag = JSON.parse(line) as { _type: string; name: string; path: string; line: number; kind: string };
    if (tag._type !== 'tag' || !CTAGS_KINDS.has(tag.kind)) continue;
    count++;
    const list = tags.get(tag.path) ?? [];
    list.push({ name: tag.name, line: tag.line, kind: tag.kind });
    tags.set(tag.path, list);
  }
  return { ms: best, tags, count };
}

/** Our extraction of the corpus: read, decode, parse, extract, with as many files in flight as the extractor takes. */
async function runOurs(corpus: Corpus, extractor: SymbolExtractor): Promise<{ ms: number; results: CodeSymbol[][] }> {
  const results: CodeSymbol[][] = new Array(corpus.files.length);
  const window: Promise<unknown>[] = [];
  const started = performance.now();
  for (let i = 0; i < corpus.files.length; i++) {
    const source = readFileSync(corpus.files[i]!, 'utf8');
    window.push(extractor.extract(corpus.language, source).then((extraction) => (results[i] = extraction.symbols)));
    if (window.length >= (extractor.concurrency ?? 1)) await window.shift();
  }
  await Promise.all(window);
  return { ms: performance.now() - started, results };
}

/** tree-sitter's parse alone, no extraction: the floor under our time. */
async function runParseOnly(corpus: Corpus, parser: Parser): Promise<number> {
  const started = performance.now();
  for (const file of corpus.files) parser.parse(readFileSync(file, 'utf8'))?.delete();
  return performance.now() - started;
}

async function parserFor(language: LanguageId): Promise<Parser> {
  const require = createRequire(import.meta.url);
  const wasm = join(dirname(require.resolve('@vscode/tree-sitter-wasm/package.json')), 'wasm', LANGUAGES[language].grammar);
  const parser = new Parser();
  parser.setLanguage(await Language.load(readFileSync(wasm)));
  return parser;
}

/** Busy CPU seconds of the whole machine so far (Linux /proc/stat), or undefined elsewhere. */
function machineBusySeconds(): number | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    // user nice system idle iowait irq softirq steal, in USER_HZ (100/s)
    return (fields.reduce((sum, value) => sum + value, 0) - fields[3]! - fields[4]!) / 100;
  } catch {
    return undefined;
  }
}

const ownCpuSeconds = () => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
};

/** A tar.gz of about `megabytes` MB: the corpora's files repeated under numbered copies, written as a stream. */
async function writeArchive(path: string, sets: Corpus[], megabytes: number): Promise<{ bytes: number; files: number }> {
  const pack = tarStream.pack();
  const gzip = createGzip();
  const out = createWriteStream(path);
  let compressed = 0;
  gzip.on('data', (chunk: Buffer) => (compressed += chunk.length));
  const writing = pipeline(pack as unknown as NodeJS.ReadableStream, gzip, out);
  let files = 0;
  const target = megabytes * 1024 * 1024;
  for (let copy = 0; compressed < target; copy++) {
    for (const corpus of sets) {
      for (const file of corpus.files) {
        if (compressed >= target) break;
        const content = readFileSync(file);
        await new Promise<void>((resolve, reject) => pack.entry({ name: `bench-repo-0000/copy${copy}/${corpus.language}/${relative(corpus.root, file)}`, size: content.length }, content, (error) => (error ? reject(error) : resolve())));
        files++;
      }
    }
  }
  pack.finalize();
  await writing;
  return { bytes: statSync(path).size, files };
}

/** Child process: stream the archive through the analysis with a validating, counting sink; print figures as JSON. */
async function archiveChild(path: string): Promise<void> {
  let nodes = 0;
  let edges = 0;
  const sink: GraphSink = {
    upsertNode: async (node) => {
      prepareNode(node);
      nodes++;
    },
    upsertEdge: async (edge) => {
      prepareEdge(edge);
      edges++;
    },
  };
  const started = performance.now();
  const result = await analyzeRepositoryArchive({
    repository: { source: 'github', repoKey: 'bench/repo' },
    archive: createReadStream(path, { highWaterMark: 256 * 1024 }),
    graph: sink,
    limits: { maxTotalBytes: 8 * 1024 * 1024 * 1024, maxEntries: 1_000_000 },
  });
  const ms = performance.now() - started;
  const usage = process.resourceUsage();
  const cpuSeconds = (usage.userCPUTime + usage.systemCPUTime) / 1e6;
  console.log(JSON.stringify({ ms, cpuSeconds, nodes, edges, complete: result.complete, stats: result.stats, peakRssMb: usage.maxRSS / 1024, memory: process.memoryUsage() }));
}

/** ctags' function/class/method tags that our symbols match by file, name and line. */
function recall(corpus: Corpus, ctags: ReturnType<typeof runCtags>, results: CodeSymbol[][]) {
  const found = new Map<string, Set<string>>();
  // ctags names `#field` methods without the `#`.
  corpus.files.forEach((file, i) => found.set(file, new Set(results[i]!.map((symbol) => `${symbol.name.replace(/^#/, '')}\u0000${symbol.line}`))));
  let matched = 0;
  let objectLiterals = 0;
  let objectLiteralsMatched = 0;
  const missed: string[] = [];
  for (const [file, tags] of ctags.tags) {
    const mine = found.get(file) ?? new Set<string>();
    const lines = corpus.language === 'python' ? [] : readFileSync(file, 'utf8').split('\n');
    for (const tag of tags) {
      const hit = mine.has(`${tag.name}\u0000${tag.line}`);
      // ctags' JavaScript parser tags object literals (`const options = {`, `module.exports = {`) as classes.
      const objectLiteral = tag.kind === 'class' && lines.length > 0 && !/\b(class|function)\b/.test(lines[tag.line - 1] ?? '');
      if (objectLiteral) {
        objectLiterals++;
        if (hit) objectLiteralsMatched++;
      }
      if (hit) matched++;
      else if (missed.length < Number(process.env.BENCH_CODE_MISSED ?? 5)) missed.push(`${relative(corpus.root, file)}:${tag.line} ${tag.name}`);
    }
  }
  return { matched, objectLiterals, objectLiteralsMatched, missed };
}

export async function benchCodeSymbols(): Promise<void> {
  console.log('\n# code symbols: tree-sitter (web-tree-sitter, wasm) vs universal-ctags, same files, same run');
  console.log(`ctags runs on 1 thread; "2 workers" is our WorkerPoolExtractor on ${POOL_WORKERS} threads (needs 2 free cores), "1 thread" the in-thread extractor`);
  const sets = corpora();
  const haveCtags = ctagsAvailable();
  if (!haveCtags) console.log('universal-ctags not found (apt-get install universal-ctags): the comparison is skipped');
  const single = new TreeSitterExtractor();
  const pool = new WorkerPoolExtractor({ workers: POOL_WORKERS });
  const total = { files: 0, single: 0, pool: 0, parse: 0, ctags: 0, symbols: 0, ctagsTags: 0, matched: 0 };
  try {
    for (const corpus of sets) {
      const bytes = corpus.files.reduce((sum, file) => sum + statSync(file).size, 0);
      // Warm-up: grammars loaded and JIT-compiled in this thread and in the workers.
      await runOurs({ ...corpus, files: corpus.files.slice(0, 40) }, single);
      await runOurs(corpus, pool);
      const parser = await parserFor(corpus.language);
      const best = { single: Infinity, pool: Infinity, parse: Infinity };
      let results: CodeSymbol[][] = [];
      let poolSame = true;
      const busyBefore = machineBusySeconds();
      const ownBefore = ownCpuSeconds();
      const started = performance.now();
      for (let pass = 0; pass < PASSES; pass++) {
        const one = await runOurs(corpus, single);
        const two = await runOurs(corpus, pool);
        best.single = Math.min(best.single, one.ms);
        best.pool = Math.min(best.pool, two.ms);
        best.parse = Math.min(best.parse, await runParseOnly(corpus, parser));
        results = one.results;
        poolSame &&= JSON.stringify(two.results) === JSON.stringify(one.results);
      }
      const busyAfter = machineBusySeconds();
      const othersCores = busyBefore !== undefined && busyAfter !== undefined ? (busyAfter - busyBefore - (ownCpuSeconds() - ownBefore)) / ((performance.now() - started) / 1000) : undefined;
      parser.delete();
      const symbols = results.reduce((sum, list) => sum + list.length, 0);
      figure(`${corpus.label}: files`, corpus.files.length);
      figure(`${corpus.label}: source`, bytes / 1024 / 1024, 'MB');
      figure(`${corpus.label}: tree-sitter files/s, 1 thread`, corpus.files.length / (best.single / 1000));
      figure(`${corpus.label}: tree-sitter symbols/s, 1 thread`, symbols / (best.single / 1000));
      figure(`${corpus.label}: tree-sitter time, 1 thread`, best.single, 'ms');
      figure(`${corpus.label}: tree-sitter time, 2 workers`, best.pool, 'ms');
      figure(`${corpus.label}: parse alone (the floor), 1 thread`, best.parse, 'ms');
      figure(`${corpus.label}: 2 workers found the same symbols`, poolSame ? 'yes' : 'NO');
      if (othersCores !== undefined) figure(`${corpus.label}: other processes meanwhile (busy cores of 2)`, Math.max(0, othersCores));
      total.files += corpus.files.length;
      total.single += best.single;
      total.pool += best.pool;
      total.parse += best.parse;
      total.symbols += symbols;
      if (!haveCtags) continue;
      const ctags = runCtags(corpus);
      const { matched, objectLiterals, objectLiteralsMatched, missed } = recall(corpus, ctags, results);
      figure(`${corpus.label}: ctags time (best of 3, 1 thread)`, ctags.ms, 'ms');
      figure(`${corpus.label}: 1 thread vs ctags (target ≤ 3×)`, best.single / ctags.ms, '×');
      figure(`${corpus.label}: 2 workers vs ctags (target ≤ 3×)`, best.pool / ctags.ms, '×');
      figure(`${corpus.label}: parse alone vs ctags`, best.parse / ctags.ms, '×');
      figure(`${corpus.label}: ctags function/class/method tags`, ctags.count);
      figure(`${corpus.label}: recall of ctags' definitions (target ≥ 95%)`, (100 * matched) / Math.max(1, ctags.count), '%');
      if (objectLiterals > 0) {
        figure(`${corpus.label}: of which ctags "classes" that are object literals`, objectLiterals);
        figure(`${corpus.label}: recall without those`, (100 * (matched - objectLiteralsMatched)) / Math.max(1, ctags.count - objectLiterals), '%');
      }
      if (missed.length > 0) console.log(`  e.g. missed: ${missed.join('; ')}`);
      total.ctags += ctags.ms;
      total.ctagsTags += ctags.count;
      total.matched += matched;
    }
  } finally {
    await single.dispose();
    await pool.dispose();
  }
  figure('all: tree-sitter files/s, 1 thread', total.files / (total.single / 1000));
  figure('all: tree-sitter symbols/s, 1 thread', total.symbols / (total.single / 1000));
  if (haveCtags) {
    figure('all: 1 thread vs ctags (target ≤ 3×)', total.single / total.ctags, '×');
    figure('all: 2 workers vs ctags (target ≤ 3×)', total.pool / total.ctags, '×');
    figure('all: parse alone vs ctags', total.parse / total.ctags, '×');
    figure("all: recall of ctags' definitions (target ≥ 95%)", (100 * total.matched) / Math.max(1, total.ctagsTags), '%');
  }

  if (ARCHIVE_MB <= 0 || sets.length === 0) return;
  const path = join(tmpdir(), `opentrace-code-bench-${process.pid}.tar.gz`);
  try {
    const written = await writeArchive(path, sets, ARCHIVE_MB);
    figure('archive: tar.gz size', written.bytes / 1024 / 1024, 'MB');
    for (const workers of ARCHIVE_WORKERS) {
      const mode = workers > 0 ? `${workers} workers` : '1 thread';
      const env = { ...process.env, OPENTRACE_CODE_WORKERS: String(workers) };
      const busyBefore = machineBusySeconds();
      const started = performance.now();
      const child = spawnSync(process.execPath, [new URL(import.meta.url).pathname, '--archive-child', path], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024, env });
      if (child.status !== 0) throw new Error(`archive run failed: ${child.stderr}`);
      const run = JSON.parse(child.stdout.trim().split('\n').pop()!) as { ms: number; cpuSeconds: number; nodes: number; edges: number; complete: boolean; stats: { inflatedBytes: number; parsed: number; symbols: number }; peakRssMb: number };
      const busyAfter = machineBusySeconds();
      const wall = (performance.now() - started) / 1000;
      if (workers === ARCHIVE_WORKERS[0]) {
        figure('archive: inflated', run.stats.inflatedBytes / 1024 / 1024, 'MB');
        figure('archive: files parsed', run.stats.parsed);
        figure('archive: symbols', run.stats.symbols);
        figure('archive: graph items (validated)', run.nodes + run.edges);
      }
      figure(`archive, ${mode}: time`, run.ms / 1000, 's');
      figure(`archive, ${mode}: files/s`, run.stats.parsed / (run.ms / 1000));
      figure(`archive, ${mode}: inflated MB/s`, run.stats.inflatedBytes / 1024 / 1024 / (run.ms / 1000));
      figure(`archive, ${mode}: peak RSS (target < 512 MB)`, run.peakRssMb, 'MB');
      figure(`archive, ${mode}: read completely`, run.complete ? 'yes' : 'no');
      if (busyBefore !== undefined && busyAfter !== undefined) figure(`archive, ${mode}: other processes meanwhile (busy cores of 2)`, Math.max(0, (busyAfter - busyBefore - run.cpuSeconds) / wall));
    }
  } finally {
    rmSync(path, { force: true });
  }
}

if (import.meta.main) {
  if (process.argv[2] === '--archive-child') await archiveChild(process.argv[3]!);
  else await benchCodeSymbols();
}
