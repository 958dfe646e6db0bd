/**
 * Finalize: the end of a run whose connector said done (or that stopped at a slice boundary).
 * Sweeps after a complete full pass, records the run as succeeded with its stats, updates the
 * connection (last sync, next due time, full/incremental counter) and releases the lease.
 * Running it twice is harmless: a second run finds the run finished and only releases the lease.
 */
import { ConnectionStore } from '#platform/connections.ts';
import { runtime, type Runtime } from '#platform/runtime.ts';
import { SyncRunStore } from '#platform/sync-runs.ts';
import { LeaseLostError, SyncTaskError } from './errors.ts';
import { finalizeInputSchema, parseTaskInput, type StopReason } from './payloads.ts';
import { nextSyncAt } from './schedule.ts';
import { syncSettings, type SyncSettings } from './settings.ts';
import { releaseSyncLease, renewSyncLease } from './sync-lease.ts';
import { sweepStale, type SweepResult } from './sweep.ts';

export interface FinalizeOutput {
  tenantId: string;
  connectionId: string;
  syncId: string;
  status: 'succeeded';
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

  const warnings = [...(run.warnings ?? [])];
  let sweep: SweepResult | undefined;
  if (input.stopped) {
    warnings.push(STOP_WARNINGS[input.stopped]);
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
    progress: { ...run.progress, phase: input.stopped ? `stopped (${input.stopped})` : 'done' },
    stats,
    ...(warnings.length > 0 ? { warnings } : {}),
  });

  if (input.stopped !== 'disconnecting' && input.stopped !== 'removed') {
    const completedPass = input.stopped === null;
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
    stopped: input.stopped,
    swept: sweep ? { total: sweep.total, stale: sweep.stale, heldBack: sweep.heldBack } : null,
  });
  return output;
}
