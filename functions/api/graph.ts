/** The knowledge graph, read-only: nodes, one node, its edges, a bounded traversal, counts. */
import { GraphStore } from '#graph/store.ts';
import { NotFoundError } from '#platform/errors.ts';
import { apiHandler, json, parseWith, requireTenant, type Operations } from '#platform/http.ts';
import { runtime } from '#platform/runtime.ts';
import { edgesQuery, graphNodesQuery, nodeIdParams, traverseBody } from './schemas.ts';

const graph = () => new GraphStore(runtime().table);

export const operations: Operations = {
  'GET /v1/graph/nodes': async (request) => {
    const tenantId = requireTenant(request);
    const query = parseWith(graphNodesQuery, request.query, 'query');
    const page = await graph().listNodes(tenantId, {
      ...(query.type ? { type: query.type } : {}),
      ...(query.q ? { prefix: query.q } : {}),
      ...(query.source ? { source: query.source } : {}),
      ...(query.limit ? { limit: query.limit } : {}),
      ...(query.nextToken ? { nextToken: query.nextToken } : {}),
    });
    return json(200, { items: page.items, nextToken: page.nextToken ?? null });
  },
  'GET /v1/graph/nodes/{nodeId}': async (request) => {
    const tenantId = requireTenant(request);
    const { nodeId } = parseWith(nodeIdParams, request.params, 'params');
    const node = await graph().getNode(tenantId, nodeId);
    if (!node) throw new NotFoundError(`Node ${nodeId} is not in the graph.`);
    return json(200, node);
  },
  'GET /v1/graph/nodes/{nodeId}/edges': async (request) => {
    const tenantId = requireTenant(request);
    const { nodeId } = parseWith(nodeIdParams, request.params, 'params');
    const query = parseWith(edgesQuery, request.query, 'query');
    const items = await graph().edges(tenantId, nodeId, { direction: query.direction, ...(query.type ? { type: query.type } : {}) });
    return json(200, { items });
  },
  'POST /v1/graph/traverse': async (request) => {
    const tenantId = requireTenant(request);
    const body = parseWith(traverseBody, request.body, 'body');
    return json(200, await graph().traverse(tenantId, body));
  },
  'GET /v1/graph/stats': async (request) => {
    const tenantId = requireTenant(request);
    return json(200, await graph().stats(tenantId));
  },
};

export const handler = apiHandler(operations);
