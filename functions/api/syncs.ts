/** Syncs: start one (POST /v1/connections/{id}/sync), list a connection's, get one with its progress. */
import { ConnectionStore } from '#platform/connections.ts';
import { NotFoundError } from '#platform/errors.ts';
import { apiHandler, json, parseWith, requireTenant, type Operations } from '#platform/http.ts';
import { runtime } from '#platform/runtime.ts';
import { SyncRunStore } from '#platform/sync-runs.ts';
import { requestSync } from '#sync/start-sync.ts';
import { toSyncView } from '#sync/view.ts';
import { connectionIdParams, listQuery, startSyncBody, syncIdParams } from './schemas.ts';

export const operations: Operations = {
  'POST /v1/connections/{id}/sync': async (request) => {
    const tenantId = requireTenant(request);
    const { id } = parseWith(connectionIdParams, request.params, 'params');
    const body = parseWith(startSyncBody, request.body ?? {}, 'body');
    const run = await requestSync({ tenantId, connectionId: id, trigger: 'api', ...(body.mode ? { mode: body.mode } : {}) });
    return json(202, toSyncView(run), { location: `/v1/syncs/${run.id}` });
  },
  'GET /v1/connections/{id}/syncs': async (request) => {
    const tenantId = requireTenant(request);
    const { id } = parseWith(connectionIdParams, request.params, 'params');
    const query = parseWith(listQuery, request.query, 'query');
    const connection = await new ConnectionStore(runtime().table).get(tenantId, id);
    if (!connection || connection.status === 'disconnecting') throw new NotFoundError(`Connection ${id} does not exist.`);
    const page = await new SyncRunStore(runtime().table).listByConnection(tenantId, id, query);
    return json(200, { items: page.items.map(toSyncView), nextToken: page.nextToken ?? null });
  },
  'GET /v1/syncs/{syncId}': async (request) => {
    const tenantId = requireTenant(request);
    const { syncId } = parseWith(syncIdParams, request.params, 'params');
    const run = await new SyncRunStore(runtime().table).get(tenantId, syncId);
    if (!run) throw new NotFoundError(`Sync ${syncId} does not exist.`);
    return json(200, toSyncView(run));
  },
};

export const handler = apiHandler(operations);
