/**
 * RecordFailure: where every error of one connection's run ends (the Catch of its item
 * processor), so a failing integration never fails its siblings. Marks the run failed with a
 * clear `{ code, message }`, shows the error on the connection, schedules its next attempt at
 * the usual interval, and releases the lease. Nothing is swept: a failed pass deletes nothing.
 */
import { ConnectionStore } from '#platform/connections.ts';
import { runtime, type Runtime } from '#platform/runtime.ts';
import { SyncRunStore } from '#platform/sync-runs.ts';
import { failureFromTaskError } from './errors.ts';
import { parseTaskInput, recordFailureInputSchema } from './payloads.ts';
import { nextSyncAt } from './schedule.ts';
import { syncSettings, type SyncSettings } from './settings.ts';
import { releaseSyncLease } from './sync-lease.ts';

export interface RecordFailureOutput {
  tenantId: string;
  connectionId: string;
  syncId: string;
  status: 'failed';
  error: { code: string; message: string };
}

export async function recordFailure(rawInput: unknown, rt: Runtime = runtime(), settings: SyncSettings = syncSettings()): Promise<RecordFailureOutput> {
  const input = parseTaskInput(recordFailureInputSchema, rawInput, 'RecordFailure');
  const { tenantId, connectionId, syncId } = input;
  const error = failureFromTaskError(input.error);
  const finishedAt = rt.now().toISOString();
  const runs = new SyncRunStore(rt.table);
  const run = await runs.get(tenantId, syncId);
  // A run already finished or marked by another sync (abandoned, lease lost) keeps its first outcome.
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
  return { tenantId, connectionId, syncId, status: 'failed', error };
}
