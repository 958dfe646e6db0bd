/**
 * Hostile and broken input: each case is skipped with a counted warning and the analysis returns
 * normally (never a failed sync); only a truncated read makes the pass incomplete, so the caller
 * keeps (does not sweep) what it cannot see. Nothing is ever written to disk.
 */
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { readdir, readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { Parser } from 'web-tree-sitter';
import { analyzeRepositoryArchive, formatWarnings, type AnalyzeRepositoryInput, type SymbolExtractor } from '../../functions/code/analyze.ts';
import { codeIds } from '../../functions/code/ids.ts';
import { TreeSitterExtractor, RUNTIME_WASM } from '../../functions/code/tree-sitter.ts';
import { ValidationError } from '#platform/errors.ts';
import { makeTar, MemorySink, repoArchive, streamOf } from './support.ts';

const repo = { source: 'github', repoKey: 'acme/hostile' };
const P = 'acme-hostile-0abc';

async function analyze(archive: Buffer | Readable, extra: Partial<AnalyzeRepositoryInput> = {}) {
  const sink = new MemorySink();
  const result = await analyzeRepositoryArchive({ repository: repo, archive: Buffer.isBuffer(archive) ? streamOf(archive) : archive, graph: sink, ...extra });
  const warning = (code: string) => result.warnings.find((entry) => entry.code === code);
  return { sink, result, warning };
}

const hasSymbol = (sink: MemorySink, path: string, name: string) => sink.nodes.has(codeIds.symbol(repo, path, name));

afterEach(() => {
  jest.restoreAllMocks();
});

describe('files that do not parse', () => {
  it('extracts what it can from a file with syntax errors and counts it', async () => {
    const { sink, result, warning } = await analyze(
      await repoArchive({
        'src/broken.ts': 'export function survivor(): number { return 1 }\n}}}} ((( class { =>\nexport class Half {\n',
        'src/fine.ts': 'export function fine() {}\n',
      }),
    );
    expect(result.complete).toBe(true);
    expect(warning('syntax-errors')).toEqual({ code: 'syntax-errors', count: 1, examples: ['src/broken.ts'] });
    expect(hasSymbol(sink, 'src/broken.ts', 'survivor')).toBe(true);
    expect(hasSymbol(sink, 'src/fine.ts', 'fine')).toBe(true);
  });

  it('skips the files of a grammar that fails to load, and parses the others', async () => {
    const real = new TreeSitterExtractor();
    const probe = new TreeSitterExtractor({
      // The python grammar is corrupt; the runtime and every other grammar load normally.
      loadWasm: async (file) => {
        if (file === 'tree-sitter-python.wasm') return new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 0xff, 0xff]);
        const { createRequire } = await import('node:module');
        const require = createRequire(import.meta.url);
        const { dirname, join } = await import('node:path');
        return file === RUNTIME_WASM ? readFile(require.resolve(`web-tree-sitter/${RUNTIME_WASM}`)) : readFile(join(dirname(require.resolve('@vscode/tree-sitter-wasm/package.json')), 'wasm', file));
      },
    });
    const { sink, result, warning } = await analyze(await repoArchive({ 'a.py': 'def a():\n    pass\n', 'b.py': 'class B:\n    pass\n', 'c.ts': 'export const C = 1;\n' }), { extractor: probe });
    expect(result.complete).toBe(true);
    expect(warning('grammar-unavailable')).toMatchObject({ count: 2, examples: ['a.py', 'b.py'] });
    expect(result.files.find((file) => file.path === 'a.py')).toMatchObject({ status: 'skipped', reason: 'grammar-unavailable' });
    expect(hasSymbol(sink, 'c.ts', 'C')).toBe(true);
    await probe.dispose();
    await real.dispose();
  });

  it('recovers from a parser that throws mid-parse (a wasm trap): the file is skipped, the next one parses', async () => {
    const extractor = new TreeSitterExtractor();
    const parse = Parser.prototype.parse;
    let calls = 0;
    jest.spyOn(Parser.prototype, 'parse').mockImplementation(function (this: Parser, ...args: Parameters<Parser['parse']>) {
      calls++;
      if (calls === 2) throw Object.assign(new Error('memory access out of bounds'), { name: 'RuntimeError' });
      return parse.apply(this, args);
    });
    const { sink, result, warning } = await analyze(
      await repoArchive({ 'one.ts': 'export function one() {}\n', 'two.ts': 'export function two() {}\n', 'three.ts': 'export function three() {}\n' }),
      { extractor },
    );
    expect(result.complete).toBe(true);
    expect(warning('parser-crashed')).toMatchObject({ count: 1, examples: ['two.ts'] });
    expect(hasSymbol(sink, 'one.ts', 'one')).toBe(true);
    expect(hasSymbol(sink, 'two.ts', 'two')).toBe(false);
    expect(hasSymbol(sink, 'three.ts', 'three')).toBe(true);
    await extractor.dispose();
  });

  it('cancels a parse that runs past its time budget', async () => {
    const extractor = new TreeSitterExtractor({ parseTimeoutMs: 0 });
    const big = Array.from({ length: 3000 }, (_, i) => `export function f${i}(a: number): number { return a + ${i}; }`).join('\n');
    const { result, warning } = await analyze(await repoArchive({ 'big.ts': big, 'small.ts': 'export const S = 1;\n' }), { extractor });
    expect(warning('parse-timeout')).toMatchObject({ count: 1, examples: ['big.ts'] });
    expect(result.files.find((file) => file.path === 'small.ts')?.status).toBe('parsed');
    await extractor.dispose();
  });

  it('any other extractor failure is a counted skip too', async () => {
    const failing: SymbolExtractor = { extract: async () => Promise.reject(new Error('boom')) };
    const { result, warning } = await analyze(await repoArchive({ 'x.go': 'package x\n' }), { extractor: failing });
    expect(result.complete).toBe(true);
    expect(warning('parser-crashed')?.count).toBe(1);
  });
});

describe('hostile archive entries', () => {
  it('skips symlinks and hard links without following them, including a link loop', async () => {
    const archive = await makeTar([
      { name: `${P}/`, type: 'directory' },
      { name: `${P}/passwd.ts`, type: 'symlink', linkname: '../../../../etc/passwd' },
      { name: `${P}/loop/a`, type: 'symlink', linkname: 'b' },
      { name: `${P}/loop/b`, type: 'symlink', linkname: 'a' },
      { name: `${P}/self`, type: 'symlink', linkname: '.' },
      { name: `${P}/hard.ts`, type: 'link', linkname: `${P}/real.ts` },
      { name: `${P}/real.ts`, content: 'export function real() {}\n' },
    ]);
    const { sink, result, warning } = await analyze(archive);
    expect(result.complete).toBe(true);
    expect(warning('link-entry')).toMatchObject({ count: 5 });
    expect(result.files.map((file) => file.path)).toEqual(['real.ts']);
    expect(hasSymbol(sink, 'real.ts', 'real')).toBe(true);
  });

  it('skips path traversal and absolute entry names', async () => {
    const archive = await makeTar([
      { name: '../../etc/passwd', content: 'root:x:0:0:root:/root:/bin/bash\n' },
      { name: `${P}/../../evil.ts`, content: 'export function evil() {}\n' },
      { name: '/etc/cron.d/evil.py', content: 'def evil():\n    pass\n' },
      { name: 'C:\\Windows\\evil.ts', content: 'export function evil() {}\n' },
      { name: `${P}/ok.ts`, content: 'export function ok() {}\n' },
    ]);
    const { sink, result, warning } = await analyze(archive);
    expect(result.complete).toBe(true);
    expect(warning('unsafe-path')).toMatchObject({ count: 4 });
    expect(result.files.map((file) => file.path)).toEqual(['ok.ts']);
    expect([...sink.nodes.keys()].filter((id) => id.includes('evil'))).toEqual([]);
  });

  it('skips duplicate entries (the first one counts) and special files', async () => {
    const archive = await makeTar([
      { name: `${P}/a.ts`, content: 'export function first() {}\n' },
      { name: `${P}/a.ts`, content: 'export function second() {}\n' },
      { name: `${P}/pipe`, type: 'fifo' },
    ]);
    const { sink, warning } = await analyze(archive);
    expect(warning('duplicate-entry')?.count).toBe(1);
    expect(warning('special-entry')?.count).toBe(1);
    expect(hasSymbol(sink, 'a.ts', 'first')).toBe(true);
    expect(hasSymbol(sink, 'a.ts', 'second')).toBe(false);
  });

  it('skips binaries, non-UTF-8 text and files over the size cap', async () => {
    const { result, warning } = await analyze(
      await repoArchive({
        'logo.ts': Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0x00, 0x01]),
        'latin1.py': Buffer.from('def caf\xe9():\n    pass\n', 'latin1'),
        'huge.js': `// ${'x'.repeat(2 * 1024 * 1024)}\n`,
        'ok.js': 'function ok() {}\n',
      }),
    );
    expect(result.complete).toBe(true);
    expect(warning('binary')?.examples).toEqual(['logo.ts']);
    expect(warning('not-utf8')?.examples).toEqual(['latin1.py']);
    expect(warning('file-too-large')?.examples).toEqual([`huge.js (${2 * 1024 * 1024 + 4} bytes)`]);
    expect(result.files.find((file) => file.path === 'ok.js')?.status).toBe('parsed');
    expect(formatWarnings(result.warnings)).toContain('Code analysis: 1 × binary files skipped (e.g. logo.ts)');
  });
});

describe('archive bombs and broken downloads', () => {
  it('stops at the entry cap: the pass is incomplete, what was read is kept', async () => {
    const files = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`f${String(i).padStart(3, '0')}.ts`, `export const F${i} = ${i};\n`]));
    const { sink, result, warning } = await analyze(await repoArchive(files), { limits: { maxEntries: 50 } });
    expect(result.complete).toBe(false);
    expect(result.incompleteReason).toMatch(/more than 50 entries/);
    expect(warning('archive-limit')?.count).toBe(1);
    expect(hasSymbol(sink, 'f000.ts', 'F0')).toBe(true);
    expect(result.stats.parsed).toBe(50);
  });

  it('stops a gzip bomb on declared sizes before inflating it', async () => {
    // 512 MiB of zeros in one entry: ~0.5 MiB compressed.
    const bomb = await makeTar([{ name: `${P}/a.ts`, content: 'export function a() {}\n' }, { name: `${P}/zeros.ts`, size: 512 * 1024 * 1024, content: Buffer.alloc(512 * 1024 * 1024) }], { gzip: true });
    expect(bomb.length).toBeLessThan(2 * 1024 * 1024);
    const { sink, result, warning } = await analyze(bomb, { limits: { maxTotalBytes: 64 * 1024 * 1024 } });
    expect(result.complete).toBe(false);
    expect(warning('archive-limit')?.examples[0]).toMatch(/add up to more than 67108864 bytes/);
    expect(result.stats.inflatedBytes).toBeLessThan(16 * 1024 * 1024);
    expect(hasSymbol(sink, 'a.ts', 'a')).toBe(true);
  });

  it('stops on inflated bytes when the stream goes on past what the headers declare', async () => {
    const tar = await makeTar([{ name: `${P}/a.ts`, content: 'export function a() {}\n' }], { gzip: false });
    // Zero blocks after the end-of-archive marker are read (and ignored) by tar readers.
    const archive = gzipSync(Buffer.concat([tar, Buffer.alloc(160 * 1024 * 1024)]));
    const { result, warning } = await analyze(archive, { limits: { maxTotalBytes: 1024 * 1024, maxEntries: 10 } });
    expect(result.complete).toBe(false);
    expect(warning('archive-limit')?.examples[0]).toMatch(/inflates to more than/);
    expect(result.stats.inflatedBytes).toBeLessThan(80 * 1024 * 1024);
  });

  it('reports a truncated download as incomplete, keeping the files it could read', async () => {
    const files = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`m${i}.py`, `def f${i}():\n    return "${'y'.repeat(2000 + i)}"\n`]));
    const archive = await repoArchive(files);
    const { sink, result, warning } = await analyze(archive.subarray(0, Math.floor(archive.length / 2)));
    expect(result.complete).toBe(false);
    expect(warning('archive-corrupt')?.count).toBe(1);
    expect(hasSymbol(sink, 'm0.py', 'f0')).toBe(true);
  });

  it('reports a stream that errors mid-download as incomplete instead of throwing', async () => {
    const archive = await repoArchive({ 'a.ts': 'export function a() {}\n' });
    const failing = Readable.from(
      (async function* () {
        yield archive.subarray(0, 20);
        throw new Error('socket hang up');
      })(),
    );
    const { result } = await analyze(failing);
    expect(result.complete).toBe(false);
    expect(result.incompleteReason).toMatch(/socket hang up/);
  });

  it('reads a plain (not gzipped) tar and a web ReadableStream too', async () => {
    const tar = await makeTar([{ name: `${P}/a.ts`, content: 'export function a() {}\n' }], { gzip: false });
    const { sink, result } = await analyze(tar);
    expect(result.complete).toBe(true);
    expect(hasSymbol(sink, 'a.ts', 'a')).toBe(true);
    const web = new Response(await repoArchive({ 'b.ts': 'export function b() {}\n' })).body!;
    const second = new MemorySink();
    await analyzeRepositoryArchive({ repository: repo, archive: web, graph: second });
    expect(hasSymbol(second, 'b.ts', 'b')).toBe(true);
  });
});

describe('the graph sink', () => {
  it('counts an item the graph refuses and goes on; a store failure still fails the call', async () => {
    const archive = await repoArchive({ 'a.ts': 'export function refused() {}\nexport function kept() {}\n' });
    const sink = new MemorySink();
    const upsertNode = sink.upsertNode.bind(sink);
    sink.upsertNode = async (node) => {
      if (node.name === 'refused') throw new ValidationError('props too large');
      return upsertNode(node);
    };
    const result = await analyzeRepositoryArchive({ repository: repo, archive: streamOf(archive), graph: sink });
    expect(result.warnings).toEqual([{ code: 'invalid-item', count: 1, examples: ['a.ts#refused'] }]);
    expect(hasSymbol(sink, 'a.ts', 'kept')).toBe(true);

    const broken = new MemorySink();
    broken.upsertNode = async () => Promise.reject(new Error('DynamoDB is down'));
    await expect(analyzeRepositoryArchive({ repository: repo, archive: streamOf(archive), graph: broken })).rejects.toThrow('DynamoDB is down');
  });
});

describe('the sandbox', () => {
  it('never writes to disk: no module of the analysis uses a file-writing API', async () => {
    const dir = new URL('../../functions/code/', import.meta.url);
    for (const name of await readdir(dir)) {
      const source = await readFile(new URL(name, dir), 'utf8');
      expect({ name, writes: source.match(/\b(writeFile|createWriteStream|appendFile|mkdir|symlink|rename|copyFile|rm|unlink)(Sync)?\s*\(/g) }).toEqual({ name, writes: null });
    }
  });
});
