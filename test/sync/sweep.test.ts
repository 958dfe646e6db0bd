/**
 * What a pass may delete: a complete full pass sweeps what the connection no longer has; a killed,
 * paused, partial or suspiciously empty pass deletes nothing and says why on the run. Runs the
 * synthesized state machine locally, like orchestration.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ConflictError } from '#platform/errors.ts';
import { requestSync } from '#sync/start-sync.ts';
import { syncSettings } from '#sync/settings.ts';
import { createSyncHarness, deferred, emitItems, scriptedConnector, type SyncHarness, type SyncScript } from '../support/sync-harness.ts';

const scripts = new Map<string, SyncScript>();
let h: SyncHarness;
beforeAll(async () => {
  h = await createSyncHarness({ integrationTypes: ['test-items'], connectors: [scriptedConnector('test-items', scripts)] });
});
afterAll(() => h.close());

const names = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `item-${String(from + i).padStart(3, '0')}`);
const ids = (list: string[]) => list.map((name) => `test:item:${name}`).sort();

/** A connector serving `upstream.items` in pages of `pageSize`, one page per slice. */
function pagedUpstream(upstream: { items: string[] }, pageSize = 4): SyncScript {
  return async (ctx, cursor) => {
    const offset = Number(cursor ?? 0);
    await emitItems(ctx, upstream.items.slice(offset, offset + pageSize));
    await ctx.progress({ phase: 'items', done: Math.min(upstream.items.length, offset + pageSize), total: upstream.items.length });
    return offset + pageSize < upstream.items.length ? { done: false, cursor: String(offset + pageSize) } : { done: true };
  };
}

async function syncNow(connectionId: string, mode: 'full' | 'incremental' = 'full', forceSweep = false) {
  h.clock.advance(1000); // runs list newest first by start time
  const run = await requestSync({ tenantId: h.tenantId, connectionId, mode, ...(forceSweep ? { forceSweep } : {}) });
  await h.runner.idle();
  return h.run(run.id);
}

describe('a complete full pass', () => {
  it('sweeps what the upstream no longer has; an incremental pass never does', async () => {
    const connection = await h.createConnection('test-items');
    const upstream = { items: names(10) };
    scripts.set(connection.id, pagedUpstream(upstream));
    expect(await syncNow(connection.id)).toMatchObject({ status: 'succeeded', stats: { nodesUpserted: 10, nodesDeleted: 0 } });

    upstream.items = names(8, 2); // item-000 and item-001 went away
    const incremental = await syncNow(connection.id, 'incremental');
    expect(incremental).toMatchObject({ status: 'succeeded', mode: 'incremental', stats: { nodesUpserted: 0, nodesDeleted: 0 } });
    expect(await h.nodeIdsOf(connection.id)).toHaveLength(10);
    expect((await h.connections.get(h.tenantId, connection.id))!.incrementalsSinceFull).toBe(1);

    const full = await syncNow(connection.id, 'full');
    expect(full).toMatchObject({ status: 'succeeded', stats: { nodesUpserted: 0, nodesDeleted: 2 } });
    expect(full.warnings).toBeUndefined();
    expect(await h.nodeIdsOf(connection.id)).toEqual(ids(names(8, 2)));
    expect((await h.connections.get(h.tenantId, connection.id))!.incrementalsSinceFull).toBe(0);
  });

  it('keeps an item another connection still contributes, with that provenance', async () => {
    const first = await h.createConnection('test-items');
    const second = await h.createConnection('test-items');
    const shared = { items: ['shared', 'only-first', 'also-first'] };
    scripts.set(first.id, pagedUpstream(shared));
    scripts.set(second.id, pagedUpstream({ items: ['shared'] }));
    await syncNow(first.id);
    await syncNow(second.id);
    shared.items = ['only-first', 'also-first'];
    expect((await syncNow(first.id)).stats.nodesDeleted).toBe(1);
    expect((await h.graph.getNode(h.tenantId, 'test:item:shared'))?.sources).toEqual([second.id]);
  });
});

describe('a pass that must not delete', () => {
  it('holds the sweep back when the upstream suddenly returns nothing, and says why; forceSweep lets it through', async () => {
    const connection = await h.createConnection('test-items');
    const upstream = { items: names(10) };
    scripts.set(connection.id, pagedUpstream(upstream));
    await syncNow(connection.id);

    upstream.items = [];
    const empty = await syncNow(connection.id);
    expect(empty.status).toBe('succeeded');
    expect(empty.stats.nodesDeleted).toBe(0);
    expect(empty.warnings).toEqual([expect.stringMatching(/^Sweep held back: this full pass did not see 10 of the connection's 10 graph items \(100%\), over the 50% safety threshold, so nothing was deleted\./)]);
    expect(empty.warnings![0]).toContain('"forceSweep": true');
    expect(await h.nodeIdsOf(connection.id)).toHaveLength(10);
    // Not counted as the full pass it should have been: the next pass is full again.
    expect((await h.connections.get(h.tenantId, connection.id))!.incrementalsSinceFull).toBe(0);

    // The operator checked the upstream: the console input with forceSweep.
    await h.execute({ connectionIds: [`${h.tenantId}/${connection.id}`], mode: 'full', forceSweep: true });
    const [forced] = await h.runsOf(connection.id);
    expect(forced).toMatchObject({ status: 'succeeded', trigger: 'console', stats: { nodesDeleted: 10 } });
    expect(await h.nodeIdsOf(connection.id)).toEqual([]);
  });

  it('does not sweep a kind whose fetch failed, and sweeps the rest', async () => {
    const connection = await h.createConnection('test-items');
    let failing = false;
    scripts.set(connection.id, async (ctx) => {
      await emitItems(ctx, failing ? ['keep-a', 'keep-b', 'keep-c'] : ['keep-a', 'keep-b', 'keep-c', 'gone']);
      if (failing) ctx.markIncomplete('document', 'the documents endpoint answered 500');
      else for (const doc of ['d1', 'd2']) await ctx.graph.upsertNode({ id: `test:doc:${doc}`, type: 'document', name: doc });
      return { done: true };
    });
    await syncNow(connection.id);
    failing = true;
    const partial = await syncNow(connection.id);
    expect(partial.stats.nodesDeleted).toBe(1);
    expect(partial.warnings).toEqual(['Not swept this pass: document (fetching them failed: the documents endpoint answered 500).']);
    expect(await h.nodeIdsOf(connection.id)).toEqual(['test:doc:d1', 'test:doc:d2', ...ids(['keep-a', 'keep-b', 'keep-c'])].sort());
  });

  it('deletes nothing when a run is killed halfway; once its lease expires the next run completes and sweeps', async () => {
    const connection = await h.createConnection('test-items');
    const upstream = { items: names(10) };
    scripts.set(connection.id, pagedUpstream(upstream));
    await syncNow(connection.id);

    // Two items go away upstream; the next full pass dies in its second slice.
    upstream.items = names(8, 2);
    const inSecondSlice = deferred();
    const never = deferred();
    scripts.set(connection.id, async (ctx, cursor) => {
      if (cursor) {
        inSecondSlice.resolve();
        await never.promise; // the Lambda is killed here
      }
      return pagedUpstream(upstream)(ctx, cursor);
    });
    const killedRun = await requestSync({ tenantId: h.tenantId, connectionId: connection.id, mode: 'full' });
    await inSecondSlice.promise;
    await h.runner.close(); // stops every execution, as a StopExecution or a crashed worker would
    never.reject(new Error('killed'));

    expect(await h.run(killedRun.id)).toMatchObject({ status: 'running' });
    expect(await h.nodeIdsOf(connection.id)).toEqual(ids(names(10)));
    await expect(requestSync({ tenantId: h.tenantId, connectionId: connection.id })).rejects.toBeInstanceOf(ConflictError);

    h.clock.advance(syncSettings().leaseMs + 1);
    scripts.set(connection.id, pagedUpstream(upstream));
    const next = await syncNow(connection.id, 'full');
    expect(next).toMatchObject({ status: 'succeeded', stats: { nodesDeleted: 2 } });
    expect(await h.nodeIdsOf(connection.id)).toEqual(ids(names(8, 2)));
    expect(await h.run(killedRun.id)).toMatchObject({ status: 'failed', error: { code: 'abandoned' } });
    expect((await h.run(killedRun.id)).error!.message).toMatch(/stopped without finishing.*Nothing was swept/);
  });

  it('stops after the current slice when the connection is paused, sweeping nothing', async () => {
    const connection = await h.createConnection('test-items');
    const upstream = { items: names(10) };
    scripts.set(connection.id, pagedUpstream(upstream));
    await syncNow(connection.id);

    upstream.items = names(4);
    let slices = 0;
    scripts.set(connection.id, async (ctx, cursor) => {
      slices++;
      await h.connections.update(h.tenantId, connection.id, (current) => ({ ...current, paused: true }));
      return pagedUpstream(upstream, 2)(ctx, cursor);
    });
    const paused = await syncNow(connection.id, 'full');
    expect(slices).toBe(1);
    expect(paused).toMatchObject({ status: 'succeeded', stats: { nodesDeleted: 0 }, progress: { phase: 'stopped (paused)' } });
    expect(paused.warnings).toEqual([expect.stringMatching(/^Paused: the sync stopped after its current slice; nothing was swept/)]);
    expect(await h.nodeIdsOf(connection.id)).toHaveLength(10);
    expect(await h.leaseHolder(connection.id)).toBeUndefined();
  });
});

describe('progress', () => {
  it('is visible on the run while the sync runs, and final when it ends', async () => {
    const connection = await h.createConnection('test-items');
    const reported = deferred();
    const proceed = deferred();
    scripts.set(connection.id, async (ctx) => {
      await emitItems(ctx, ['p1']);
      await ctx.progress({ phase: 'repositories', done: 1, total: 3 });
      reported.resolve();
      await proceed.promise;
      await emitItems(ctx, ['p2', 'p3']);
      await ctx.progress({ phase: 'repositories', done: 3, total: 3 });
      return { done: true };
    });
    const run = await requestSync({ tenantId: h.tenantId, connectionId: connection.id });
    await reported.promise;
    expect(await h.run(run.id)).toMatchObject({ status: 'running', progress: { phase: 'repositories', done: 1, total: 3 } });
    proceed.resolve();
    await h.runner.idle();
    expect(await h.run(run.id)).toMatchObject({ status: 'succeeded', progress: { phase: 'done', done: 3, total: 3 }, stats: { nodesUpserted: 3 } });
  });
});
