/**
 * Re-parsing only what changed: the blob SHA of each file (from the caller's tree, or computed the
 * way git does) is compared with the previous pass's; unchanged files are neither parsed nor
 * emitted. Manifests are read on every pass (they are small and the imports of the changed files
 * resolve against them). And the archive is streamed: memory stays flat on a large archive.
 */
import { describe, expect, it } from '@jest/globals';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createGzip } from 'node:zlib';
import tarStream from 'tar-stream';
import { analyzeRepositoryArchive, gitBlobSha, type SymbolExtractor } from '../../functions/code/analyze.ts';
import { codeIds } from '../../functions/code/ids.ts';
import { sharedExtractor } from '../../functions/code/tree-sitter.ts';
import type { LanguageId } from '../../functions/code/types.ts';
import { MemorySink, repoArchive, streamOf } from './support.ts';

const repo = { source: 'gitlab', repoKey: 'acme/group/ledger' };

/** Counts what it is asked to parse, then parses for real. */
class CountingExtractor implements SymbolExtractor {
  readonly parsed: string[] = [];
  async extract(language: LanguageId, source: string) {
    this.parsed.push(source.split('\n')[0]!);
    return sharedExtractor().extract(language, source);
  }
}

const V1 = {
  'package.json': JSON.stringify({ dependencies: { express: '^4.19.0' } }),
  'src/a.ts': "// a v1\nimport { b } from './b.ts';\nexport function a() { return b(); }\n",
  'src/b.ts': '// b v1\nexport function b() { return 1; }\n',
  'src/gone.ts': '// gone v1\nexport function gone() {}\n',
};
const V2 = {
  'package.json': V1['package.json'],
  'src/a.ts': "// a v2\nimport { b } from './b.ts';\nexport function a2() { return b(); }\n",
  'src/b.ts': V1['src/b.ts'],
  'src/new.ts': "// new v2\nimport { a2 } from './a.ts';\nexport const NEW = 1;\n",
};

describe('incremental analysis', () => {
  it('computes git blob SHAs', () => {
    // `printf 'hello\n' | git hash-object --stdin`
    expect(gitBlobSha(Buffer.from('hello\n'))).toBe('ce013625030ba8dba906f756967f9e9ca394464a');
  });

  it('parses only files whose SHA changed, and still resolves imports to unchanged files', async () => {
    const first = await analyzeRepositoryArchive({ repository: repo, archive: streamOf(await repoArchive(V1)), graph: new MemorySink() });
    const previousShas = new Map(first.files.map((file) => [file.path, file.sha!]));
    expect(previousShas.get('src/b.ts')).toBe(gitBlobSha(Buffer.from(V1['src/b.ts'])));

    const extractor = new CountingExtractor();
    const sink = new MemorySink();
    const second = await analyzeRepositoryArchive({ repository: repo, archive: streamOf(await repoArchive(V2)), graph: sink, previousShas, extractor });
    expect(extractor.parsed.sort()).toEqual(['// a v2', '// new v2']);
    expect(Object.fromEntries(second.files.map((file) => [file.path, file.status]))).toEqual({
      'package.json': 'manifest',
      'src/a.ts': 'parsed',
      'src/b.ts': 'unchanged',
      'src/new.ts': 'parsed',
    });
    expect(second.stats).toMatchObject({ parsed: 2, unchanged: 1 });
    // Nothing is emitted for the unchanged file; the caller keeps its items by not sweeping them.
    expect([...sink.nodes.keys()].some((id) => id.includes('src/b.ts#'))).toBe(false);
    expect(sink.nodes.has(codeIds.symbol(repo, 'src/a.ts', 'a2'))).toBe(true);
    // a.ts → b.ts resolves although b.ts was not parsed this time; new.ts → a.ts too.
    expect(sink.edgesOf('IMPORTS', codeIds.file(repo, 'src/a.ts')).map((edge) => edge.to)).toEqual([codeIds.file(repo, 'src/b.ts')]);
    expect(sink.edgesOf('IMPORTS', codeIds.file(repo, 'src/new.ts')).map((edge) => edge.to)).toEqual([codeIds.file(repo, 'src/a.ts')]);
    // Dependencies are emitted on every pass.
    expect(sink.edgesOf('DEPENDS_ON').map((edge) => edge.to)).toEqual(['package:npm:express']);
    expect(codeIds.file(repo, 'src/a.ts')).toBe('gitlab:file:acme/group/ledger/src/a.ts');
  });

  it('with the tree API’s SHAs, does not even read unchanged files', async () => {
    const currentShas = new Map(Object.entries(V2).map(([path, content]) => [path, gitBlobSha(Buffer.from(content))]));
    const previousShas = new Map(currentShas);
    previousShas.set('src/new.ts', '0'.repeat(40));
    const extractor = new CountingExtractor();
    const result = await analyzeRepositoryArchive({ repository: repo, archive: streamOf(await repoArchive(V2)), graph: new MemorySink(), previousShas, currentShas, extractor });
    expect(extractor.parsed).toEqual(['// new v2']);
    expect(result.files.find((file) => file.path === 'src/a.ts')).toEqual({ path: 'src/a.ts', status: 'unchanged', language: 'typescript', symbols: 0, imports: 0 });
  });
});

describe('streaming', () => {
  it('keeps memory flat while reading an archive that inflates to ~200 MB', async () => {
    // The archive is generated as a stream too: a 1 MiB text block reused for each big file.
    const pack = tarStream.pack();
    const gzip = createGzip({ level: 1 });
    const compressed: Buffer[] = [];
    gzip.on('data', (chunk: Buffer) => compressed.push(chunk));
    const done = new Promise((resolve) => gzip.on('end', resolve));
    pack.pipe(gzip as unknown as NodeJS.WritableStream);
    const block = Buffer.from('lorem ipsum dolor sit amet '.repeat(40_000)).subarray(0, 1024 * 1024);
    const python = Array.from({ length: 600 }, (_, i) => `def f${i}(x):\n    return x + ${i}\n`).join('');
    for (let i = 0; i < 200; i++) {
      pack.entry({ name: `big-repo-1/data/blob-${i}.txt`, size: block.length }, block);
      pack.entry({ name: `big-repo-1/src/m${i}.py` }, python);
    }
    pack.finalize();
    await done;
    const archive = Buffer.concat(compressed);

    // Retained memory, measured after a full collection: what the analysis holds, independent of
    // when the collector chooses to run (peak heap without it varies with machine load).
    const collect = forcedGc();
    const retained = () => {
      collect();
      const now = process.memoryUsage();
      return now.heapUsed + now.arrayBuffers;
    };
    const baseline = retained();
    let peak = 0;
    let samples = 0;
    const sink = new MemorySink();
    // Symbols kept by the in-memory sink are the test's memory, not the analysis's: count, don't keep.
    let symbols = 0;
    sink.upsertNode = async () => {
      // Sample every 20 files, mid-analysis (600 symbols per file).
      if (symbols++ % (20 * 600) === 300) {
        samples++;
        peak = Math.max(peak, retained() - baseline);
      }
    };
    sink.upsertEdge = async () => undefined;
    const result = await analyzeRepositoryArchive({ repository: repo, archive: streamOf(archive, 64 * 1024), graph: sink });

    expect(result.complete).toBe(true);
    expect(result.stats.inflatedBytes).toBeGreaterThan(190 * 1024 * 1024);
    expect(result.stats.parsed).toBe(200);
    expect(symbols).toBe(200 * 600);
    // ~200 MB went through. Holding the archive's files would retain at least that; streaming
    // holds one file at a time (the bench measures peak RSS on a 200 MB archive of real sources).
    expect(samples).toBe(10);
    expect(peak).toBeLessThan(32 * 1024 * 1024);
  });
});

/** `global.gc` without restarting jest under --expose-gc: the flag applies to contexts created after it. */
function forcedGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}
