/**
 * Real source: this project's own `functions/` tree (and its package.json, for the `#graph/*`
 * subpath imports), packed into a tarball in memory the way GitHub serves one, then analysed.
 * Expected lines are read from the files themselves, so the test holds while the code evolves.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { analyzeRepositoryArchive, type AnalyzeRepositoryResult } from '../../functions/code/analyze.ts';
import { codeIds } from '../../functions/code/ids.ts';
import { MemorySink, packPaths, streamOf } from './support.ts';

const root = process.cwd();
const repo = { source: 'github', repoKey: 'opentrace/integrations' };
const PREFIX = 'opentrace-integrations-5f2c1e9';

let sink: MemorySink;
let result: AnalyzeRepositoryResult;

async function lineOf(path: string, pattern: RegExp): Promise<number> {
  const lines = (await readFile(join(root, path), 'utf8')).split('\n');
  const index = lines.findIndex((line) => pattern.test(line));
  if (index === -1) throw new Error(`${pattern} not found in ${path}`);
  return index + 1;
}

beforeAll(async () => {
  // functions/ plus the root package.json (its `imports` map resolves `#graph/*`).
  const archive = await packPaths(root, ['package.json', 'functions'], PREFIX);
  sink = new MemorySink();
  result = await analyzeRepositoryArchive({ repository: repo, archive: streamOf(archive), graph: sink });
});

const symbol = (path: string, name: string) => sink.symbol(codeIds.symbol(repo, path, name));
const importsOf = (path: string) => sink.edgesOf('IMPORTS', codeIds.file(repo, path)).map((edge) => edge.to);

describe('the project’s own functions/ tree', () => {
  it('reads every file and parses every TypeScript file', () => {
    expect(result.complete).toBe(true);
    expect(result.warnings.filter((warning) => warning.code !== 'syntax-errors')).toEqual([]);
    const typescript = result.files.filter((file) => file.language === 'typescript');
    expect(typescript.length).toBeGreaterThan(50);
    expect(typescript.every((file) => file.status === 'parsed' && /^[0-9a-f]{40}$/.test(file.sha ?? ''))).toBe(true);
    expect(result.stats.symbols).toBeGreaterThan(500);
  });

  it('finds the GraphWriter class and its methods in functions/graph/writer.ts', async () => {
    const path = 'functions/graph/writer.ts';
    expect(symbol(path, 'GraphWriter')).toMatchObject({
      type: 'symbol',
      name: 'GraphWriter',
      props: expect.objectContaining({ kind: 'class', line: await lineOf(path, /^export class GraphWriter\b/), exported: true, signature: 'class GraphWriter' }),
    });
    expect(symbol(path, 'GraphWriter.upsertNode')?.props).toMatchObject({ kind: 'method', parent: 'GraphWriter', line: await lineOf(path, /^\s+async upsertNode\(/) });
    expect(symbol(path, 'GraphWriter.flush')?.props).toMatchObject({ kind: 'method', exported: true });
    expect(sink.edgesOf('DEFINES', codeIds.file(repo, path)).map((edge) => edge.to)).toContain(codeIds.symbol(repo, path, 'GraphWriter'));
  });

  it('finds safeFetch in functions/platform/outbound.ts', async () => {
    const path = 'functions/platform/outbound.ts';
    expect(symbol(path, 'safeFetch')?.props).toMatchObject({
      kind: 'function',
      line: await lineOf(path, /^export async function safeFetch\(/),
      exported: true,
      signature: expect.stringMatching(/^async function safeFetch\(input: string \| URL/),
    });
    expect(symbol(path, 'OutboundBlockedError')?.props).toMatchObject({ kind: 'class', exported: true });
  });

  it('links writer.ts to model.ts (relative import) and to platform files (#platform/* subpath imports)', () => {
    const imports = importsOf('functions/graph/writer.ts');
    expect(imports).toContain(codeIds.file(repo, 'functions/graph/model.ts'));
    expect(imports).toContain(codeIds.file(repo, 'functions/platform/keys.ts'));
    expect(imports).toContain('package:npm:@aws-sdk/lib-dynamodb');
    expect(codeIds.file(repo, 'functions/graph/model.ts')).toBe('github:file:opentrace/integrations/functions/graph/model.ts');
  });

  it('finds this analysis itself, and depends on the npm packages package.json declares', () => {
    expect(symbol('functions/code/analyze.ts', 'analyzeRepositoryArchive')?.props).toMatchObject({ kind: 'function', exported: true });
    expect(importsOf('functions/code/tree-sitter.ts')).toContain('package:npm:web-tree-sitter');
    const deps = sink.edgesOf('DEPENDS_ON').map((edge) => [edge.to, edge.props?.scope]);
    expect(deps).toContainEqual(['package:npm:web-tree-sitter', 'prod']);
    expect(deps).toContainEqual(['package:npm:jest', 'dev']);
  });
});
