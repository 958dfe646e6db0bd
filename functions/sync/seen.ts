/**
 * What a sync pass saw, kept for the sweep at its end: each slice stores the contribution keys
 * its graph writer saw as 12-byte hashes (the first 12 bytes of SHA-256 of `PK\0SK`) in chunk
 * items of at most ~350 KB under the run (keys.syncSeen), together with the kinds the connector
 * marked incomplete. The chunks of one slice form a scope: the partition (a hash of its key, so
 * any partition key fits the sort key) and the slice's number within that partition, so the
 * concurrent slice loops of one run never overwrite each other's chunks. Finalize loads every
 * scope of the run: the sweep works on the union of what all partitions saw. The chunks expire
 * by TTL after a few days.
 *
 * 96-bit hashes: a false "seen" (an item kept by a collision) needs ~2^48 items to become likely;
 * a collision can only keep an item, never delete one.
 */
import { createHash } from 'node:crypto';
import { batchWriteAll, type WriteRequest } from '#platform/batch.ts';
import { queryPages, type TableRef } from '#platform/dynamo.ts';
import { ttlEpochSeconds } from '#platform/dynamo.ts';
import { keys } from '#platform/keys.ts';

export const SEEN_HASH_BYTES = 12;
/** Under DynamoDB's 400 KB item limit with room for the keys and attributes around the hashes. */
const CHUNK_BYTES = Math.floor((350 * 1024) / SEEN_HASH_BYTES) * SEEN_HASH_BYTES;

export const seenHash = (contributionKey: string): Buffer => createHash('sha256').update(contributionKey).digest().subarray(0, SEEN_HASH_BYTES);

/** The key string a GraphWriter records in `seen` for a contribution item. */
export const contributionKey = (ref: { PK: string; SK: string }) => `${ref.PK}\u0000${ref.SK}`;

export interface SeenSlice {
  /** Contribution keys (`PK\0SK`) the slice's writer saw. */
  keys: Iterable<string>;
  /** Kinds (node or edge types, or "*") the connector marked incomplete, with the reason. */
  incomplete: Record<string, string>;
}

export interface SeenSet {
  hashes: Set<string>;
  incomplete: Map<string, string>;
}

/**
 * The chunks' scope: `slice000003` for the whole connection (`*`), `p<hash>#slice000003` for a
 * partition, `p<hash>#list` for what the partition listing itself wrote.
 */
export function seenScope(partition: string, slice: number | 'list'): string {
  const part = slice === 'list' ? 'list' : `slice${String(slice).padStart(6, '0')}`;
  if (partition === '*') return part;
  return `p${createHash('sha256').update(partition).digest('base64url').slice(0, 16)}#${part}`;
}

export class SeenStore {
  readonly #table: TableRef;
  readonly #now: () => Date;

  constructor(table: TableRef, now: () => Date) {
    this.#table = table;
    this.#now = now;
  }

  /**
   * Stores one slice's seen keys. A retried slice overwrites its own chunks; chunks a longer
   * first attempt left behind only add "seen" marks, which can keep an item, never delete one.
   */
  async record(tenantId: string, syncId: string, slice: number, seen: SeenSlice, ttlDays: number, partition = '*'): Promise<void> {
    await this.recordScope(tenantId, syncId, seenScope(partition, slice), seen, ttlDays);
  }

  async recordScope(tenantId: string, syncId: string, scope: string, seen: SeenSlice, ttlDays: number): Promise<void> {
    const hashes = Buffer.concat([...seen.keys].map(seenHash));
    const ttl = ttlEpochSeconds(new Date(this.#now().getTime() + ttlDays * 86_400_000));
    const writes: WriteRequest[] = [];
    for (let offset = 0, seq = 0; offset < hashes.length || seq === 0; offset += CHUNK_BYTES, seq++) {
      const part = hashes.subarray(offset, offset + CHUNK_BYTES);
      writes.push({
        PutRequest: {
          Item: {
            ...keys.syncSeen(tenantId, syncId, scope, seq),
            kind: 'sync-seen',
            n: part.length / SEEN_HASH_BYTES,
            ...(part.length > 0 ? { h: part } : {}),
            ...(seq === 0 && Object.keys(seen.incomplete).length > 0 ? { incomplete: seen.incomplete } : {}),
            ttl,
          },
        },
      });
    }
    await batchWriteAll(this.#table, writes, { concurrency: 4 });
  }

  async load(tenantId: string, syncId: string): Promise<SeenSet> {
    const { PK, SKPrefix } = keys.syncSeenPartition(tenantId, syncId);
    const hashes = new Set<string>();
    const incomplete = new Map<string, string>();
    const pages = queryPages(this.#table, {
      KeyConditionExpression: 'PK = :pk AND begins_with(SK, :prefix)',
      ExpressionAttributeValues: { ':pk': PK, ':prefix': SKPrefix },
      ConsistentRead: true,
    });
    for await (const page of pages) {
      for (const item of page) {
        const raw = item.h as Uint8Array | undefined;
        if (raw) {
          const bytes = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
          for (let i = 0; i + SEEN_HASH_BYTES <= bytes.length; i += SEEN_HASH_BYTES) hashes.add(bytes.toString('base64', i, i + SEEN_HASH_BYTES));
        }
        for (const [kind, reason] of Object.entries((item.incomplete as Record<string, string> | undefined) ?? {})) {
          if (!incomplete.has(kind)) incomplete.set(kind, reason);
        }
      }
    }
    return { hashes, incomplete };
  }
}

/** Whether a contribution is in a loaded seen set. */
export const wasSeen = (seen: SeenSet, ref: { PK: string; SK: string }) => seen.hashes.has(seenHash(contributionKey(ref)).toString('base64'));
