/**
 * Test plumbing for the code analysis: repository archives built in memory with tar-stream (the
 * shape GitHub and GitLab serve: one top-level folder, gzip), and a GraphSink that keeps what it got.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import tarStream, { type Header } from 'tar-stream';
import type { GraphSink } from '#connectors/types.ts';
import type { GraphEdgeInput, GraphNodeInput } from '#graph/model.ts';
import { prepareEdge, prepareNode } from '#graph/model.ts';

export type TarEntry = { name: string; content?: string | Buffer } & Partial<Omit<Header, 'name'>>;

/** A tar (optionally gzipped) of the given entries, names used as written (no prefix added). */
export async function makeTar(entries: TarEntry[], { gzip = true } = {}): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (chunk) => {
      chunks.push(chunk as Buffer);
    });
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const { content, ...header } of entries) {
    await new Promise<void>((resolve, reject) => {
      const body = content === undefined ? undefined : typeof content === 'string' ? Buffer.from(content) : content;
      if (body === undefined) pack.entry(header, (error) => (error ? reject(error) : resolve()));
      else pack.entry(header, body, (error) => (error ? reject(error) : resolve()));
    });
  }
  pack.finalize();
  await done;
  const tar = Buffer.concat(chunks);
  return gzip ? gzipSync(tar) : tar;
}

/** A GitHub-style archive of a small repository: every file under `acme-repo-0123abc/`. */
export function repoArchive(files: Record<string, string | Buffer>, prefix = 'acme-repo-0123abc'): Promise<Buffer> {
  return makeTar(Object.entries(files).map(([path, content]) => ({ name: `${prefix}/${path}`, content })));
}

/** The given files and folders (recursively) under `root` as archive entries named `<prefix>/<path>`. */
export async function packPaths(root: string, paths: string[], prefix = 'opentrace-main-abc123'): Promise<Buffer> {
  const entries: TarEntry[] = [];
  async function add(full: string) {
    const info = await stat(full);
    if (info.isFile()) {
      entries.push({ name: `${prefix}/${relative(root, full)}`, content: await readFile(full) });
      return;
    }
    if (!info.isDirectory()) return;
    for (const name of (await readdir(full)).sort()) await add(join(full, name));
  }
  for (const path of paths) await add(join(root, path));
  return makeTar(entries);
}

/** Streams a buffer in small chunks, as a download would arrive. */
export const streamOf = (buffer: Buffer, chunkSize = 16 * 1024): Readable =>
  Readable.from(
    (function* () {
      for (let offset = 0; offset < buffer.length; offset += chunkSize) yield buffer.subarray(offset, offset + chunkSize);
    })(),
  );

/** A GraphSink that validates like the real writer (props budget, id limits) and keeps everything. */
export class MemorySink implements GraphSink {
  readonly nodes = new Map<string, GraphNodeInput>();
  readonly edges: GraphEdgeInput[] = [];

  async upsertNode(node: GraphNodeInput): Promise<void> {
    prepareNode(node);
    this.nodes.set(node.id, node);
  }

  async upsertEdge(edge: GraphEdgeInput): Promise<void> {
    prepareEdge(edge);
    this.edges.push(edge);
  }

  symbol(id: string): GraphNodeInput | undefined {
    return this.nodes.get(id);
  }

  edgesOf(type: string, from?: string): GraphEdgeInput[] {
    return this.edges.filter((edge) => edge.type === type && (from === undefined || edge.from === from));
  }
}
