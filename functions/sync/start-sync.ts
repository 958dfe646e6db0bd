/**
 * POST /v1/connections/{id}/sync: opens the run right away (lease + queued SyncRun) so the API
 * answers 202 with the sync, or 409 while another sync of the connection holds the lease; then
 * starts the state machine with the run "preplanned", which the Plan task hands on as it is.
 */
import { findConnector } from '#connectors/registry.ts';
import { ConnectionStore } from '#platform/connections.ts';
import { ConflictError, NotFoundError, ValidationError } from '#platform/errors.ts';
import { runtime, type Runtime } from '#platform/runtime.ts';
import { SyncRunStore, type SyncMode, type SyncRun, type SyncTrigger } from '#platform/sync-runs.ts';
import { executionName, syncLauncher, type SyncLauncher } from './launcher.ts';
import { openRun } from './open-run.ts';
import { decideMode } from './schedule.ts';
import { syncSettings, type SyncSettings } from './settings.ts';
import { releaseSyncLease } from './sync-lease.ts';

export interface SyncRequest {
  tenantId: string;
  connectionId: string;
  mode?: SyncMode;
  trigger?: SyncTrigger;
  forceSweep?: boolean;
}

export async function requestSync(
  request: SyncRequest,
  launcher: SyncLauncher = syncLauncher(),
  rt: Runtime = runtime(),
  settings: SyncSettings = syncSettings(),
): Promise<SyncRun> {
  const { tenantId, connectionId } = request;
  const connection = await new ConnectionStore(rt.table).get(tenantId, connectionId, true);
  if (!connection || connection.status === 'disconnecting') throw new NotFoundError(`Connection ${connectionId} does not exist.`);
  if (connection.paused) throw new ConflictError(`Connection ${connectionId} is paused; resume it (PATCH {"paused": false}) to sync it.`);
  if (!findConnector(connection.type)?.sync) {
    throw new ValidationError(`The ${connection.type} integration has nothing to sync: its data is read live.`, [{ path: 'connectionId', message: 'integration without sync' }]);
  }

  const mode = request.mode ?? decideMode(connection, settings.fullSyncEvery);
  const opened = await openRun(rt, connection, { mode, trigger: request.trigger ?? 'api', leaseMs: settings.leaseMs });
  if (!opened.opened) {
    throw new ConflictError(`A sync of connection ${connectionId} is already running${opened.holder?.startsWith('sync_') ? ` (${opened.holder})` : ''}; wait for it to finish.`);
  }
  const { run } = opened;
  try {
    await launcher.start(
      { preplanned: [{ tenantId, connectionId, syncId: run.id }], trigger: run.trigger, ...(request.forceSweep ? { forceSweep: true } : {}) },
      executionName(run.id),
    );
  } catch (error) {
    const failed = { status: 'failed' as const, finishedAt: rt.now().toISOString(), error: { code: 'launch-failed', message: 'The sync could not be started; try again.' } };
    await new SyncRunStore(rt.table).update(tenantId, run.id, failed);
    await releaseSyncLease(rt, tenantId, connectionId, run.id);
    settings.logger.error('sync launch failed', { tenantId, connectionId, syncId: run.id, errorName: (error as Error).name });
    throw error;
  }
  return run;
}
