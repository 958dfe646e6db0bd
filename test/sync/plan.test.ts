/**
 * The domain pieces on their own (no state machine): planning, opening runs from the API,
 * error codes, and the "seen" store the sweep reads.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { z } from 'zod';
import { registerConnector } from '#connectors/registry.ts';
import { ConnectionStore, type Connection } from '#platform/connections.ts';
import type { TableRef } from '#platform/dynamo.ts';
import { ConflictError, NotFoundError, ValidationError } from '#platform/errors.ts';
import { newId } from '#platform/ids.ts';
import { configureRuntime, runtime } from '#platform/runtime.ts';
import { SyncRunStore } from '#platform/sync-runs.ts';
import { failureFromTaskError } from '#sync/errors.ts';
import type { StateMachineInput, SyncLauncher } from '#sync/launcher.ts';
import { planSyncs } from '#sync/plan.ts';
import { decideMode } from '#sync/schedule.ts';
import { SeenStore, contributionKey, wasSeen } from '#sync/seen.ts';
import { configureSync, syncSettings } from '#sync/settings.ts';
import { requestSync } from '#sync/start-sync.ts';
import { toSyncView } from '#sync/view.ts';
import { createTestTable } from '../support/dynamo.ts';
import { MemorySecretStore } from '../support/secrets.ts';
import { silentLogger, TestClock } from '../support/sync-harness.ts';

let table: TableRef;
const clock = new TestClock();
beforeAll(async () => {
  table = await createTestTable();
  configureRuntime({ table, secrets: new MemorySecretStore(), now: clock.now });
  configureSync({ logger: silentLogger });
  registerConnector({
    type: 'test-plan',
    title: 'Test',
    auth: 'api-key',
    provides: [],
    configSchema: z.looseObject({}),
    credentialsSchema: z.looseObject({}),
    verify: async () => ({ ok: true, checks: [] }),
    sync: async () => ({ done: true }),
  });
  registerConnector({ type: 'test-live-only', title: 'Live', auth: 'api-key', provides: [], configSchema: z.looseObject({}), credentialsSchema: z.looseObject({}), verify: async () => ({ ok: true, checks: [] }) });
});

async function connection(tenantId: string, overrides: Partial<Connection> = {}): Promise<Connection> {
  const now = clock.now();
  return new ConnectionStore(table).create({
    id: newId('conn', now.getTime()),
    tenantId,
    type: 'test-plan',
    name: 'x',
    status: 'connected',
    paused: false,
    config: {},
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
    nextSyncAt: new Date(now.getTime() - 1000).toISOString(),
    ...overrides,
  });
}

class RecordingLauncher implements SyncLauncher {
  readonly started: { input: StateMachineInput; name: string | undefined }[] = [];
  fail = false;
  async start(input: StateMachineInput, name?: string) {
    if (this.fail) throw new Error('StartExecution failed');
    this.started.push({ input, name });
    return { executionId: name ?? 'x' };
  }
}

describe('plan', () => {
  it('takes due connections in rounds, each round continuing after the last', async () => {
    const due = [await connection('due-a'), await connection('due-b'), await connection('due-c')];
    await connection('due-d', { nextSyncAt: new Date(clock.now().getTime() + 3_600_000).toISOString() });
    const settings = { ...syncSettings(), planMaxItems: 2 };
    const first = await planSyncs({ trigger: 'schedule' }, runtime(), settings);
    expect(first.items).toHaveLength(2);
    expect(first.next).toBeDefined();
    const second = await planSyncs({ trigger: 'schedule', plan: { ...first } }, runtime(), settings);
    expect(second.items).toHaveLength(1);
    expect(second.next).toBeUndefined();
    expect([...first.items, ...second.items].map((item) => item.connectionId).sort()).toEqual(due.map((c) => c.id).sort());
    for (const item of [...first.items, ...second.items]) {
      expect(item).toEqual({ tenantId: item.tenantId, connectionId: item.connectionId, syncId: expect.stringMatching(/^sync_/), type: 'test-plan', mode: 'full', forceSweep: false, cursor: null, slice: 0 });
      expect(await new SyncRunStore(table).get(item.tenantId, item.syncId)).toMatchObject({ status: 'queued', trigger: 'schedule', mode: 'full' });
    }
    // Their leases are held: a third look plans none of them again.
    expect((await planSyncs({}, runtime(), settings)).items).toEqual([]);
  });

  it('names connections as <tenant>/conn_… or conn_… with tenantId, and explains what it skipped', async () => {
    const a = await connection('named');
    const b = await connection('named', { paused: true });
    const c = await connection('named', { type: 'test-live-only' });
    const plan = await planSyncs({ tenantId: 'named', connectionIds: [`named/${a.id}`, b.id, c.id, 'conn_doesnotexist'], mode: 'incremental' }, runtime(), {
      ...syncSettings(),
      syncableTypes: ['test-plan'],
    });
    expect(plan.items.map((item) => [item.connectionId, item.mode])).toEqual([[a.id, 'incremental']]);
    expect(plan.skipped).toEqual([
      { connectionId: b.id, reason: 'paused' },
      { connectionId: c.id, reason: 'no sync for integration type test-live-only' },
      { connectionId: 'conn_doesnotexist', reason: 'not found' },
    ]);
    await expect(planSyncs({ connectionIds: [a.id] })).rejects.toThrow(/needs a tenant/);
    await expect(planSyncs({ tenantId: 'named', connectionIds: ['repo-1'] })).rejects.toBeInstanceOf(ValidationError);
    await expect(planSyncs({ tenantId: 'named', surprise: true })).rejects.toThrow(/surprise|Unrecognized/);
  });

  it('decides full or incremental from the count of incrementals since the last full pass', () => {
    expect(decideMode({}, 24)).toBe('full');
    expect(decideMode({ incrementalsSinceFull: 3 }, 24)).toBe('incremental');
    expect(decideMode({ incrementalsSinceFull: 24 }, 24)).toBe('full');
  });
});

describe('requestSync (the API\'s POST …/sync)', () => {
  it('opens the run and hands it to the state machine as preplanned; the plan reuses it', async () => {
    const c = await connection('api');
    const launcher = new RecordingLauncher();
    const run = await requestSync({ tenantId: 'api', connectionId: c.id, mode: 'incremental' }, launcher);
    expect(run).toMatchObject({ status: 'queued', trigger: 'api', mode: 'incremental', connectionId: c.id, stats: { nodesUpserted: 0 } });
    expect(launcher.started).toEqual([{ input: { preplanned: [{ tenantId: 'api', connectionId: c.id, syncId: run.id }], trigger: 'api' }, name: run.id }]);

    const plan = await planSyncs(launcher.started[0]!.input);
    expect(plan.items).toEqual([{ tenantId: 'api', connectionId: c.id, syncId: run.id, type: 'test-plan', mode: 'incremental', forceSweep: false, cursor: null, slice: 0 }]);
    expect((await new SyncRunStore(table).listByConnection('api', c.id)).items).toHaveLength(1);
    await expect(requestSync({ tenantId: 'api', connectionId: c.id }, launcher)).rejects.toBeInstanceOf(ConflictError);
  });

  it('shows the run in the API\'s shape', async () => {
    const c = await connection('api3');
    const run = await requestSync({ tenantId: 'api3', connectionId: c.id }, new RecordingLauncher());
    expect(toSyncView(run)).toEqual({
      id: run.id,
      connectionId: c.id,
      status: 'queued',
      trigger: 'api',
      mode: 'full',
      startedAt: run.startedAt,
      progress: { phase: 'queued', done: 0 },
      stats: { nodesUpserted: 0, edgesUpserted: 0, nodesDeleted: 0, edgesDeleted: 0, requests: 0 },
    });
  });

  it('refuses paused, unknown and live-only connections; a failed launch leaves no run open', async () => {
    const launcher = new RecordingLauncher();
    const paused = await connection('api2', { paused: true });
    await expect(requestSync({ tenantId: 'api2', connectionId: paused.id }, launcher)).rejects.toBeInstanceOf(ConflictError);
    await expect(requestSync({ tenantId: 'api2', connectionId: 'conn_missing' }, launcher)).rejects.toBeInstanceOf(NotFoundError);
    const live = await connection('api2', { type: 'test-live-only' });
    await expect(requestSync({ tenantId: 'api2', connectionId: live.id }, launcher)).rejects.toBeInstanceOf(ValidationError);

    const c = await connection('api2');
    launcher.fail = true;
    await expect(requestSync({ tenantId: 'api2', connectionId: c.id }, launcher)).rejects.toThrow('StartExecution failed');
    const [run] = (await new SyncRunStore(table).listByConnection('api2', c.id)).items;
    expect(run).toMatchObject({ status: 'failed', error: { code: 'launch-failed' } });
    launcher.fail = false;
    await expect(requestSync({ tenantId: 'api2', connectionId: c.id }, launcher)).resolves.toMatchObject({ status: 'queued' });
  });
});

describe('errors on the run', () => {
  it('reads Lambda\'s error JSON and Step Functions\' own errors into { code, message }', () => {
    expect(failureFromTaskError({ Error: 'UpstreamFailedError', Cause: JSON.stringify({ errorType: 'UpstreamFailedError', errorMessage: 'GitHub answered 502', trace: ['at x'] }) })).toEqual({
      code: 'upstream-failed',
      message: 'GitHub answered 502',
    });
    expect(failureFromTaskError({ Error: 'States.Timeout', Cause: '' })).toMatchObject({ code: 'timeout' });
    expect(failureFromTaskError({ Error: 'ValidationError', Cause: 'bad config' }).code).toBe('validation-failed');
    expect(failureFromTaskError({ Error: 'LeaseLostError', Cause: 'taken over' }).code).toBe('lease-lost');
    expect(failureFromTaskError({ Error: 'Lambda.Unknown', Cause: 'The Lambda runtime exited (out of memory)' })).toEqual({ code: 'task-failed', message: 'The Lambda runtime exited (out of memory)' });
    expect(failureFromTaskError({ Error: 'Error', Cause: 'x'.repeat(5000) }).message.length).toBe(1000);
  });
});

describe('SeenStore', () => {
  it('keeps any number of seen keys across chunk items, and what was incomplete', async () => {
    const store = new SeenStore(table, clock.now);
    const keys = Array.from({ length: 40_000 }, (_, i) => contributionKey({ PK: `T#t#N#node-${i}`, SK: 'N#conn_a' }));
    await store.record('t', 'sync_a', 0, { keys, incomplete: { document: 'HTTP 500' } }, 3);
    await store.record('t', 'sync_a', 1, { keys: ['T#t#N#extra\u0000N#conn_a'], incomplete: {} }, 3);
    const seen = await store.load('t', 'sync_a');
    expect(seen.hashes.size).toBe(40_001);
    expect([...seen.incomplete]).toEqual([['document', 'HTTP 500']]);
    expect(wasSeen(seen, { PK: 'T#t#N#node-39999', SK: 'N#conn_a' })).toBe(true);
    expect(wasSeen(seen, { PK: 'T#t#N#node-40000', SK: 'N#conn_a' })).toBe(false);
    expect((await store.load('t', 'sync_other')).hashes.size).toBe(0);
  });
});
