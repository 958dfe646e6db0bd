/**
 * RecordFailure: where every error of one connection's run ends (the Catch of its item
 * processor), so a failing integration never fails its siblings. Marks the run failed with a
 * clear `{ code, message }`, shows the error on the connection, schedules its next attempt at
 * the usual interval, and releases the lease. Nothing is swept: a failed pass deletes nothing.
 *
 * RecordPartitionFailure (the same Lambda, with `partition` in the input) is the Catch of one
 * partition's slice loop: it only notes the failure on the run, so the other partitions go on;
 * Finalize then fails the run with that reason instead of sweeping.
 */
import { ConnectionStore } from '#platform/connections.ts';
import { runtime, type Runtime } from '#platform/runtime.ts';
import { SyncRunStore } from '#platform/sync-runs.ts';
import { failureFromTaskError } from './errors.ts';
import { parseTaskInput, recordFailureInputSchema } from './payloads.ts';
import { nextSyncAt } from './schedule.ts';
import { syncSettings, type SyncSettings } from './settings.ts';
import { releaseSyncLease } from './sync-lease.ts';

/** Partition failures a run keeps with their reasons (all are counted). */
export const MAX_PARTITION_FAILURES_KEPT = 20;

export interface RecordFailureOutput {
  tenantId: string;
  connectionId: string;
  syncId: string;
  status: 'failed';
  error: { code: string; message: string };
  partition?: string;
}

/**
 * Marks a run failed (unless it already ended: a run finished or marked by another sync keeps its
 * first outcome), shows the error on the connection, schedules the next attempt, releases the lease.
 */
export async function markRunFailed(
  rt: Runtime,
  settings: SyncSettings,
  ids: { tenantId: string; connectionId: string; syncId: string },
  error: { code: string; message: string },
): Promise<void> {
  const { tenantId, connectionId, syncId } = ids;
  const finishedAt = rt.now().toISOString();
  const runs = new SyncRunStore(rt.table);
  const run = await runs.get(tenantId, syncId);
  if (run && (run.status === 'queued' || run.status === 'running')) {
    await runs.update(tenantId, syncId, { status: 'failed', finishedAt, progress: { ...run.progress, phase: 'failed' }, error });
    await new ConnectionStore(rt.table).update(tenantId, connectionId, (connection) => {
      if (connection.status === 'disconnecting') return undefined;
      // Never overwrite the outcome of a later run (sync ids sort by creation time).
      if (connection.lastSync && connection.lastSync.id > syncId) return undefined;
      return {
        ...connection,
        status: 'error',
        lastError: `Sync ${syncId} failed: ${error.message}`,
        lastSync: { id: syncId, status: 'failed', finishedAt },
        nextSyncAt: nextSyncAt(connection, new Date(run.startedAt), settings.defaultIntervalMinutes),
        updatedAt: finishedAt,
      };
    });
  }
  await releaseSyncLease(rt, tenantId, connectionId, syncId);
  settings.logger.warn('sync failed', { tenantId, connectionId, syncId, code: error.code, message: error.message });
}

export async function recordFailure(rawInput: unknown, rt: Runtime = runtime(), settings: SyncSettings = syncSettings()): Promise<RecordFailureOutput> {
  const input = parseTaskInput(recordFailureInputSchema, rawInput, 'RecordFailure');
  const { tenantId, connectionId, syncId, partition } = input;
  const error = failureFromTaskError(input.error);
  if (partition !== undefined) {
    // One partition failed: its siblings go on; Finalize fails the run with this reason and sweeps nothing.
    const noted = await new SyncRunStore(rt.table).recordPartitionFailure(tenantId, syncId, { partition, ...error }, MAX_PARTITION_FAILURES_KEPT);
    settings.logger.warn('sync partition failed', { tenantId, connectionId, syncId, partition, code: error.code, message: error.message, noted });
    return { tenantId, connectionId, syncId, status: 'failed', error, partition };
  }
  await markRunFailed(rt, settings, { tenantId, connectionId, syncId }, error);
  return { tenantId, connectionId, syncId, status: 'failed', error };
}
