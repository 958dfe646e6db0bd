/**
 * Opening a run: take the connection's sync lease under a fresh sync id, then write the queued
 * SyncRun record. Shared by the plan task and the API's POST …/sync, so both refuse a second
 * concurrent sync the same way.
 */
import type { Connection } from '#platform/connections.ts';
import { newId } from '#platform/ids.ts';
import type { Runtime } from '#platform/runtime.ts';
import { emptyStats, SyncRunStore, type SyncMode, type SyncRun, type SyncTrigger } from '#platform/sync-runs.ts';
import { releaseSyncLease, takeSyncLease } from './sync-lease.ts';

export type OpenRunOutcome = { opened: true; run: SyncRun } | { opened: false; holder: string | undefined };

export async function openRun(
  rt: Runtime,
  connection: Connection,
  options: { mode: SyncMode; trigger: SyncTrigger; leaseMs: number },
): Promise<OpenRunOutcome> {
  const now = rt.now();
  const syncId = newId('sync', now.getTime());
  const lease = await takeSyncLease(rt, connection.tenantId, connection.id, syncId, options.leaseMs);
  if (!lease.taken) return { opened: false, holder: lease.holder };
  const run: SyncRun = {
    id: syncId,
    tenantId: connection.tenantId,
    connectionId: connection.id,
    status: 'queued',
    trigger: options.trigger,
    mode: options.mode,
    startedAt: now.toISOString(),
    progress: { phase: 'queued', done: 0 },
    stats: emptyStats(),
  };
  try {
    await new SyncRunStore(rt.table).create(run);
  } catch (error) {
    await releaseSyncLease(rt, connection.tenantId, connection.id, syncId);
    throw error;
  }
  return { opened: true, run };
}
