/**
 * One slice of one connection's sync: what each integration's sync Lambda runs (the same code for
 * every integration; the Lambda's CONNECTOR_TYPE says which connector). Loads the connection and
 * its credentials, hands the connector a SyncContext (graph writer, scoped state, progress,
 * deadline, request counter), runs `connector.sync(ctx, cursor)`, flushes the writer, records
 * what the slice saw (for the sweep) and its stats, renews the lease, and returns ids + cursor.
 *
 * A connection paused, being disconnected or removed stops the run at a slice boundary: the slice
 * returns `done` with `stopped` set, and Finalize records a cut-short pass (nothing swept).
 */
import type { z } from 'zod';
import { findConnector } from '#connectors/registry.ts';
import type { SyncContext, SyncResult } from '#connectors/types.ts';
import { GraphStore } from '#graph/store.ts';
import { ConnectionStore, type Connection } from '#platform/connections.ts';
import { runtime, type Runtime } from '#platform/runtime.ts';
import { SyncRunStore, type SyncRun, type SyncStats } from '#platform/sync-runs.ts';
import { SyncStateStore } from '#platform/sync-state.ts';
import { TenantStore } from '#platform/tenants.ts';
import { ValidationError } from '#platform/errors.ts';
import type { SecretValue } from '#platform/secret-store.ts';
import { ConnectorContractError, CredentialsMissingError, LeaseLostError, SyncTaskError, UnsupportedIntegrationTypeError } from './errors.ts';
import { MAX_CURSOR_BYTES, parseTaskInput, syncItemSchema, type SliceResult, type StopReason, type SyncItem } from './payloads.ts';
import { ProgressReporter } from './progress.ts';
import { SeenStore } from './seen.ts';
import { syncSettings, type SyncSettings } from './settings.ts';
import { renewSyncLease } from './sync-lease.ts';

export interface SliceOptions {
  /** The integration this sync Lambda was built for; a slice of another type is refused. */
  connectorType: string;
  /** Milliseconds left before the slice must hand back its cursor (already net of any safety margin). */
  remainingMs: () => number;
}

const MAX_WARNINGS = 50;
const MAX_WARNING_CHARS = 500;

function stopReasonOf(connection: Connection | undefined): StopReason | null {
  if (!connection) return 'removed';
  if (connection.status === 'disconnecting') return 'disconnecting';
  if (connection.paused) return 'paused';
  return null;
}

function parseWith<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const detail = result.error.issues.map((issue) => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`).join('; ');
  throw new ValidationError(`The connection's stored ${what} no longer match what the integration expects (${detail}); update the connection.`);
}

function checkResult(result: SyncResult | undefined, maxWaitSeconds: number): { done: boolean; cursor: string | null; waitSeconds: number } {
  if (!result || typeof result.done !== 'boolean') throw new ConnectorContractError('The connector returned no { done } answer from sync().');
  const cursor = result.cursor ?? null;
  if (cursor !== null && (typeof cursor !== 'string' || Buffer.byteLength(cursor) > MAX_CURSOR_BYTES)) {
    throw new ConnectorContractError(`The connector returned a cursor that is not a string of at most ${MAX_CURSOR_BYTES} bytes; keep big state in ctx.state.`);
  }
  const asked = result.waitSeconds ?? 0;
  if (typeof asked !== 'number' || !Number.isFinite(asked) || asked < 0) throw new ConnectorContractError('The connector asked for a negative or non-numeric waitSeconds.');
  return { done: result.done, cursor, waitSeconds: result.done ? 0 : Math.min(maxWaitSeconds, Math.ceil(asked)) };
}

export async function runSlice(rawInput: unknown, options: SliceOptions, rt: Runtime = runtime(), settings: SyncSettings = syncSettings()): Promise<SliceResult> {
  const item: SyncItem = parseTaskInput(syncItemSchema, rawInput, 'SyncSlice');
  const { tenantId, connectionId, syncId } = item;
  const stopped = (reason: StopReason): SliceResult => ({ ...item, done: true, waitSeconds: 0, stopped: reason });

  if (item.type !== options.connectorType) {
    throw new SyncTaskError('MisroutedSliceError', `A ${item.type} run reached the ${options.connectorType} sync Lambda.`);
  }
  const connector = findConnector(item.type);
  if (!connector?.sync) throw new UnsupportedIntegrationTypeError(`The ${item.type} integration has no sync in this build.`);

  if (!(await renewSyncLease(rt, tenantId, connectionId, syncId, settings.leaseMs))) {
    throw new LeaseLostError('Another sync of this connection took over (this run\'s lease had expired); this run stopped without sweeping.');
  }
  const connections = new ConnectionStore(rt.table);
  const runs = new SyncRunStore(rt.table);
  const connection = await connections.get(tenantId, connectionId, true);
  const stopBefore = stopReasonOf(connection);
  if (stopBefore || !connection) return stopped(stopBefore ?? 'removed');

  const run = await runs.get(tenantId, syncId);
  if (!run) throw new SyncTaskError('RunMissingError', `Sync run ${syncId} does not exist.`);
  if (run.status !== 'queued' && run.status !== 'running') {
    throw new LeaseLostError(`Sync run ${syncId} is already ${run.status}; this slice stopped.`);
  }
  const startProgress = run.status === 'queued' ? { ...run.progress, phase: 'syncing' } : run.progress;
  if (run.status === 'queued') await runs.update(tenantId, syncId, { status: 'running', progress: startProgress });

  let credentials: SecretValue = {};
  if (connection.secretName) {
    const secret = await rt.secrets.get(tenantId, connection.secretName);
    if (!secret) throw new CredentialsMissingError('The connection\'s credentials are missing from the secret store; reconnect it.');
    credentials = secret;
  }
  const config = parseWith(connector.configSchema, connection.config, 'settings');
  const parsedCredentials = parseWith(connector.credentialsSchema, credentials, 'credentials');
  const tenant = await new TenantStore(rt.table).getTenant(tenantId);

  const graph = new GraphStore(rt.table).writer(tenantId, connectionId, { now: rt.now });
  const stateStore = new SyncStateStore(rt.table);
  const progress = new ProgressReporter(runs, tenantId, syncId, startProgress, rt.now, settings.progressIntervalMs);
  const incomplete: Record<string, string> = {};
  const warnings: string[] = [];
  let requests = 0;
  let secretName = connection.secretName;
  const logger = settings.logger.createChild({ persistentKeys: { tenantId, connectionId, syncId } });

  const ctx: SyncContext<unknown, unknown> = {
    tenantId,
    externalId: tenant?.externalId ?? '',
    connectionId,
    syncId,
    // Until the state machine fans out per partition, every connection syncs as one.
    partition: '*',
    mode: item.mode,
    config,
    credentials: parsedCredentials,
    logger,
    fetch: (url, init) => {
      requests++;
      return settings.fetch(url, init);
    },
    graph: { upsertNode: (node) => graph.upsertNode(node), upsertEdge: (edge) => graph.upsertEdge(edge) },
    state: {
      get: (scope) => stateStore.get(tenantId, connectionId, scope),
      put: async (scope, value) => {
        await stateStore.put(tenantId, connectionId, scope, value);
      },
    },
    progress: (value) => progress.report(value),
    markIncomplete: (kind, reason) => {
      incomplete[String(kind)] ??= String(reason).slice(0, MAX_WARNING_CHARS);
    },
    warn: (message) => {
      const text = String(message).slice(0, MAX_WARNING_CHARS);
      if (!warnings.includes(text)) warnings.push(text);
    },
    countRequest: () => {
      requests++;
    },
    remainingMs: () => options.remainingMs(),
    saveCredentials: async (value) => {
      if (!secretName) {
        secretName = `${connectionId}-v1`;
        const name = secretName;
        await rt.secrets.put(tenantId, name, value);
        await connections.update(tenantId, connectionId, (current) => ({ ...current, secretName: name, updatedAt: rt.now().toISOString() }));
        return;
      }
      await rt.secrets.put(tenantId, secretName, value);
    },
    now: () => rt.now(),
  };

  const result = checkResult(await connector.sync(ctx, item.cursor ?? undefined), settings.maxWaitSeconds);
  await graph.flush();
  await new SeenStore(rt.table, rt.now).record(tenantId, syncId, item.slice, { keys: graph.seen, incomplete }, settings.seenTtlDays);

  const sliceStats: Partial<SyncStats> = {
    nodesUpserted: graph.stats.nodesUpserted,
    edgesUpserted: graph.stats.edgesUpserted,
    requests,
    writeRequests: graph.stats.writeRequests,
  };
  await recordSlice(runs, run, sliceStats, progress, warnings);

  // Paused or disconnected while this slice ran: stop here rather than start another slice.
  let stopAfter: StopReason | null = null;
  if (!result.done) stopAfter = stopReasonOf(await connections.get(tenantId, connectionId, true));

  const waitMs = stopAfter ? 0 : result.waitSeconds * 1000;
  if (!(await renewSyncLease(rt, tenantId, connectionId, syncId, settings.leaseMs + waitMs))) {
    throw new LeaseLostError('Another sync of this connection took over while this slice ran; this run stopped without sweeping.');
  }
  logger.info('sync slice done', { slice: item.slice, done: result.done, waitSeconds: result.waitSeconds, stopped: stopAfter, ...sliceStats });
  return {
    ...item,
    cursor: result.cursor,
    slice: item.slice + 1,
    done: result.done || stopAfter !== null,
    waitSeconds: stopAfter ? 0 : result.waitSeconds,
    stopped: stopAfter,
  };
}

/** Adds the slice's numbers to the run (slices of a run never overlap: the lease), with its last progress and warnings. */
async function recordSlice(runs: SyncRunStore, run: SyncRun, slice: Partial<SyncStats>, progress: ProgressReporter, warnings: string[]): Promise<void> {
  const current = (await runs.get(run.tenantId, run.id)) ?? run;
  const stats: SyncStats = { ...current.stats };
  for (const [name, value] of Object.entries(slice) as [keyof SyncStats, number][]) stats[name] = (stats[name] ?? 0) + value;
  const merged = [...(current.warnings ?? [])];
  for (const warning of warnings) if (!merged.includes(warning) && merged.length < MAX_WARNINGS) merged.push(warning);
  await runs.update(run.tenantId, run.id, {
    stats,
    progress: progress.latest,
    ...(merged.length > (current.warnings?.length ?? 0) ? { warnings: merged } : {}),
  });
}
