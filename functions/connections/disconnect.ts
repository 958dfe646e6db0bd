/**
 * Disconnect: "removes synced data from OpenTrace but does not affect your external service".
 * The connection is marked `disconnecting` first (it leaves the schedule and the API at once),
 * then its graph contribution, sync state, secret and record are removed in that order, so a
 * retried disconnect picks up where a failed one stopped.
 */
import { ConnectionStore, type Connection } from '#platform/connections.ts';
import { NotFoundError } from '#platform/errors.ts';
import { logger } from '#platform/observability.ts';
import type { Runtime } from '#platform/runtime.ts';
import { SyncStateStore } from '#platform/sync-state.ts';
import { GraphStore } from '#graph/store.ts';
import { toView, type ConnectionView } from './lifecycle.ts';

export async function markDisconnecting(runtime: Runtime, tenantId: string, connectionId: string): Promise<Connection> {
  const connections = new ConnectionStore(runtime.table);
  const marked = await connections.update(tenantId, connectionId, (connection) => {
    if (connection.status === 'disconnecting') return undefined;
    delete connection.nextSyncAt;
    return { ...connection, status: 'disconnecting', updatedAt: runtime.now().toISOString() };
  });
  if (!marked) throw new NotFoundError(`Connection ${connectionId} does not exist.`);
  return marked;
}

/** Removes everything OpenTrace holds for the connection. Idempotent. */
export async function removeConnectionData(runtime: Runtime, connection: Connection): Promise<{ nodes: number; edges: number }> {
  const removed = await new GraphStore(runtime.table).removeContribution(connection.tenantId, connection.id);
  await new SyncStateStore(runtime.table).deleteAll(connection.tenantId, connection.id);
  if (connection.secretName) await runtime.secrets.delete(connection.tenantId, connection.secretName);
  await new ConnectionStore(runtime.table).delete(connection.tenantId, connection.id);
  logger.info('connection removed', { connectionId: connection.id, ...removed });
  return removed;
}

export async function disconnect(runtime: Runtime, tenantId: string, connectionId: string): Promise<ConnectionView> {
  const marked = await markDisconnecting(runtime, tenantId, connectionId);
  await removeConnectionData(runtime, marked);
  return toView(marked);
}
