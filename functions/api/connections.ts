/** Connection CRUD: POST/GET /v1/connections, GET/PATCH/DELETE /v1/connections/{id}, POST …/test. */
import { ConnectionLifecycle } from '#connections/lifecycle.ts';
import { apiHandler, json, parseWith, requireTenant, type Operations } from '#platform/http.ts';
import { runtime } from '#platform/runtime.ts';
import { connectionIdParams, createConnectionBody, createConnectionQuery, listConnectionsQuery, patchConnectionBody } from './schemas.ts';
import { disconnectConnection } from '#sync/disconnect.ts';
import { toView } from '#connections/lifecycle.ts';

const lifecycle = () => new ConnectionLifecycle(runtime());

export const operations: Operations = {
  'POST /v1/connections': async (request) => {
    const tenantId = requireTenant(request);
    const { verify } = parseWith(createConnectionQuery, request.query, 'query');
    const body = parseWith(createConnectionBody, request.body, 'body');
    const connection = await lifecycle().create(tenantId, body, { verify: verify !== 'false' });
    return json(201, connection, { location: `/v1/connections/${connection.id}` });
  },
  'GET /v1/connections': async (request) => {
    const tenantId = requireTenant(request);
    const query = parseWith(listConnectionsQuery, request.query, 'query');
    return json(200, await lifecycle().list(tenantId, query));
  },
  'GET /v1/connections/{id}': async (request) => {
    const tenantId = requireTenant(request);
    const { id } = parseWith(connectionIdParams, request.params, 'params');
    return json(200, await lifecycle().get(tenantId, id));
  },
  'PATCH /v1/connections/{id}': async (request) => {
    const tenantId = requireTenant(request);
    const { id } = parseWith(connectionIdParams, request.params, 'params');
    const patch = parseWith(patchConnectionBody, request.body, 'body');
    return json(200, await lifecycle().update(tenantId, id, patch));
  },
  'POST /v1/connections/{id}/test': async (request) => {
    const tenantId = requireTenant(request);
    const { id } = parseWith(connectionIdParams, request.params, 'params');
    return json(200, await lifecycle().test(tenantId, id));
  },
  'DELETE /v1/connections/{id}': async (request) => {
    const tenantId = requireTenant(request);
    const { id } = parseWith(connectionIdParams, request.params, 'params');
    // Marks it disconnecting (gone from every route at once) and starts the removal in the background.
    return json(202, toView(await disconnectConnection(tenantId, id)));
  },
};

export const handler = apiHandler(operations);
