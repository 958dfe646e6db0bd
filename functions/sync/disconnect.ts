/**
 * Disconnect: DELETE /v1/connections/{id} marks the connection `disconnecting` (which also takes
 * it off the schedule index) and starts the state machine's removal branch, which calls
 * `removeConnectionStep` until it says done:
 *   1. wait for a running sync to stop (it stops at its next slice boundary when it sees
 *      `disconnecting`), then hold the connection's sync lease so no new one starts;
 *   2. remove the connection's graph contribution page by page (items other connections also
 *      contributed stay, with their provenance), handing back before the Lambda's deadline;
 *   3. forget its sync state and its runs, delete its secret, delete the record.
 * Every step is idempotent, so a retried or restarted removal continues where the last stopped;
 * a second DELETE starts the removal again.
 */
import { GraphStore } from '#graph/store.ts';
import { ConnectionStore, type Connection } from '#platform/connections.ts';
import { NotFoundError } from '#platform/errors.ts';
import { runtime, type Runtime } from '#platform/runtime.ts';
import { SyncRunStore } from '#platform/sync-runs.ts';
import { SyncStateStore } from '#platform/sync-state.ts';
import { executionName, syncLauncher, type SyncLauncher } from './launcher.ts';
import { parseTaskInput, removalInputSchema, type RemovalOutput } from './payloads.ts';
import { syncSettings, type SyncSettings } from './settings.ts';
import { DISCONNECT_OWNER, releaseSyncLease, takeSyncLease } from './sync-lease.ts';

/** How long the removal waits before looking again whether a running sync has stopped. */
export const RUNNING_SYNC_POLL_SECONDS = 15;

export async function disconnectConnection(
  tenantId: string,
  connectionId: string,
  launcher: SyncLauncher = syncLauncher(),
  rt: Runtime = runtime(),
): Promise<Connection> {
  const now = rt.now();
  const connection = await new ConnectionStore(rt.table).update(tenantId, connectionId, (current) =>
    current.status === 'disconnecting' ? undefined : { ...current, status: 'disconnecting', updatedAt: now.toISOString() },
  );
  if (!connection) throw new NotFoundError(`Connection ${connectionId} does not exist.`);
  await launcher.start({ disconnect: { tenantId, connectionId } }, executionName('disconnect', connectionId, String(now.getTime())));
  return connection;
}

export interface RemovalOptions {
  /** Milliseconds left before handing back (net of any margin); the next invocation continues. */
  remainingMs: () => number;
}

export async function removeConnectionStep(
  rawInput: unknown,
  options: RemovalOptions,
  rt: Runtime = runtime(),
  settings: SyncSettings = syncSettings(),
): Promise<RemovalOutput> {
  const input = parseTaskInput(removalInputSchema, rawInput, 'RemoveConnection');
  const { tenantId, connectionId } = input.disconnect;
  const answer = (done: boolean, waitSeconds = 0): RemovalOutput => ({ disconnect: input.disconnect, done, waitSeconds });
  const connections = new ConnectionStore(rt.table);
  const connection = await connections.get(tenantId, connectionId, true);
  if (!connection) return answer(true);
  if (connection.status !== 'disconnecting') {
    settings.logger.warn('removal skipped: the connection is not disconnecting', { tenantId, connectionId });
    return answer(true);
  }

  const lease = await takeSyncLease(rt, tenantId, connectionId, DISCONNECT_OWNER, settings.leaseMs);
  if (!lease.taken) {
    settings.logger.info('removal waits for a running sync to stop', { tenantId, connectionId, holder: lease.holder });
    return answer(false, RUNNING_SYNC_POLL_SECONDS);
  }

  const graph = new GraphStore(rt.table);
  let removed = 0;
  for await (const page of graph.contributions(tenantId, connectionId)) {
    await graph.deleteContributions(page);
    removed += page.length;
    if (options.remainingMs() <= 0) {
      settings.logger.info('removal continues in the next step', { tenantId, connectionId, removed });
      return answer(false);
    }
  }
  await new SyncStateStore(rt.table).deleteAll(tenantId, connectionId);
  await new SyncRunStore(rt.table).deleteAllOf(tenantId, connectionId);
  if (connection.secretName) await rt.secrets.delete(tenantId, connection.secretName);
  await connections.delete(tenantId, connectionId);
  await releaseSyncLease(rt, tenantId, connectionId, DISCONNECT_OWNER);
  settings.logger.info('connection removed', { tenantId, connectionId, removed });
  return answer(true);
}
