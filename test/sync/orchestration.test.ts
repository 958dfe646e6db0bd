/**
 * The synthesized sync state machine, run locally end to end: fan-out with a failing connector,
 * the cursor loop, waits, concurrent requests, routing to an unknown type, retries, the plan loop.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ConflictError } from '#platform/errors.ts';
import { requestSync } from '#sync/start-sync.ts';
import { planSyncs } from '#sync/plan.ts';
import { syncSettings } from '#sync/settings.ts';
import { STATES, sliceStateName } from '#sync/state-machine-names.ts';
import { RENEWAL_SLACK_MS } from '#sync/sync-lease.ts';
import { runtime } from '#platform/runtime.ts';
import { createSyncHarness, deferred, emitItems, scriptedConnector, type SyncHarness, type SyncScript } from '../support/sync-harness.ts';
import type { Connector } from '#connectors/types.ts';

const scripts = new Map<string, SyncScript>();
const brokenConnector: Connector<Record<string, unknown>, Record<string, unknown>> = {
  ...scriptedConnector('test-broken', scripts),
  sync: async () => {
    throw new Error('upstream answered 503 Service Unavailable for /api/items');
  },
};
const sliceOverrides: Record<string, (input: unknown, next: (input: unknown) => Promise<unknown>) => Promise<unknown>> = {};

let h: SyncHarness;
beforeAll(async () => {
  h = await createSyncHarness({
    integrationTypes: ['test-items', 'test-broken'],
    connectors: [scriptedConnector('test-items', scripts), brokenConnector],
    runner: {
      retryIntervalOverrides: { [sliceStateName('test-items')]: 0 },
      // Lets a test replace a task's handler for one run; the default handler otherwise.
      handlerOverrides: Object.fromEntries(
        [STATES.plan, STATES.recordFailure, STATES.recordPartitionFailure, sliceStateName('test-items')].map((name) => [
          name,
          (input: unknown, next: (input: unknown) => Promise<unknown>) => (sliceOverrides[name] ?? ((i, n) => n(i)))(input, next),
        ]),
      ),
    },
  });
});
afterAll(() => h.close());

describe('fan-out', () => {
  it('syncs every due connection; one connector throwing fails only its own run, with the reason', async () => {
    const a = await h.createConnection('test-items');
    const b = await h.createConnection('test-items');
    const broken = await h.createConnection('test-broken');
    const paused = await h.createConnection('test-items', { paused: true });
    for (const [connection, names] of [[a, ['a1', 'a2']], [b, ['b1']]] as const) {
      scripts.set(connection.id, async (ctx) => {
        await emitItems(ctx, names);
        return { done: true };
      });
    }

    const output = (await h.execute({ trigger: 'schedule' })) as { plan: { items: { connectionId: string }[]; skipped: { connectionId: string; reason: string }[] } };
    expect(output.plan.items.map((item) => item.connectionId).sort()).toEqual([a.id, b.id, broken.id].sort());
    // Paused connections are off the schedule index altogether.
    expect(output.plan.items.map((item) => item.connectionId)).not.toContain(paused.id);

    for (const connection of [a, b]) {
      const [run] = await h.runsOf(connection.id);
      expect(run).toMatchObject({ status: 'succeeded', trigger: 'schedule', mode: 'full', progress: { phase: 'done' } });
      expect(run!.finishedAt).toBeDefined();
      const after = await h.connections.get(h.tenantId, connection.id);
      expect(after).toMatchObject({ status: 'connected', lastSync: { id: run!.id, status: 'succeeded' }, incrementalsSinceFull: 0 });
      expect(after!.nextSyncAt! > h.clock.now().toISOString()).toBe(true);
      expect(await h.leaseHolder(connection.id)).toBeUndefined();
    }
    expect((await h.runsOf(a.id))[0]!.stats).toMatchObject({ nodesUpserted: 2, edgesUpserted: 0, requests: 2 });
    expect(await h.nodeIdsOf(a.id)).toEqual(['test:item:a1', 'test:item:a2']);

    const [failed] = await h.runsOf(broken.id);
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'sync-failed', message: 'upstream answered 503 Service Unavailable for /api/items' } });
    const brokenAfter = await h.connections.get(h.tenantId, broken.id);
    expect(brokenAfter).toMatchObject({ status: 'error', lastSync: { id: failed!.id, status: 'failed' } });
    expect(brokenAfter!.lastError).toContain('503 Service Unavailable');
    expect(brokenAfter!.nextSyncAt! > h.clock.now().toISOString()).toBe(true);
    expect(await h.leaseHolder(broken.id)).toBeUndefined();
    expect(await h.runsOf(paused.id)).toEqual([]);

    // Nothing is due any more: the next tick plans nothing.
    const again = (await h.execute({ trigger: 'schedule' })) as { plan: { items: unknown[] } };
    expect(again.plan.items).toEqual([]);
  });

  it('plans in rounds when more connections are due than one round takes', async () => {
    const before = syncSettings().planMaxItems;
    const connections = await Promise.all(Array.from({ length: 5 }, () => h.createConnection('test-items', { tenantId: 'rounds' })));
    for (const connection of connections) scripts.set(connection.id, async () => ({ done: true }));
    sliceOverrides[STATES.plan] = (input) => planSyncs(input, runtime(), { ...syncSettings(), planMaxItems: 2 });
    try {
      const execution = h.runner.startExecution({ tenantId: 'rounds' });
      const planRounds: number[] = [];
      const events = (async () => {
        for await (const event of execution.events) if (event.type === 'StateExited' && event.state?.name === STATES.plan) planRounds.push(1);
      })();
      await execution.result;
      await events;
      expect(planRounds.length).toBe(3);
      for (const connection of connections) {
        const runs = await h.runs.listByConnection('rounds', connection.id);
        expect(runs.items.map((run) => [run.status, run.trigger])).toEqual([['succeeded', 'console']]);
      }
    } finally {
      delete sliceOverrides[STATES.plan];
    }
    expect(syncSettings().planMaxItems).toBe(before);
  });
});

describe('one connection\'s run', () => {
  it('loops on the cursor until the connector is done (three slices), adding up the stats', async () => {
    const connection = await h.createConnection('test-items');
    const cursors: (string | undefined)[] = [];
    scripts.set(connection.id, async (ctx, cursor) => {
      cursors.push(cursor);
      const page = Number(cursor ?? 0);
      await emitItems(ctx, [`p${page}a`, `p${page}b`]);
      await ctx.progress({ phase: 'items', done: (page + 1) * 2, total: 6 });
      return page < 2 ? { done: false, cursor: String(page + 1) } : { done: true };
    });
    const run = await requestSync({ tenantId: h.tenantId, connectionId: connection.id });
    expect(run).toMatchObject({ status: 'queued', trigger: 'api', connectionId: connection.id });
    await h.runner.idle();
    expect(cursors).toEqual([undefined, '1', '2']);
    expect(await h.run(run.id)).toMatchObject({
      status: 'succeeded',
      progress: { phase: 'done', done: 6, total: 6 },
      stats: { nodesUpserted: 6, requests: 6, nodesDeleted: 0 },
    });
    expect(await h.nodeIdsOf(connection.id)).toHaveLength(6);
  });

  it('waits when the connector asks, holding its lease over the wait', async () => {
    const connection = await h.createConnection('test-items');
    const cursors: (string | undefined)[] = [];
    scripts.set(connection.id, async (_ctx, cursor) => {
      cursors.push(cursor);
      return cursor ? { done: true } : { done: false, cursor: 'after-rate-limit', waitSeconds: 30 };
    });
    let leaseOverWait: number | undefined;
    sliceOverrides[sliceStateName('test-items')] = async (input, next) => {
      const output = (await next(input)) as { waitSeconds: number };
      if (output.waitSeconds > 0) leaseOverWait = new Date((await h.leases.holder(h.tenantId, `sync:${connection.id}`))!.expiresAt).getTime();
      return output;
    };
    try {
      const execution = h.runner.startExecution({ tenantId: h.tenantId, connectionIds: [connection.id] });
      const waits: unknown[] = [];
      for await (const event of execution.events) {
        if (event.type === 'StateEntered' && event.state?.name === STATES.waitBeforeNextSlice) waits.push((event.state.input as { waitSeconds: number }).waitSeconds);
      }
      await execution.result;
      expect(waits).toEqual([30]);
    } finally {
      delete sliceOverrides[sliceStateName('test-items')];
    }
    expect(cursors).toEqual([undefined, 'after-rate-limit']);
    // Renewed for the wait plus a full lease (less the renewal slack: a lease lasting that long
    // already is not rewritten), so nobody takes the connection while the run waits.
    expect(leaseOverWait).toBeGreaterThanOrEqual(h.clock.now().getTime() + syncSettings().leaseMs + 30_000 - RENEWAL_SLACK_MS);
    expect((await h.runsOf(connection.id))[0]!.status).toBe('succeeded');
  });

  it('answers 409 to a second sync request while one runs', async () => {
    const connection = await h.createConnection('test-items');
    const release = deferred();
    scripts.set(connection.id, async () => {
      await release.promise;
      return { done: true };
    });
    const results = await Promise.allSettled([
      requestSync({ tenantId: h.tenantId, connectionId: connection.id }),
      requestSync({ tenantId: h.tenantId, connectionId: connection.id }),
    ]);
    const accepted = results.filter((result) => result.status === 'fulfilled');
    const refused = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
    expect(accepted).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(refused[0]!.reason).toBeInstanceOf(ConflictError);
    expect((refused[0]!.reason as ConflictError).status).toBe(409);
    await expect(requestSync({ tenantId: h.tenantId, connectionId: connection.id })).rejects.toBeInstanceOf(ConflictError);
    release.resolve();
    await h.runner.idle();
    expect((await h.runsOf(connection.id)).map((run) => run.status)).toEqual(['succeeded']);
    // Free again once it finished.
    const next = await requestSync({ tenantId: h.tenantId, connectionId: connection.id });
    await h.runner.idle();
    expect((await h.run(next.id)).status).toBe('succeeded');
  });

  it('retries a throttled Lambda invoke, then carries on', async () => {
    const connection = await h.createConnection('test-items');
    scripts.set(connection.id, async () => ({ done: true }));
    let throttled = 0;
    sliceOverrides[sliceStateName('test-items')] = async (input, next) => {
      if (throttled++ === 0) throw Object.assign(new Error('Rate exceeded'), { name: 'Lambda.TooManyRequestsException' });
      return next(input);
    };
    try {
      const run = await requestSync({ tenantId: h.tenantId, connectionId: connection.id });
      await h.runner.idle();
      expect(throttled).toBe(2);
      expect((await h.run(run.id)).status).toBe('succeeded');
    } finally {
      delete sliceOverrides[sliceStateName('test-items')];
    }
  });

  it('records a run of a type this deployment has no sync Lambda for as failed, and survives a failing RecordFailure', async () => {
    const unknown = await h.createConnection('test-unrouted');
    const sibling = await h.createConnection('test-items');
    scripts.set(sibling.id, async () => ({ done: true }));
    // The deployed plan skips types without a Lambda; an older plan or a new type must still end cleanly.
    sliceOverrides[STATES.plan] = (input) => planSyncs(input, runtime(), { ...syncSettings(), syncableTypes: undefined });
    try {
      await h.execute({ connectionIds: [`${h.tenantId}/${unknown.id}`, sibling.id], tenantId: h.tenantId });
    } finally {
      delete sliceOverrides[STATES.plan];
    }
    expect((await h.runsOf(unknown.id))[0]).toMatchObject({ status: 'failed', trigger: 'console', error: { code: 'unsupported-integration-type' } });
    expect(await h.leaseHolder(unknown.id)).toBeUndefined();

    const broken = await h.createConnection('test-broken');
    const unavailable = async () => {
      throw new Error('DynamoDB is unavailable');
    };
    sliceOverrides[STATES.recordPartitionFailure] = unavailable;
    sliceOverrides[STATES.recordFailure] = unavailable;
    try {
      const output = await h.execute({ connectionIds: [broken.id, sibling.id], tenantId: h.tenantId });
      expect(output).toBeDefined();
    } finally {
      delete sliceOverrides[STATES.recordFailure];
      delete sliceOverrides[STATES.recordPartitionFailure];
    }
    // The failure could not be recorded: the run stays open until its lease expires; the sibling is unaffected.
    expect((await h.runsOf(broken.id))[0]!.status).toBe('running');
    expect((await h.runsOf(sibling.id))[0]!.status).toBe('succeeded');
  });

  it('refuses console input it does not understand, naming the field', async () => {
    await expect(h.execute({ connectionIds: ['conn_abc'] })).rejects.toThrow(/needs a tenant/);
    await expect(h.execute({ tenantId: h.tenantId, mode: 'everything' })).rejects.toThrow(/mode/);
  });
});
