/**
 * The sync orchestration under test: the state machine definition CDK synthesizes for the given
 * integration types, run by the local runner (aws-local-stepfunctions) against a fresh dynalite
 * table, an in-memory secret store and a clock the test moves. Waits and retry pauses are
 * shortened to 0 ms; everything else (choices, loops, catches, the Map) runs as deployed.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import type { Connector, SyncContext, SyncResult } from '#connectors/types.ts';
import { registerConnector } from '#connectors/registry.ts';
import { GraphStore } from '#graph/store.ts';
import { ConnectionStore, type Connection } from '#platform/connections.ts';
import type { TableRef } from '#platform/dynamo.ts';
import { newId } from '#platform/ids.ts';
import { LeaseStore } from '#platform/leases.ts';
import { configureRuntime } from '#platform/runtime.ts';
import { SyncRunStore, type SyncRun } from '#platform/sync-runs.ts';
import { TenantStore } from '#platform/tenants.ts';
import { configureSyncLauncher } from '#sync/launcher.ts';
import { configureSync, resetSyncSettings, type SyncSettings } from '#sync/settings.ts';
import { STATES } from '#sync/state-machine-names.ts';
import { syncLeaseName } from '#sync/sync-lease.ts';
import { LocalStateMachineRunner, synthesizeDefinition, type LocalRunnerOptions, type StateMachineDefinition } from '#local/state-machine-runner.ts';
import { createTestTable } from './dynamo.ts';
import { MemorySecretStore } from './secrets.ts';
import { z } from 'zod';

export const silentLogger = new Logger({ serviceName: 'sync-test', logLevel: 'SILENT' });

/** A clock that moves only when the test says so. */
export class TestClock {
  #ms: number;
  constructor(start = Date.now()) {
    this.#ms = start;
  }
  now = (): Date => new Date(this.#ms);
  advance(ms: number): void {
    this.#ms += ms;
  }
}

/** A promise with its resolve/reject, for stepping a connector from the test (no sleeps). */
export function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

export type SyncScript = (ctx: SyncContext<Record<string, unknown>, Record<string, unknown>>, cursor: string | undefined) => Promise<SyncResult>;

/**
 * A test-only integration: its sync runs the script registered for the connection (by id), so
 * one type serves many behaviours. `scripts.set(connectionId, fn)`.
 */
export function scriptedConnector(type: string, scripts: Map<string, SyncScript>): Connector<Record<string, unknown>, Record<string, unknown>> {
  return {
    type,
    title: `Test ${type}`,
    auth: 'api-key',
    provides: ['test items'],
    configSchema: z.looseObject({}),
    credentialsSchema: z.looseObject({}),
    verify: async () => ({ ok: true, checks: [] }),
    sync: async (ctx, cursor) => {
      const script = scripts.get(ctx.connectionId);
      if (!script) throw new Error(`no script for ${ctx.connectionId}`);
      return script(ctx, cursor);
    },
  };
}

/** Writes one `item` node per name, and an edge from each to the first. */
export async function emitItems(ctx: SyncContext<unknown, unknown>, names: readonly string[], prefix = 'test:item:'): Promise<void> {
  for (const name of names) {
    await ctx.graph.upsertNode({ id: `${prefix}${name}`, type: 'item', name });
    ctx.countRequest();
  }
}

export interface SyncHarness {
  table: TableRef;
  secrets: MemorySecretStore;
  clock: TestClock;
  runner: LocalStateMachineRunner;
  definition: StateMachineDefinition;
  connections: ConnectionStore;
  runs: SyncRunStore;
  graph: GraphStore;
  leases: LeaseStore;
  tenantId: string;
  createConnection(type: string, overrides?: Partial<Connection>): Promise<Connection>;
  /** Runs one execution to its end and returns its output (the clock moves on a second first). */
  execute(input: Record<string, unknown>): Promise<unknown>;
  run(syncId: string): Promise<SyncRun>;
  /** Sync runs of a connection, newest first. */
  runsOf(connectionId: string): Promise<SyncRun[]>;
  leaseHolder(connectionId: string): Promise<string | undefined>;
  /** Node ids of the graph a connection contributes. */
  nodeIdsOf(connectionId: string): Promise<string[]>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  integrationTypes: string[];
  connectors: Connector<Record<string, unknown>, Record<string, unknown>>[];
  tenantId?: string;
  settings?: Partial<SyncSettings>;
  runner?: Partial<Omit<LocalRunnerOptions, 'definition'>>;
  /** Reuse a definition (several harnesses in one file). */
  definition?: StateMachineDefinition;
}

export async function createSyncHarness(options: HarnessOptions): Promise<SyncHarness> {
  const table = await createTestTable();
  const secrets = new MemorySecretStore();
  const clock = new TestClock();
  configureRuntime({ table, secrets, now: clock.now });
  resetSyncSettings();
  configureSync({ logger: silentLogger, ...options.settings });
  const unregister = options.connectors.map((connector) => registerConnector(connector));
  const definition = options.definition ?? (await synthesizeDefinition({ integrationTypes: options.integrationTypes }));
  const noWaits = Object.fromEntries([STATES.waitBeforeNextSlice, STATES.waitForRunningSync].map((name) => [name, 0]));
  const runner = new LocalStateMachineRunner({
    definition,
    waitTimeOverrides: noWaits,
    ...options.runner,
  });
  configureSyncLauncher(runner);
  const tenantId = options.tenantId ?? 'acme';
  await new TenantStore(table).ensureTenant(tenantId);
  const connections = new ConnectionStore(table);
  const runs = new SyncRunStore(table);
  const graph = new GraphStore(table);
  const leases = new LeaseStore(table, clock.now);

  return {
    table,
    secrets,
    clock,
    runner,
    definition,
    connections,
    runs,
    graph,
    leases,
    tenantId,
    async createConnection(type, overrides = {}) {
      const now = clock.now().toISOString();
      const id = overrides.id ?? newId('conn', clock.now().getTime());
      const secretName = `${id}-v1`;
      await secrets.put(overrides.tenantId ?? tenantId, secretName, { token: `secret-token-${id}` });
      return connections.create({
        id,
        tenantId,
        type,
        name: `${type} ${id.slice(-4)}`,
        status: 'connected',
        paused: false,
        config: {},
        secretName,
        createdAt: now,
        updatedAt: now,
        nextSyncAt: new Date(clock.now().getTime() - 60_000).toISOString(),
        ...overrides,
      });
    },
    async execute(input) {
      // Runs sort newest first by start time: a new run starts a little later than the last.
      clock.advance(1000);
      return runner.startExecution(input).result;
    },
    async run(syncId) {
      const run = await runs.get(tenantId, syncId);
      if (!run) throw new Error(`no run ${syncId}`);
      return run;
    },
    async runsOf(connectionId) {
      return (await runs.listByConnection(tenantId, connectionId)).items;
    },
    async leaseHolder(connectionId) {
      return (await leases.holder(tenantId, syncLeaseName(connectionId)))?.owner;
    },
    async nodeIdsOf(connectionId) {
      const ids: string[] = [];
      for await (const page of graph.contributions(tenantId, connectionId)) {
        for (const ref of page) if (ref.kind === 'node') ids.push(ref.PK.slice(ref.PK.indexOf('#N#') + 3));
      }
      return ids.sort();
    },
    async close() {
      await runner.close();
      configureSyncLauncher(undefined);
      for (const stop of unregister) stop();
      resetSyncSettings();
    },
  };
}
