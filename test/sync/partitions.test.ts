/**
 * The per-partition fan-out: a connector that splits its pass (GitHub: one partition per
 * repository) gets one slice loop per partition, run concurrently by the state machine's second
 * Map, and one Finalize whose sweep works on the union of what every partition saw. A failing
 * partition fails the run with its reason and deletes nothing, while its siblings' data is written.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Connector } from '#connectors/types.ts';
import { MAX_PARTITIONS } from '#sync/payloads.ts';
import { capPartitions } from '#sync/slice.ts';
import { requestSync } from '#sync/start-sync.ts';
import { configureSync, syncSettings } from '#sync/settings.ts';
import { STATES, partitionsStateName, sliceStateName } from '#sync/state-machine-names.ts';
import { createSyncHarness, deferred, emitItems, scriptedConnector, type SyncHarness, type SyncScript } from '../support/sync-harness.ts';

const TYPE = 'test-parts';
const scripts = new Map<string, SyncScript>();
const partitionLists = new Map<string, string[]>();
const connector: Connector<Record<string, unknown>, Record<string, unknown>> = {
  ...scriptedConnector(TYPE, scripts),
  partitions: async (ctx) => {
    ctx.countRequest();
    return partitionLists.get(ctx.connectionId) ?? ['*'];
  },
};

const calls: Record<string, number> = {};
const overrides: Record<string, (input: unknown, next: (input: unknown) => Promise<unknown>) => Promise<unknown>> = {};
const counted = [STATES.finalize, STATES.recordFailure, STATES.recordPartitionFailure, partitionsStateName(TYPE), sliceStateName(TYPE)];

let h: SyncHarness;
beforeAll(async () => {
  h = await createSyncHarness({
    integrationTypes: [TYPE],
    connectors: [connector],
    runner: {
      handlerOverrides: Object.fromEntries(
        counted.map((name) => [
          name,
          (input: unknown, next: (input: unknown) => Promise<unknown>) => {
            calls[name] = (calls[name] ?? 0) + 1;
            return (overrides[name] ?? ((i, n) => n(i)))(input, next);
          },
        ]),
      ),
    },
  });
});
afterAll(() => h.close());

const resetCalls = () => {
  for (const name of Object.keys(calls)) delete calls[name];
};

/** Partition → the item names it serves; a partition in `twoSlices` hands back a cursor after its first half. */
function partitionedUpstream(upstream: Record<string, string[]>, twoSlices: Set<string> = new Set()): SyncScript {
  return async (ctx, cursor) => {
    const names = upstream[ctx.partition] ?? [];
    if (!twoSlices.has(ctx.partition)) {
      await emitItems(ctx, names, `test:${ctx.partition}:`);
      await ctx.progress({ phase: 'items', done: names.length, total: names.length });
      return { done: true };
    }
    const half = Math.ceil(names.length / 2);
    const page = cursor === 'second-half' ? names.slice(half) : names.slice(0, half);
    await emitItems(ctx, page, `test:${ctx.partition}:`);
    // Per-partition sync state: each partition keeps its own.
    await ctx.state.put(`part:${ctx.partition}`, { last: page.at(-1) ?? null });
    return cursor === 'second-half' ? { done: true } : { done: false, cursor: 'second-half' };
  };
}

async function syncNow(connectionId: string, mode: 'full' | 'incremental' = 'full') {
  h.clock.advance(1000);
  const run = await requestSync({ tenantId: h.tenantId, connectionId, mode });
  await h.runner.idle();
  return h.run(run.id);
}

describe('a connection with partitions', () => {
  it('syncs every partition (one in two slices), finalizes once, and sweeps over the union of what they saw', async () => {
    const connection = await h.createConnection(TYPE);
    partitionLists.set(connection.id, ['acme/alpha', 'acme/beta', 'acme/gamma']);
    const upstream: Record<string, string[]> = { 'acme/alpha': ['a1', 'a2', 'a3', 'a4'], 'acme/beta': ['b1', 'b2'], 'acme/gamma': ['g1'] };
    const seenPartitions: string[] = [];
    const script = partitionedUpstream(upstream, new Set(['acme/alpha']));
    scripts.set(connection.id, async (ctx, cursor) => {
      seenPartitions.push(`${ctx.partition}@${cursor ?? 'start'}`);
      return script(ctx, cursor);
    });
    resetCalls();
    const first = await syncNow(connection.id);
    expect(first).toMatchObject({
      status: 'succeeded',
      partitions: { total: 3, done: 3, failed: 0 },
      progress: { phase: 'done', done: 3, total: 3 },
      stats: { nodesUpserted: 7, nodesDeleted: 0, requests: 8 },
    });
    expect(seenPartitions.sort()).toEqual(['acme/alpha@second-half', 'acme/alpha@start', 'acme/beta@start', 'acme/gamma@start']);
    expect(calls).toEqual({ [partitionsStateName(TYPE)]: 1, [sliceStateName(TYPE)]: 4, [STATES.finalize]: 1 });
    expect(await h.nodeIdsOf(connection.id)).toHaveLength(7);

    // The second full pass: alpha lost a1 (seen in its first slice before) and a4 (its second
    // slice), beta lost b2; gamma is unchanged. Every item seen by any slice of any partition stays.
    upstream['acme/alpha'] = ['a2', 'a3'];
    upstream['acme/beta'] = ['b1'];
    resetCalls();
    const second = await syncNow(connection.id);
    expect(second).toMatchObject({ status: 'succeeded', stats: { nodesUpserted: 0, nodesDeleted: 3 } });
    expect(second.warnings).toBeUndefined();
    expect(calls[STATES.finalize]).toBe(1);
    expect(await h.nodeIdsOf(connection.id)).toEqual(['test:acme/alpha:a2', 'test:acme/alpha:a3', 'test:acme/beta:b1', 'test:acme/gamma:g1']);

    // A partition gone from the list: its items are stale in the next full pass (under the threshold here).
    partitionLists.set(connection.id, ['acme/alpha', 'acme/beta']);
    const third = await syncNow(connection.id);
    expect(third).toMatchObject({ status: 'succeeded', partitions: { total: 2, done: 2 }, stats: { nodesDeleted: 1 } });
    expect(await h.nodeIdsOf(connection.id)).not.toContain('test:acme/gamma:g1');
  });

  it('one failing partition: its siblings\' data is written, nothing is deleted, and the run fails with the reason', async () => {
    const connection = await h.createConnection(TYPE);
    partitionLists.set(connection.id, ['acme/ok-1', 'acme/broken', 'acme/ok-2']);
    const upstream: Record<string, string[]> = { 'acme/ok-1': ['x1', 'x2'], 'acme/broken': ['y1'], 'acme/ok-2': ['z1'] };
    scripts.set(connection.id, partitionedUpstream(upstream));
    await syncNow(connection.id);
    expect(await h.nodeIdsOf(connection.id)).toHaveLength(4);

    // Next full pass: ok-1 lost x2 and gained x3; broken throws after writing nothing.
    upstream['acme/ok-1'] = ['x1', 'x3'];
    const script = partitionedUpstream(upstream);
    scripts.set(connection.id, async (ctx, cursor) => {
      if (ctx.partition === 'acme/broken') throw new Error('GitHub answered 502 Bad Gateway for /repos/acme/broken/commits');
      return script(ctx, cursor);
    });
    resetCalls();
    const failed = await syncNow(connection.id);
    expect(failed).toMatchObject({
      status: 'failed',
      partitions: { total: 3, done: 2, failed: 1 },
      partitionFailures: [{ partition: 'acme/broken', code: 'sync-failed', message: 'GitHub answered 502 Bad Gateway for /repos/acme/broken/commits' }],
      error: { code: 'sync-failed' },
      stats: { nodesDeleted: 0 },
    });
    expect(failed.error!.message).toBe('1 of 3 partitions failed, so nothing was swept (the others were synced). acme/broken: GitHub answered 502 Bad Gateway for /repos/acme/broken/commits');
    expect(calls).toMatchObject({ [STATES.recordPartitionFailure]: 1, [STATES.finalize]: 1 });
    expect(calls[STATES.recordFailure]).toBeUndefined();
    // The siblings' new item is there; nothing went, not even x2 which ok-1 no longer has.
    expect(await h.nodeIdsOf(connection.id)).toEqual(['test:acme/broken:y1', 'test:acme/ok-1:x1', 'test:acme/ok-1:x2', 'test:acme/ok-1:x3', 'test:acme/ok-2:z1']);
    const after = await h.connections.get(h.tenantId, connection.id);
    expect(after).toMatchObject({ status: 'error', lastSync: { id: failed.id, status: 'failed' } });
    expect(after!.lastError).toContain('acme/broken: GitHub answered 502');
    expect(await h.leaseHolder(connection.id)).toBeUndefined();

    // Fixed upstream: the next full pass succeeds and sweeps x2.
    scripts.set(connection.id, partitionedUpstream(upstream));
    expect(await syncNow(connection.id)).toMatchObject({ status: 'succeeded', stats: { nodesDeleted: 1 } });
    expect((await h.connections.get(h.tenantId, connection.id))!.status).toBe('connected');
  });

  it('a partition waiting out a rate limit keeps the lease for its wait while siblings renew it', async () => {
    const connection = await h.createConnection(TYPE);
    partitionLists.set(connection.id, ['acme/slow', 'acme/fast']);
    const siblingDone = deferred();
    scripts.set(connection.id, async (ctx, cursor) => {
      if (ctx.partition === 'acme/fast') {
        await emitItems(ctx, ['f1'], 'test:fast:');
        return { done: true };
      }
      if (cursor) return { done: true };
      return { done: false, cursor: 'later', waitSeconds: 600 };
    });
    let leaseAfterSibling: number | undefined;
    overrides[sliceStateName(TYPE)] = async (input, next) => {
      const output = (await next(input)) as { partition: string; done: boolean; waitSeconds: number };
      if (output.partition === 'acme/fast') siblingDone.resolve();
      if (output.waitSeconds > 0) {
        await siblingDone.promise;
        leaseAfterSibling = new Date((await h.leases.holder(h.tenantId, `sync:${connection.id}`))!.expiresAt).getTime();
      }
      return output;
    };
    try {
      const run = await syncNow(connection.id);
      expect(run.status).toBe('succeeded');
    } finally {
      delete overrides[sliceStateName(TYPE)];
    }
    expect(leaseAfterSibling).toBe(h.clock.now().getTime() + syncSettings().leaseMs + 600_000);
  });

  it('stops every partition at its slice boundary when the connection is paused, sweeping nothing', async () => {
    const connection = await h.createConnection(TYPE);
    partitionLists.set(connection.id, ['acme/p1', 'acme/p2']);
    scripts.set(connection.id, async (ctx) => {
      await emitItems(ctx, ['one'], `test:${ctx.partition}:`);
      return { done: true };
    });
    await syncNow(connection.id);
    scripts.set(connection.id, async (ctx, cursor) => {
      await h.connections.update(h.tenantId, connection.id, (current) => ({ ...current, paused: true }));
      return cursor ? { done: true } : { done: false, cursor: 'more' };
    });
    const paused = await syncNow(connection.id);
    expect(paused).toMatchObject({ status: 'succeeded', stopped: 'paused', progress: { phase: 'stopped (paused)' }, stats: { nodesDeleted: 0 } });
    expect(await h.nodeIdsOf(connection.id)).toHaveLength(2);
  });

  it('shows the partitions moving in the run\'s progress while they sync', async () => {
    const connection = await h.createConnection(TYPE);
    partitionLists.set(connection.id, ['acme/first', 'acme/second']);
    const firstDone = deferred();
    const reported = deferred();
    const release = deferred();
    scripts.set(connection.id, async (ctx) => {
      if (ctx.partition === 'acme/second') {
        await firstDone.promise;
        // The partition's first report is written at once (later ones at most once a second).
        await ctx.progress({ phase: 'commits', done: 5, total: 10 });
        reported.resolve();
        await release.promise;
      }
      return { done: true };
    });
    overrides[sliceStateName(TYPE)] = async (input, next) => {
      const output = (await next(input)) as { partition: string };
      if (output.partition === 'acme/first') firstDone.resolve();
      return output;
    };
    try {
      h.clock.advance(1000);
      const run = await requestSync({ tenantId: h.tenantId, connectionId: connection.id });
      await reported.promise;
      expect((await h.run(run.id)).progress).toEqual({ phase: 'acme/second: commits 5/10', done: 1, total: 2 });
      release.resolve();
      await h.runner.idle();
      expect((await h.run(run.id)).progress).toEqual({ phase: 'done', done: 2, total: 2 });
    } finally {
      firstDone.resolve();
      release.resolve();
      delete overrides[sliceStateName(TYPE)];
    }
  });
});

describe('the partition list', () => {
  it('is capped by count and size; what is left out is named, and the pass then sweeps nothing', () => {
    const many = Array.from({ length: MAX_PARTITIONS + 3 }, (_, i) => `acme/repo-${i}`);
    const capped = capPartitions(many);
    expect(capped.partitions).toHaveLength(MAX_PARTITIONS);
    expect(capped.dropped).toBe(3);
    expect(capped.reason).toMatch(/has 5,003 partitions .* at most 5,000 partitions: the first 5,000 were synced, 3 were not \(from acme\/repo-5000 on\), and nothing was swept/);
    // Long keys hit the byte budget first.
    const long = Array.from({ length: 1000 }, (_, i) => `acme/${'x'.repeat(300)}-${i}`);
    expect(capPartitions(long).partitions.length).toBeLessThan(1000);
    expect(JSON.stringify(capPartitions(long).partitions).length).toBeLessThan(200 * 1024);
    expect(capPartitions(['a', 'a', 'b'])).toEqual({ partitions: ['a', 'b'], dropped: 0 });
    expect(() => capPartitions(['ok', ''])).toThrow(/non-empty strings/);
  });

  it('over the cap (SYNC_MAX_PARTITIONS, 3 here): the run succeeds with the warning and sweeps nothing', async () => {
    const connection = await h.createConnection(TYPE);
    partitionLists.set(connection.id, ['acme/one']);
    scripts.set(connection.id, async (ctx) => {
      await emitItems(ctx, ['kept'], `test:${ctx.partition}:`);
      return { done: true };
    });
    await syncNow(connection.id);
    // Now the listing has more than a pass takes: acme/one is beyond the cap and not synced.
    partitionLists.set(connection.id, ['acme/new-1', 'acme/new-2', 'acme/new-3', 'acme/one']);
    scripts.set(connection.id, async () => ({ done: true }));
    configureSync({ maxPartitions: 3 });
    try {
      const run = await syncNow(connection.id);
      expect(run).toMatchObject({ status: 'succeeded', partitions: { total: 3 }, stats: { nodesDeleted: 0 } });
      expect(run.warnings).toEqual([
        'This connection has 4 partitions (repositories, projects…) and one pass syncs at most 3 partitions: the first 3 were synced, 1 was not (from acme/one on), and nothing was swept. Split the connection (e.g. narrow config.repositories) so each covers fewer.',
        'Nothing was swept: the connector reported an incomplete pass (not every partition was synced this pass).',
      ]);
    } finally {
      configureSync({ maxPartitions: MAX_PARTITIONS });
    }
    expect(await h.nodeIdsOf(connection.id)).toEqual(['test:acme/one:kept']);
  });
});
