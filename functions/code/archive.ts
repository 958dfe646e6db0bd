/**
 * Reads a repository archive (GitHub tarball, GitLab `repository/archive.tar.gz`) as a stream:
 * gunzip → tar entries, one at a time, with backpressure. Nothing is written to disk and at most
 * one file's bytes (capped) are held at once.
 *
 * Hostile archives are bounded, never trusted:
 * - entry names that are absolute, carry a drive letter or a `..` segment are skipped (we never
 *   write files, but such a name is no repository path either);
 * - symlinks and hard links are skipped, never followed (a link loop cannot matter);
 * - the entry count, the sum of declared sizes and the inflated byte count are capped (an archive
 *   bomb stops the read with an `archive-limit` warning and `complete: false`);
 * - files over `maxFileBytes` are drained without being kept.
 */
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import tarStream from 'tar-stream';
import { safeRepoPath } from './filters.ts';
import type { WarningCode } from './types.ts';

export interface ArchiveLimits {
  /** Files larger than this are skipped (`file-too-large`). */
  maxFileBytes: number;
  /** Sum of the entries' sizes; past it the read stops (`archive-limit`). */
  maxTotalBytes: number;
  maxEntries: number;
  /** Leading path segments to drop: 1 for GitHub and GitLab archives (their top-level folder). */
  stripComponents: number;
}

export const DEFAULT_ARCHIVE_LIMITS: ArchiveLimits = {
  maxFileBytes: 1024 * 1024,
  maxTotalBytes: 2 * 1024 * 1024 * 1024,
  maxEntries: 200_000,
  stripComponents: 1,
};

export interface ArchiveFile {
  path: string;
  size: number;
  /** Reads the file's bytes; call at most once. A file not read is drained after the visitor returns. */
  read(): Promise<Buffer>;
}

export interface ArchiveVisitor {
  file(entry: ArchiveFile): Promise<void>;
  warn(code: WarningCode, detail: string): void;
}

export interface ArchiveReadResult {
  /** False when the read stopped early: a limit, a corrupt or truncated stream, or the abort signal. */
  complete: boolean;
  incompleteReason?: string;
  entries: number;
  files: number;
  /** Bytes after gunzip. */
  inflatedBytes: number;
}

export type ArchiveSource = Readable | AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>;

class ArchiveStop extends Error {
  readonly code: WarningCode;
  constructor(code: WarningCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** The archive broke while a file's bytes were read: a bad download, not the visitor's failure. */
class EntryReadError extends Error {}

class VisitorFailure extends Error {
  constructor(cause: unknown) {
    super('the archive visitor failed', { cause });
  }
}

async function visitFile(visitor: ArchiveVisitor, file: ArchiveFile): Promise<void> {
  try {
    await visitor.file(file);
  } catch (error) {
    throw error instanceof EntryReadError ? error : new VisitorFailure(error);
  }
}

/** Counts inflated bytes (the backstop against a gzip bomb whose tar headers understate it) and passes them on. */
class ByteCounter extends Transform {
  bytes = 0;
  readonly #limit: number;
  constructor(limit: number) {
    super();
    this.#limit = limit;
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.#limit) callback(new ArchiveStop('archive-limit', `the archive inflates to more than ${this.#limit} bytes`));
    else callback(null, chunk);
  }
}

/** gzip streams start 1f 8b; anything else is read as a plain tar. */
async function* gunzipIfNeeded(source: AsyncIterable<Uint8Array>, onGunzip: (gunzip: Transform) => void): AsyncGenerator<Uint8Array> {
  const iterator = source[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (first.done) return;
  const rest: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => ({
      next: () => iterator.next(),
      return: async () => (iterator.return ? iterator.return() : { done: true, value: undefined }),
    }),
  };
  async function* all() {
    yield first.value;
    yield* rest;
  }
  const head = first.value;
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
    const gunzip = createGunzip();
    onGunzip(gunzip);
    const input = Readable.from(all(), { objectMode: false });
    input.on('error', (error) => gunzip.destroy(error));
    yield* input.pipe(gunzip) as AsyncIterable<Uint8Array>;
  } else {
    yield* all();
  }
}

const asAsyncIterable = (source: ArchiveSource): AsyncIterable<Uint8Array> => source as AsyncIterable<Uint8Array>;

export async function readArchive(source: ArchiveSource, visitor: ArchiveVisitor, limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS, signal?: AbortSignal): Promise<ArchiveReadResult> {
  const result: ArchiveReadResult = { complete: true, entries: 0, files: 0, inflatedBytes: 0 };
  // Headers, padding and a last partial block on top of the declared sizes.
  const counter = new ByteCounter(limits.maxTotalBytes + limits.maxEntries * 1024 + 64 * 1024 * 1024);
  const extract = tarStream.extract();
  let gunzip: Transform | undefined;
  const inflated = Readable.from(gunzipIfNeeded(asAsyncIterable(source), (stream) => (gunzip = stream)), { objectMode: false });
  const fail = (error: Error) => extract.destroy(error);
  inflated.on('error', fail);
  counter.on('error', fail);
  inflated.pipe(counter).pipe(extract as unknown as NodeJS.WritableStream);

  const seen = new Set<string>();
  let declaredBytes = 0;
  try {
    for await (const entry of extract) {
      const header = entry.header;
      result.entries++;
      if (signal?.aborted) throw new ArchiveStop('aborted', 'the analysis was aborted (time budget)');
      if (result.entries > limits.maxEntries) throw new ArchiveStop('archive-limit', `the archive has more than ${limits.maxEntries} entries`);
      declaredBytes += header.size ?? 0;
      if (declaredBytes > limits.maxTotalBytes) throw new ArchiveStop('archive-limit', `the archive's files add up to more than ${limits.maxTotalBytes} bytes`);

      const path = safeRepoPath(header.name, limits.stripComponents);
      let consumed = false;
      if (path === undefined) {
        visitor.warn('unsafe-path', header.name.slice(0, 200));
      } else if (path === '' || header.type === 'directory') {
        // The archive's top-level folder, or a directory: nothing to read.
      } else if (header.type === 'symlink' || header.type === 'link') {
        visitor.warn('link-entry', path);
      } else if (header.type !== 'file' && header.type !== 'contiguous-file') {
        visitor.warn('special-entry', path);
      } else if (seen.has(path)) {
        visitor.warn('duplicate-entry', path);
      } else {
        seen.add(path);
        result.files++;
        const size = header.size ?? 0;
        await visitFile(visitor, {
          path,
          size,
          read: async () => {
            if (consumed) throw new Error(`${path} was already read`);
            consumed = true;
            if (size > limits.maxFileBytes) throw new Error(`${path} is over the ${limits.maxFileBytes}-byte cap; check size before reading`);
            const chunks: Buffer[] = [];
            try {
              for await (const chunk of entry) chunks.push(chunk as Buffer);
            } catch (error) {
              throw new EntryReadError((error as Error).message);
            }
            return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
          },
        });
      }
      if (!consumed) for await (const _chunk of entry); // drain: the next entry starts after this one's bytes
    }
  } catch (error) {
    // The visitor's own failure (the graph store is down) is the caller's to handle: not a bad archive.
    if (error instanceof VisitorFailure) throw error.cause;
    result.complete = false;
    if (error instanceof ArchiveStop) {
      visitor.warn(error.code, error.message);
      result.incompleteReason = error.message;
    } else {
      const message = `the archive could not be read to the end: ${(error as Error).message}`;
      visitor.warn('archive-corrupt', message);
      result.incompleteReason = message;
    }
  } finally {
    result.inflatedBytes = counter.bytes;
    extract.destroy();
    counter.destroy();
    inflated.destroy();
    gunzip?.destroy();
  }
  return result;
}
