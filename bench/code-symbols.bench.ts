/**
 * Symbol extraction on a fixed real corpus, beside universal-ctags on the same files in the same run:
 * - TypeScript: zod's own sources (node_modules/zod/src), JavaScript: undici's (node_modules/undici/lib),
 *   Python: the standard library Debian ships (/usr/lib/python3.X, tests left out);
 * - per language and overall: files/s, symbols/s, time against ctags, and recall of ctags'
 *   function/class/method definitions (matched by file, name and line);
 * - a ~200 MB tar.gz built from those sources repeated, streamed through analyzeRepositoryArchive in
 *   a child process: throughput and peak RSS.
 * Targets: recall ≥ 95 %, time within 3× of ctags, peak RSS < 512 MB for the 200 MB archive.
 * Without universal-ctags (`apt-get install universal-ctags`) the comparison is skipped, not failed.
 *
 * `BENCH_CODE_ARCHIVE_MB` sets the archive size (0 skips that part).
 */
import { spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tarStream from 'tar-stream';
import { prepareEdge, prepareNode } from '#graph/model.ts';
import type { GraphSink } from '#connectors/types.ts';
import { analyzeRepositoryArchive } from '../functions/code/analyze.ts';
import { TreeSitterExtractor } from '../functions/code/tree-sitter.ts';
import type { LanguageId } from '../functions/code/types.ts';
import { figure } from './support.ts';

const ROOT = process.cwd();
const ARCHIVE_MB = Number(process.env.BENCH_CODE_ARCHIVE_MB ?? 200);
const CTAGS_KINDS = new Set(['function', 'class', 'method', 'member']);

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

/** Our extraction on the corpus: read, decode, parse, extract; best of two passes after a warm-up. */
async function runOurs(corpus: Corpus, extractor: TreeSitterExtractor): Promise<{ ms: number; bytes: number; symbols: number; found: Map<string, Set<string>> }> {
  const sources = corpus.files.map((path) => readFileSync(path, 'utf8'));
  for (const source of sources.slice(0, 20)) await extractor.extract(corpus.language, source);
  let best = Infinity;
  let symbols = 0;
  const found = new Map<string, Set<string>>();
  for (let pass = 0; pass < 2; pass++) {
    symbols = 0;
    const started = performance.now();
    for (let i = 0; i < corpus.files.length; i++) {
      const source = readFileSync(corpus.files[i]!, 'utf8');
      const { symbols: list } = await extractor.extract(corpus.language, source);
      symbols += list.length;
      // ctags names `#field` methods without the `#`.
      if (pass === 0) found.set(corpus.files[i]!, new Set(list.map((symbol) => `${symbol.name.replace(/^#/, '')}\u0000${symbol.line}`)));
    }
    best = Math.min(best, performance.now() - started);
  }
  return { ms: best, bytes: sources.reduce((sum, source) => sum + Buffer.byteLength(source), 0), symbols, found };
}

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
  console.log(JSON.stringify({ ms, nodes, edges, complete: result.complete, stats: result.stats, peakRssMb: process.resourceUsage().maxRSS / 1024, memory: process.memoryUsage() }));
}

export async function benchCodeSymbols(): Promise<void> {
  console.log('\n# code symbols: tree-sitter (web-tree-sitter, wasm) vs universal-ctags, same files, same run');
  const sets = corpora();
  const haveCtags = ctagsAvailable();
  if (!haveCtags) console.log('universal-ctags not found (apt-get install universal-ctags): the comparison is skipped');
  const extractor = new TreeSitterExtractor();
  let total = { files: 0, ms: 0, ctagsMs: 0, symbols: 0, ctagsTags: 0, matched: 0 };
  for (const corpus of sets) {
    const ours = await runOurs(corpus, extractor);
    figure(`${corpus.label}: files`, corpus.files.length);
    figure(`${corpus.label}: source`, ours.bytes / 1024 / 1024, 'MB');
    figure(`${corpus.label}: tree-sitter files/s`, corpus.files.length / (ours.ms / 1000));
    figure(`${corpus.label}: tree-sitter symbols/s`, ours.symbols / (ours.ms / 1000));
    figure(`${corpus.label}: tree-sitter time`, ours.ms, 'ms');
    total = { ...total, files: total.files + corpus.files.length, ms: total.ms + ours.ms, symbols: total.symbols + ours.symbols };
    if (!haveCtags) continue;
    const ctags = runCtags(corpus);
    let matched = 0;
    let objectLiterals = 0;
    let objectLiteralsMatched = 0;
    const missed: string[] = [];
    for (const [file, tags] of ctags.tags) {
      const mine = ours.found.get(file) ?? new Set<string>();
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
    figure(`${corpus.label}: ctags time (best of 3)`, ctags.ms, 'ms');
    figure(`${corpus.label}: time vs ctags (target ≤ 3×)`, ours.ms / ctags.ms, '×');
    figure(`${corpus.label}: ctags function/class/method tags`, ctags.count);
    figure(`${corpus.label}: recall of ctags' definitions (target ≥ 95%)`, (100 * matched) / Math.max(1, ctags.count), '%');
    if (objectLiterals > 0) {
      figure(`${corpus.label}: of which ctags "classes" that are object literals`, objectLiterals);
      figure(`${corpus.label}: recall without those`, (100 * (matched - objectLiteralsMatched)) / Math.max(1, ctags.count - objectLiterals), '%');
    }
    if (missed.length > 0) console.log(`  e.g. missed: ${missed.join('; ')}`);
    total = { ...total, ctagsMs: total.ctagsMs + ctags.ms, ctagsTags: total.ctagsTags + ctags.count, matched: total.matched + matched };
  }
  await extractor.dispose();
  figure('all: tree-sitter files/s', total.files / (total.ms / 1000));
  figure('all: tree-sitter symbols/s', total.symbols / (total.ms / 1000));
  if (haveCtags) {
    figure('all: time vs ctags (target ≤ 3×)', total.ms / total.ctagsMs, '×');
    figure("all: recall of ctags' definitions (target ≥ 95%)", (100 * total.matched) / Math.max(1, total.ctagsTags), '%');
  }

  if (ARCHIVE_MB <= 0 || sets.length === 0) return;
  const path = join(tmpdir(), `opentrace-code-bench-${process.pid}.tar.gz`);
  try {
    const written = await writeArchive(path, sets, ARCHIVE_MB);
    const child = spawnSync(process.execPath, [new URL(import.meta.url).pathname, '--archive-child', path], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
    if (child.status !== 0) throw new Error(`archive run failed: ${child.stderr}`);
    const run = JSON.parse(child.stdout.trim().split('\n').pop()!) as { ms: number; nodes: number; edges: number; complete: boolean; stats: { inflatedBytes: number; parsed: number; symbols: number }; peakRssMb: number };
    figure('archive: tar.gz size', written.bytes / 1024 / 1024, 'MB');
    figure('archive: inflated', run.stats.inflatedBytes / 1024 / 1024, 'MB');
    figure('archive: files parsed', run.stats.parsed);
    figure('archive: symbols', run.stats.symbols);
    figure('archive: graph items (validated)', run.nodes + run.edges);
    figure('archive: time', run.ms / 1000, 's');
    figure('archive: files/s', run.stats.parsed / (run.ms / 1000));
    figure('archive: inflated MB/s', run.stats.inflatedBytes / 1024 / 1024 / (run.ms / 1000));
    figure('archive: peak RSS (target < 512 MB)', run.peakRssMb, 'MB');
    figure('archive: read completely', run.complete ? 'yes' : 'no');
  } finally {
    rmSync(path, { force: true });
  }
}

if (import.meta.main) {
  if (process.argv[2] === '--archive-child') await archiveChild(process.argv[3]!);
  else await benchCodeSymbols();
}
