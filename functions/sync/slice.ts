/**
 * What each integration's sync Lambda runs (the same code for every integration; the Lambda's
 * CONNECTOR_TYPE says which connector), in two roles:
 *
 * - `listPartitions` (the ListPartitions-<type> task, once per run): asks the connector how the
 *   pass splits (`connector.partitions(ctx)`, e.g. one partition per repository; `['*']` without
 *   it), caps the list (MAX_PARTITIONS, MAX_PARTITION_LIST_BYTES) and hands it to the partition Map.
 * - `runSlice` (the SyncSlice-<type> task, once per slice of each partition): runs
 *   `connector.sync(ctx, cursor)` with `ctx.partition` set, flushes the writer, records what the
 *   slice saw (for the sweep, full passes only) and its stats, renews the lease, and returns ids +
 *   partition + cursor.
 *
 * Both load the connection and its credentials (OAuth tokens through OAuthTokenManager, refreshed
 * first when they would expire within the slice) and hand the connector a SyncContext (graph
 * writer, scoped state, progress, deadline, request counters).
 *
 * The slice loops of a run's partitions run concurrently: every change to the run record is an
 * atomic update (stats are added, never read-modified-written), and the lease is only ever
 * extended. A connection paused, being disconnected or removed stops each loop at a slice
 * boundary: the slice notes why on the run and answers `done` with `stopped`; Finalize then
 * records a cut-short pass (nothing swept).
 */
import type { z } from 'zod';
import { findConnector } from '#connectors/registry.ts';
import type { Connector, SyncContext, SyncResult } from '#connectors/types.ts';
import { GraphStore } from '#graph/store.ts';
import type { GraphWriter } from '#graph/writer.ts';
import { ConnectionStore, type Connection } from '#platform/connections.ts';
import { runtime, type Runtime } from '#platform/runtime.ts';
import { SyncRunStore, type SyncProgress, type SyncRun, type SyncStats } from '#platform/sync-runs.ts';
import { SyncStateStore } from '#platform/sync-state.ts';
import { TenantStore } from '#platform/tenants.ts';
import { ValidationError } from '#platform/errors.ts';
import type { SecretValue } from '#platform/secret-store.ts';
import { OAuthTokenManager } from '../oauth/tokens.ts';
import { ConnectorContractError, CredentialsMissingError, LeaseLostError, SyncTaskError, UnsupportedIntegrationTypeError } from './errors.ts';
import {
  MAX_CURSOR_BYTES,
  MAX_PARTITION_KEY_BYTES,
  MAX_PARTITION_LIST_BYTES,
  MAX_PARTITIONS,
  parseTaskInput,
  runItemSchema,
  syncItemSchema,
  WHOLE_CONNECTION,
  type PartitionsOutput,
  type RunItem,
  type SliceResult,
  type StopReason,
  type SyncItem,
} from './payloads.ts';
import { ProgressReporter } from './progress.ts';
import { SeenStore, seenScope } from './seen.ts';
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
/** An OAuth token must outlive the slice by this much (the slice's budget is asked for on top). */
const TOKEN_MARGIN_MS = 5 * 60_000;
/** Longer than any token lives: asking for this much validity forces a refresh. */
const FORCE_REFRESH_MS = 365 * 86_400_000;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyConnector = Connector<any, any>;

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

/** The connection and run a task works on, checked; or why the run stops here. */
type Opened =
  | { stopped: StopReason }
  | { stopped: null; connector: AnyConnector; connection: Connection; run: SyncRun; config: unknown; credentials: unknown; externalId: string };

async function openRun(item: RunItem, options: SliceOptions, rt: Runtime, settings: SyncSettings): Promise<Opened> {
  const { tenantId, connectionId, syncId } = item;
  if (item.type !== options.connectorType) {
    throw new SyncTaskError('MisroutedSliceError', `A ${item.type} run reached the ${options.connectorType} sync Lambda.`);
  }
  const connector = findConnector(item.type);
  if (!connector?.sync) throw new UnsupportedIntegrationTypeError(`The ${item.type} integration has no sync in this build.`);

  if (!(await renewSyncLease(rt, tenantId, connectionId, syncId, settings.leaseMs))) {
    throw new LeaseLostError('Another sync of this connection took over (this run\'s lease had expired); this run stopped without sweeping.');
  }
  const runs = new SyncRunStore(rt.table);
  const connection = await new ConnectionStore(rt.table).get(tenantId, connectionId, true);
  const stopBefore = stopReasonOf(connection);
  if (stopBefore || !connection) {
    await runs.markStopped(tenantId, syncId, stopBefore ?? 'removed');
    return { stopped: stopBefore ?? 'removed' };
  }

  const run = await runs.get(tenantId, syncId);
  if (!run) throw new SyncTaskError('RunMissingError', `Sync run ${syncId} does not exist.`);
  if (run.status !== 'queued' && run.status !== 'running') {
    throw new LeaseLostError(`Sync run ${syncId} is already ${run.status}; this slice stopped.`);
  }
  if (run.status === 'queued') {
    run.status = 'running';
    run.progress = { ...run.progress, phase: 'syncing' };
    await runs.update(tenantId, syncId, { status: 'running', progress: run.progress });
  }

  let credentials: SecretValue = {};
  if (connector.auth === 'oauth') {
    // Refreshed first (under the connection's refresh lease) when it would expire within this slice.
    credentials = await oauthCredentials(rt, connection, options);
  } else if (connection.secretName) {
    const secret = await rt.secrets.get(tenantId, connection.secretName);
    if (!secret) throw new CredentialsMissingError('The connection\'s credentials are missing from the secret store; reconnect it.');
    credentials = secret;
  }
  const config = parseWith(connector.configSchema, connection.config, 'settings');
  const parsedCredentials = parseWith(connector.credentialsSchema, credentials, 'credentials');
  const tenant = await new TenantStore(rt.table).getTenant(tenantId);
  return { stopped: null, connector, connection, run, config, credentials: parsedCredentials, externalId: tenant?.externalId ?? '' };
}

/** OAuth credentials valid for the rest of the slice (plus a margin); `force`: refresh even if they look valid. */
function oauthCredentials(rt: Runtime, connection: Connection, options: SliceOptions, force = false): Promise<SecretValue> {
  const minValidityMs = force ? FORCE_REFRESH_MS : Math.max(0, options.remainingMs()) + TOKEN_MARGIN_MS;
  return new OAuthTokenManager(rt).freshCredentials(connection, { minValidityMs });
}

/** What one task collects while the connector runs, recorded on the run at its end. */
interface TaskContext {
  ctx: SyncContext<unknown, unknown>;
  graph: GraphWriter;
  /** State the connector put, written once the graph writes are flushed. */
  saveState(): Promise<void>;
  progress: ProgressReporter;
  incomplete: Record<string, string>;
  warnings: string[];
  counts: { requests: number; rateLimited: number; rateLimitedTracked: boolean };
}

const clipPartition = (partition: string) => (partition.length > 60 ? `${partition.slice(0, 59)}…` : partition);

function taskContext(opened: Extract<Opened, { stopped: null }>, item: RunItem, partition: string, options: SliceOptions, rt: Runtime, settings: SyncSettings): TaskContext {
  const { tenantId, connectionId, syncId } = item;
  const { connection } = opened;
  const runs = new SyncRunStore(rt.table);
  const graph = new GraphStore(rt.table).writer(tenantId, connectionId, { now: rt.now });
  const stateStore = new SyncStateStore(rt.table);
  const partitioned = partition !== WHOLE_CONNECTION;
  // A run of one partition shows the connector's own progress; a partitioned run counts
  // partitions in done/total and shows the latest partition's phase.
  const progress = new ProgressReporter(
    partitioned
      ? (latest: SyncProgress) => runs.recordSlice(tenantId, syncId, { stats: {}, phase: partitionPhase(partition, latest) })
      : (latest: SyncProgress) => runs.update(tenantId, syncId, { progress: latest }),
    opened.run.progress,
    rt.now,
    settings.progressIntervalMs,
  );
  const incomplete: Record<string, string> = {};
  const warnings: string[] = [];
  const counts = { requests: 0, rateLimited: 0, rateLimitedTracked: false };
  const pendingState = new Map<string, Record<string, unknown>>();
  const connections = new ConnectionStore(rt.table);
  let secretName = connection.secretName;
  const logger = settings.logger.createChild({ persistentKeys: { tenantId, connectionId, syncId, ...(partitioned ? { partition } : {}) } });

  const ctx: SyncContext<unknown, unknown> = {
    tenantId,
    externalId: opened.externalId,
    connectionId,
    syncId,
    partition,
    mode: item.mode,
    config: opened.config,
    credentials: opened.credentials,
    logger,
    fetch: (url, init) => {
      counts.requests++;
      return settings.fetch(url, init);
    },
    graph: { upsertNode: (node) => graph.upsertNode(node), upsertEdge: (edge) => graph.upsertEdge(edge) },
    // Puts are applied after the slice's graph writes are flushed, so a stored cursor, SHA or ETag
    // never claims items that a crash kept from reaching the table. Reads see the puts at once.
    state: {
      get: async (scope) => (pendingState.has(scope) ? structuredClone(pendingState.get(scope)) : stateStore.get(tenantId, connectionId, scope)),
      put: async (scope, value) => {
        pendingState.set(scope, structuredClone(value));
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
      counts.requests++;
    },
    countRateLimited: (count = 1) => {
      counts.rateLimitedTracked = true;
      counts.rateLimited += Number.isFinite(count) && count > 0 ? count : 0;
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
    ...(opened.connector.auth === 'oauth'
      ? {
          freshCredentials: async (request: { rejectedAccessToken?: string } = {}) => {
            const again = await oauthCredentials(rt, connection, options);
            if (request.rejectedAccessToken === undefined || again.accessToken !== request.rejectedAccessToken) return parseWith(opened.connector.credentialsSchema, again, 'credentials');
            // The stored token itself is refused (revoked, or the clocks disagree): refresh it now.
            return parseWith(opened.connector.credentialsSchema, await oauthCredentials(rt, connection, options, true), 'credentials');
          },
        }
      : {}),
  };
  const saveState = async () => {
    for (const [scope, value] of pendingState) await stateStore.put(tenantId, connectionId, scope, value);
    pendingState.clear();
  };
  return { ctx, graph, saveState, progress, incomplete, warnings, counts };
}

/** A partitioned run's phase line: the partition, then what it is doing. */
function partitionPhase(partition: string, latest: SyncProgress): string {
  const count = latest.total !== undefined ? ` ${latest.done}/${latest.total}` : latest.done > 0 ? ` ${latest.done}` : '';
  return `${clipPartition(partition)}: ${latest.phase}${count}`.slice(0, 100);
}

/**
 * Flushes the task's writes, records what it saw (full passes: for the sweep) and adds its
 * numbers to the run. `progress`: the whole progress (a run of one partition), only the phase
 * (a partitioned run), or none (the partition listing).
 */
async function finishTask(
  task: TaskContext,
  item: RunItem,
  scope: string,
  rt: Runtime,
  settings: SyncSettings,
  record: { progress: 'whole' | 'phase' | 'none'; partition: string; partitionDone: boolean },
): Promise<Partial<SyncStats>> {
  const { tenantId, syncId } = item;
  await task.graph.flush();
  await task.saveState();
  // Only a full pass sweeps, so only a full pass needs its seen set (an incremental no-change pass writes none).
  if (item.mode === 'full') {
    await new SeenStore(rt.table, rt.now).recordScope(tenantId, syncId, scope, { keys: task.graph.seen, incomplete: task.incomplete }, settings.seenTtlDays);
  }
  const stats: Partial<SyncStats> = {
    nodesUpserted: task.graph.stats.nodesUpserted,
    edgesUpserted: task.graph.stats.edgesUpserted,
    requests: task.counts.requests,
    ...(task.counts.rateLimitedTracked ? { rateLimitedRequests: task.counts.rateLimited } : {}),
    writeRequests: task.graph.stats.writeRequests,
  };
  const runs = new SyncRunStore(rt.table);
  const progress =
    record.progress === 'whole'
      ? { progress: task.progress.latest }
      : record.progress === 'phase' && (task.progress.dirty || record.partitionDone)
        ? { phase: partitionPhase(record.partition, record.partitionDone ? { phase: 'done', done: 0 } : task.progress.latest) }
        : {};
  await runs.recordSlice(tenantId, syncId, { stats, ...progress, partitionDone: record.partitionDone, countInProgress: record.progress === 'phase' });
  if (task.warnings.length > 0) await runs.appendWarnings(tenantId, syncId, task.warnings, MAX_WARNINGS);
  return stats;
}

export async function runSlice(rawInput: unknown, options: SliceOptions, rt: Runtime = runtime(), settings: SyncSettings = syncSettings()): Promise<SliceResult> {
  const item: SyncItem = parseTaskInput(syncItemSchema, rawInput, 'SyncSlice');
  const { tenantId, connectionId, syncId, partition } = item;
  const stopped = (reason: StopReason): SliceResult => ({ ...item, done: true, waitSeconds: 0, stopped: reason });

  const opened = await openRun(item, options, rt, settings);
  if (opened.stopped) return stopped(opened.stopped);
  const partitioned = partition !== WHOLE_CONNECTION;
  const task = taskContext(opened, item, partition, options, rt, settings);

  const result = checkResult(await opened.connector.sync!(task.ctx, item.cursor ?? undefined), settings.maxWaitSeconds);
  const sliceStats = await finishTask(task, item, seenScope(partition, item.slice), rt, settings, { progress: partitioned ? 'phase' : 'whole', partition, partitionDone: result.done });

  // Paused or disconnected while this slice ran: stop here rather than start another slice.
  let stopAfter: StopReason | null = null;
  if (!result.done) stopAfter = stopReasonOf(await new ConnectionStore(rt.table).get(tenantId, connectionId, true));
  if (stopAfter) await new SyncRunStore(rt.table).markStopped(tenantId, syncId, stopAfter);

  const waitMs = stopAfter ? 0 : result.waitSeconds * 1000;
  if (!(await renewSyncLease(rt, tenantId, connectionId, syncId, settings.leaseMs + waitMs))) {
    throw new LeaseLostError('Another sync of this connection took over while this slice ran; this run stopped without sweeping.');
  }
  task.ctx.logger.info('sync slice done', { slice: item.slice, done: result.done, waitSeconds: result.waitSeconds, stopped: stopAfter, ...sliceStats });
  return {
    ...item,
    cursor: result.cursor,
    slice: item.slice + 1,
    done: result.done || stopAfter !== null,
    waitSeconds: stopAfter ? 0 : result.waitSeconds,
    stopped: stopAfter,
  };
}

/** Checks a connector's partition list and caps it; says what was left out. */
export function capPartitions(listed: unknown, maxPartitions: number = MAX_PARTITIONS): { partitions: string[]; dropped: number; reason?: string } {
  const cap = Math.max(1, Math.min(MAX_PARTITIONS, Math.floor(maxPartitions)));
  if (!Array.isArray(listed) || listed.some((entry) => typeof entry !== 'string' || entry.length === 0)) {
    throw new ConnectorContractError('The connector\'s partitions() must answer a list of non-empty strings.');
  }
  const unique = [...new Set(listed as string[])];
  const tooLong = unique.find((entry) => Buffer.byteLength(entry) > MAX_PARTITION_KEY_BYTES);
  if (tooLong !== undefined) throw new ConnectorContractError(`The connector listed a partition key over ${MAX_PARTITION_KEY_BYTES} bytes (${tooLong.slice(0, 60)}…).`);
  const partitions: string[] = [];
  let bytes = 2;
  for (const entry of unique) {
    const size = Buffer.byteLength(JSON.stringify(entry)) + 1;
    if (partitions.length >= cap || bytes + size > MAX_PARTITION_LIST_BYTES) break;
    partitions.push(entry);
    bytes += size;
  }
  const dropped = unique.length - partitions.length;
  if (dropped === 0) return { partitions, dropped };
  const limit = partitions.length >= cap ? `${cap.toLocaleString('en-US')} partitions` : `${Math.round(MAX_PARTITION_LIST_BYTES / 1024)} KB of partition keys`;
  return {
    partitions,
    dropped,
    reason: `This connection has ${unique.length.toLocaleString('en-US')} partitions (repositories, projects…) and one pass syncs at most ${limit}: the first ${partitions.length.toLocaleString('en-US')} were synced, ${dropped.toLocaleString('en-US')} ${dropped === 1 ? 'was' : 'were'} not (from ${unique[partitions.length]!.slice(0, 80)} on), and nothing was swept. Split the connection (e.g. narrow config.repositories) so each covers fewer.`,
  };
}

/** The ListPartitions task: the run's partitions, counted on the run (progress counts them when there are several). */
export async function listPartitions(rawInput: unknown, options: SliceOptions, rt: Runtime = runtime(), settings: SyncSettings = syncSettings()): Promise<PartitionsOutput> {
  const item: RunItem = parseTaskInput(runItemSchema, rawInput, 'ListPartitions');
  const { tenantId, connectionId, syncId } = item;
  const output = (partitions: string[]): PartitionsOutput => ({ tenantId, connectionId, syncId, type: item.type, mode: item.mode, forceSweep: item.forceSweep, partitions, cursor: null, slice: 0 });

  const opened = await openRun(item, options, rt, settings);
  if (opened.stopped) return output([]);
  const task = taskContext(opened, item, WHOLE_CONNECTION, options, rt, settings);
  const listed = opened.connector.partitions ? await opened.connector.partitions(task.ctx) : [WHOLE_CONNECTION];
  const { partitions, reason } = capPartitions(listed, settings.maxPartitions);
  if (reason) {
    task.ctx.warn(reason);
    // The partitions left out were not synced: their items must not look stale to the sweep.
    task.ctx.markIncomplete('*', 'not every partition was synced this pass');
  }
  const partitioned = !(partitions.length === 1 && partitions[0] === WHOLE_CONNECTION);
  await new SyncRunStore(rt.table).update(tenantId, syncId, {
    partitions: { total: partitions.length, done: 0, failed: 0 },
    // A partitioned run's progress counts partitions; a run of one partition shows the connector's own.
    ...(partitioned ? { progress: { phase: `syncing ${partitions.length} partitions`, done: 0, total: partitions.length } } : {}),
  });
  await finishTask(task, item, seenScope(WHOLE_CONNECTION, 'list'), rt, settings, { progress: 'none', partition: WHOLE_CONNECTION, partitionDone: false });
  task.ctx.logger.info('sync partitions listed', { partitions: partitions.length, capped: reason !== undefined });
  return output(partitions);
}
