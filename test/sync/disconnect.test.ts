/**
 * Disconnect: the connection goes `disconnecting` at once, then the state machine's removal
 * branch removes its graph contribution in steps, its sync state, its runs, its secret and its record.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { NotFoundError } from '#platform/errors.ts';
import { SyncRunStore, type SyncRun } from '#platform/sync-runs.ts';
import { SyncStateStore } from '#platform/sync-state.ts';
import { disconnectConnection, removeConnectionStep } from '#sync/disconnect.ts';
import { requestSync } from '#sync/start-sync.ts';
import { STATES } from '#sync/state-machine-names.ts';
import { planSyncs } from '#sync/plan.ts';
import { createSyncHarness, deferred, emitItems, scriptedConnector, type SyncHarness, type SyncScript } from '../support/sync-harness.ts';

const scripts = new Map<string, SyncScript>();
let h: SyncHarness;
beforeAll(async () => {
  h = await createSyncHarness({ integrationTypes: ['test-items'], connectors: [scriptedConnector('test-items', scripts)] });
});
afterAll(() => h.close());

const items = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

async function syncedConnection(names: string[]) {
  const connection = await h.createConnection('test-items');
  scripts.set(connection.id, async (ctx) => {
    await emitItems(ctx, names);
    await ctx.state.put('cursor', { etag: 'W/"1"' });
    return { done: true };
  });
  await requestSync({ tenantId: h.tenantId, connectionId: connection.id });
  await h.runner.idle();
  return connection;
}

describe('disconnect', () => {
  it('removes the connection\'s items, state, runs, secret and record; items another connection shares stay', async () => {
    const leaving = await syncedConnection(['shared', ...items('own', 30)]);
    const staying = await syncedConnection(['shared']);
    expect(h.secrets.namesOf(h.tenantId)).toContain(leaving.secretName);
    const runs = new SyncRunStore(h.table);
    const [leavingRun] = (await runs.listByConnection(h.tenantId, leaving.id)).items;
    expect(leavingRun).toMatchObject({ status: 'succeeded' });

    const marked = await disconnectConnection(h.tenantId, leaving.id);
    expect(marked.status).toBe('disconnecting');
    // Off the schedule at once, and never planned again.
    const plan = await planSyncs({ connectionIds: [leaving.id], tenantId: h.tenantId });
    expect(plan.skipped).toEqual([{ connectionId: leaving.id, reason: 'disconnecting' }]);

    await h.runner.idle();
    expect(await h.connections.get(h.tenantId, leaving.id)).toBeUndefined();
    expect(await h.nodeIdsOf(leaving.id)).toEqual([]);
    expect(h.secrets.namesOf(h.tenantId)).not.toContain(leaving.secretName);
    expect(await new SyncStateStore(h.table).get(h.tenantId, leaving.id, 'cursor')).toBeUndefined();
    expect(await runs.get(h.tenantId, leavingRun!.id)).toBeUndefined();
    expect((await runs.listByConnection(h.tenantId, leaving.id)).items).toEqual([]);
    expect((await runs.listByConnection(h.tenantId, staying.id)).items).toHaveLength(1);
    expect((await h.graph.getNode(h.tenantId, 'test:item:shared'))?.sources).toEqual([staying.id]);
    expect(await h.nodeIdsOf(staying.id)).toEqual(['test:item:shared']);
    await expect(disconnectConnection(h.tenantId, leaving.id)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('works in steps that each stop before their deadline, and a retried step continues', async () => {
    const connection = await syncedConnection(items('many', 1200));
    await h.connections.update(h.tenantId, connection.id, (current) => ({ ...current, status: 'disconnecting' }));
    const input = { disconnect: { tenantId: h.tenantId, connectionId: connection.id } };

    const first = await removeConnectionStep(input, { remainingMs: () => 0 });
    expect(first).toEqual({ ...input, done: false, waitSeconds: 0 });
    const left = (await h.nodeIdsOf(connection.id)).length;
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(1200);

    const second = await removeConnectionStep(input, { remainingMs: () => 60_000 });
    expect(second.done).toBe(true);
    expect(await h.nodeIdsOf(connection.id)).toEqual([]);
    expect(await h.connections.get(h.tenantId, connection.id)).toBeUndefined();
    // Once gone, a retried step has nothing left to do.
    expect(await removeConnectionStep(input, { remainingMs: () => 60_000 })).toEqual({ ...input, done: true, waitSeconds: 0 });
  });

  it('waits for a running sync to stop at its slice boundary before removing anything', async () => {
    const connection = await h.createConnection('test-items');
    const inSlice = deferred();
    const finishSlice = deferred();
    let slices = 0;
    scripts.set(connection.id, async (ctx) => {
      slices++;
      await emitItems(ctx, items('during', 3));
      inSlice.resolve();
      await finishSlice.promise;
      return { done: false, cursor: 'more' };
    });
    const run = await requestSync({ tenantId: h.tenantId, connectionId: connection.id, mode: 'full' });
    await inSlice.promise;
    // The run as the removal finds it when it forgets the connection's runs: already finished.
    let runAtRemoval: SyncRun | undefined;
    const deleteAllOf = SyncRunStore.prototype.deleteAllOf;
    const spy = jest.spyOn(SyncRunStore.prototype, 'deleteAllOf').mockImplementation(async function (this: SyncRunStore, tenantId: string, connectionId: string) {
      runAtRemoval = await this.get(tenantId, run.id);
      return deleteAllOf.call(this, tenantId, connectionId);
    });

    await h.connections.update(h.tenantId, connection.id, (current) => ({ ...current, status: 'disconnecting' }));
    const removal = h.runner.startExecution({ disconnect: { tenantId: h.tenantId, connectionId: connection.id } }, 'disconnect-test');
    let waits = 0;
    for await (const event of removal.events) {
      // The removal found the sync's lease and waits: only now does the slice end.
      if (event.type === 'StateEntered' && event.state?.name === STATES.waitForRunningSync && waits++ === 0) {
        expect(await h.leaseHolder(connection.id)).toBe(run.id);
        expect(await h.connections.get(h.tenantId, connection.id)).toBeDefined();
        finishSlice.resolve();
      }
    }
    await removal.result;
    await h.runner.idle();
    spy.mockRestore();

    expect(waits).toBeGreaterThan(0);
    expect(slices).toBe(1);
    expect(runAtRemoval).toMatchObject({ status: 'succeeded', warnings: [expect.stringMatching(/being disconnected/)] });
    expect(await new SyncRunStore(h.table).get(h.tenantId, run.id)).toBeUndefined();
    expect(await h.connections.get(h.tenantId, connection.id)).toBeUndefined();
    expect(await h.nodeIdsOf(connection.id)).toEqual([]);
  });
});
