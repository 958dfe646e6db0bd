/**
 * Finalize: the end of a run whose partitions all said done (or stopped at a slice boundary).
 * Sweeps after a complete full pass, over the union of what every partition saw; records the run
 * as succeeded with its stats, updates the connection (last sync, next due time,
 * full/incremental counter) and releases the lease. A run one of whose partitions failed
 * (RecordPartitionFailure noted it) is recorded failed instead, with that reason, and nothing is
 * swept: the other partitions' items are written, none deleted.
 * Running it twice is harmless: a second run finds the run finished and only releases the lease.
 */
import { ConnectionStore } from '#platform/connections.ts';
import { runtime, type Runtime } from '#platform/runtime.ts';
import { SyncRunStore, type SyncRun } from '#platform/sync-runs.ts';
import { LeaseLostError, SyncTaskError } from './errors.ts';
import { finalizeInputSchema, parseTaskInput, WHOLE_CONNECTION, type StopReason } from './payloads.ts';
import { markRunFailed } from './record-failure.ts';
import { nextSyncAt } from './schedule.ts';
import { syncSettings, type SyncSettings } from './settings.ts';
import { releaseSyncLease, renewSyncLease } from './sync-lease.ts';
import { sweepStale, type SweepResult } from './sweep.ts';

export interface FinalizeOutput {
  tenantId: string;
  connectionId: string;
  syncId: string;
  status: 'succeeded' | 'failed';
}

const MAX_MESSAGE = 1000;

/** The run's error when partitions failed: one partition's own reason, or how many failed and why. */
export function partitionFailureError(run: Pick<SyncRun, 'partitions' | 'partitionFailures'>): { code: string; message: string } {
  const failed = run.partitions?.failed ?? 0;
  const total = Math.max(run.partitions?.total ?? 0, failed);
  const failures = run.partitionFailures ?? [];
  const first = failures[0];
  if (first && failed === 1 && total <= 1 && first.partition === WHOLE_CONNECTION) return { code: first.code, message: first.message };
  const reasons = failures.map((failure) => `${failure.partition}: ${failure.message}`).join(' | ');
  const more = failed > failures.length ? ` (and ${failed - failures.length} more)` : '';
  let message = `${failed} of ${total} partitions failed, so nothing was swept (the others were synced). ${reasons}${more}`;
  if (message.length > MAX_MESSAGE) message = `${message.slice(0, MAX_MESSAGE - 1)}…`;
  return { code: first?.code ?? 'partition-failed', message };
}

const STOP_WARNINGS: Record<StopReason, string> = {
  paused: 'Paused: the sync stopped after its current slice; nothing was swept. Resume the connection to sync again.',
  disconnecting: 'The connection is being disconnected: the sync stopped after its current slice.',
  removed: 'The connection was removed: the sync stopped after its current slice.',
};

export async function finalizeSync(rawInput: unknown, rt: Runtime = runtime(), settings: SyncSettings = syncSettings()): Promise<FinalizeOutput> {
  const input = parseTaskInput(finalizeInputSchema, rawInput, 'Finalize');
  const { tenantId, connectionId, syncId } = input;
  const output: FinalizeOutput = { tenantId, connectionId, syncId, status: 'succeeded' };
  const runs = new SyncRunStore(rt.table);
  const run = await runs.get(tenantId, syncId);
  if (!run) throw new SyncTaskError('RunMissingError', `Sync run ${syncId} does not exist.`);
  if (run.status === 'succeeded') {
    await releaseSyncLease(rt, tenantId, connectionId, syncId);
    return output;
  }
  if (run.status === 'failed') throw new LeaseLostError(`Sync run ${syncId} was already marked failed (${run.error?.code ?? 'unknown'}); not finalizing it.`);
  if (!(await renewSyncLease(rt, tenantId, connectionId, syncId, settings.leaseMs))) {
    throw new LeaseLostError('Another sync of this connection took over before this one finished; nothing was swept.');
  }
  if ((run.partitions?.failed ?? 0) > 0) {
    await markRunFailed(rt, settings, { tenantId, connectionId, syncId }, partitionFailureError(run));
    return { ...output, status: 'failed' };
  }

  const stopped: StopReason | null = input.stopped ?? run.stopped ?? null;
  const warnings = [...(run.warnings ?? [])];
  let sweep: SweepResult | undefined;
  if (stopped) {
    warnings.push(STOP_WARNINGS[stopped]);
  } else if (input.mode === 'full') {
    await runs.update(tenantId, syncId, { progress: { ...run.progress, phase: 'sweeping' } });
    sweep = await sweepStale(rt.table, tenantId, connectionId, syncId, { threshold: settings.sweepThreshold, force: input.forceSweep, now: rt.now });
    for (const warning of sweep.warnings) if (!warnings.includes(warning)) warnings.push(warning);
  }

  const finishedAt = rt.now().toISOString();
  const stats = { ...run.stats };
  if (sweep) {
    stats.nodesDeleted = (stats.nodesDeleted ?? 0) + sweep.nodesDeleted;
    stats.edgesDeleted = (stats.edgesDeleted ?? 0) + sweep.edgesDeleted;
  }
  await runs.update(tenantId, syncId, {
    status: 'succeeded',
    finishedAt,
    progress: { ...run.progress, phase: stopped ? `stopped (${stopped})` : 'done' },
    stats,
    ...(warnings.length > 0 ? { warnings } : {}),
  });

  if (stopped !== 'disconnecting' && stopped !== 'removed') {
    const completedPass = stopped === null;
    await new ConnectionStore(rt.table).update(tenantId, connectionId, (connection) => {
      if (connection.status === 'disconnecting') return undefined;
      const next = { ...connection, lastSync: { id: syncId, status: 'succeeded', finishedAt }, updatedAt: finishedAt };
      delete next.lastError;
      if (next.status === 'error') next.status = 'connected';
      next.nextSyncAt = nextSyncAt(connection, new Date(run.startedAt), settings.defaultIntervalMinutes);
      // A held-back sweep leaves the counter alone: the next pass is full again and re-checks the upstream.
      if (completedPass && input.mode === 'incremental') next.incrementalsSinceFull = (connection.incrementalsSinceFull ?? 0) + 1;
      if (completedPass && input.mode === 'full' && !sweep?.heldBack) next.incrementalsSinceFull = 0;
      return next;
    });
  }
  await releaseSyncLease(rt, tenantId, connectionId, syncId);
  settings.logger.info('sync finished', {
    tenantId,
    connectionId,
    syncId,
    mode: input.mode,
    stopped,
    swept: sweep ? { total: sweep.total, stale: sweep.stale, heldBack: sweep.heldBack } : null,
  });
  return output;
}
