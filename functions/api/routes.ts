/**
 * The HTTP API's route table: the one list the CDK stack (lib/api.ts: one API Gateway method per
 * route, one Lambda per `fn`), the local dev server (local/dev-server.ts) and the OpenAPI
 * document (functions/api/openapi.ts) read. `fn` names a handler module `functions/api/<fn>.ts`
 * exporting `handler` and `operations` keyed "<METHOD> <path>".
 */
import type { z } from 'zod';
import * as schemas from './schemas.ts';

export interface RouteDefinition {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** API Gateway resource path; `{name}` is a path parameter. */
  path: string;
  fn: string;
  summary: string;
  /** Routes without auth: the health check, the OpenAPI document and the OAuth callbacks. */
  public?: boolean;
  query?: z.ZodType;
  body?: z.ZodType;
  /** Success status and what it returns, for the OpenAPI document. */
  success: { status: number; description: string };
}

export const ROUTES: readonly RouteDefinition[] = [
  { method: 'GET', path: '/v1/health', fn: 'health', public: true, summary: 'Is the API up?', success: { status: 200, description: '{ status: "ok" }' } },
  { method: 'GET', path: '/v1/openapi.json', fn: 'openapi', public: true, summary: 'This API as OpenAPI 3.1', success: { status: 200, description: 'The OpenAPI document' } },

  { method: 'GET', path: '/v1/integrations', fn: 'catalog', summary: 'The integrations that can be connected', success: { status: 200, description: '{ items: [{ type, title, auth, provides, configSchema }] }' } },
  { method: 'GET', path: '/v1/integrations/{type}', fn: 'catalog', summary: 'One integration, with setup material for this tenant (aws-eks: IAM and trust policies)', success: { status: 200, description: 'One catalog entry' } },

  { method: 'POST', path: '/v1/integrations/{type}/authorize', fn: 'oauth', summary: 'Start connecting an OAuth integration (github, gitlab, slack): the provider URL to send the browser to', body: schemas.authorizeBody, success: { status: 200, description: '{ authorizeUrl, expiresAt }' } },
  { method: 'GET', path: '/v1/oauth/{type}/callback', fn: 'oauth', public: true, summary: "The provider's redirect back: exchanges the code, stores the tokens, creates and verifies the connection", query: schemas.oauthCallbackQuery, success: { status: 302, description: 'To returnUrl?status=connected&connectionId=… (or status=error&error=…); without a returnUrl, 200 { connection, checks }' } },
  { method: 'PUT', path: '/v1/integrations/gitlab/instances', fn: 'oauth', summary: "Register a self-managed GitLab instance's OAuth application (the secret goes to Secrets Manager)", body: schemas.oauthInstanceBody, success: { status: 200, description: '{ provider, baseUrl, clientId, callbackUrl, check, createdAt, updatedAt }' } },

  { method: 'POST', path: '/v1/connections', fn: 'connections', summary: 'Connect an integration with a form (verified live first)', query: schemas.createConnectionQuery, body: schemas.createConnectionBody, success: { status: 201, description: 'The connection' } },
  { method: 'GET', path: '/v1/connections', fn: 'connections', summary: 'List connections', query: schemas.listConnectionsQuery, success: { status: 200, description: '{ items, nextToken }' } },
  { method: 'GET', path: '/v1/connections/{id}', fn: 'connections', summary: 'One connection, with its last sync and graph stats', success: { status: 200, description: 'The connection' } },
  { method: 'PATCH', path: '/v1/connections/{id}', fn: 'connections', summary: 'Rename, reconfigure, rotate credentials, pause or resume (changes verified first)', body: schemas.patchConnectionBody, success: { status: 200, description: 'The connection' } },
  { method: 'POST', path: '/v1/connections/{id}/test', fn: 'connections', summary: 'Run the live check with the stored values', success: { status: 200, description: '{ ok, checks: [{ name, ok, detail }] }' } },
  { method: 'DELETE', path: '/v1/connections/{id}', fn: 'connections', summary: 'Disconnect: removes the secret and the synced data; the external service is untouched', success: { status: 202, description: 'The connection, status disconnecting' } },

  { method: 'POST', path: '/v1/connections/{id}/sync', fn: 'syncs', summary: 'Start a sync now (409 while one runs for this connection)', body: schemas.startSyncBody, success: { status: 202, description: 'The sync, queued' } },
  { method: 'GET', path: '/v1/connections/{id}/syncs', fn: 'syncs', summary: "A connection's syncs, newest first", query: schemas.listQuery, success: { status: 200, description: '{ items, nextToken }' } },
  { method: 'GET', path: '/v1/syncs/{syncId}', fn: 'syncs', summary: 'One sync: status, progress, stats, error', success: { status: 200, description: 'The sync' } },

  { method: 'GET', path: '/v1/graph/nodes', fn: 'graph', summary: 'Nodes by type, name prefix or contributing connection', query: schemas.graphNodesQuery, success: { status: 200, description: '{ items, nextToken }' } },
  { method: 'GET', path: '/v1/graph/nodes/{nodeId}', fn: 'graph', summary: 'One node (URL-encode the id)', success: { status: 200, description: '{ id, type, name, props, sources, updatedAt }' } },
  { method: 'GET', path: '/v1/graph/nodes/{nodeId}/edges', fn: 'graph', summary: "A node's edges", query: schemas.edgesQuery, success: { status: 200, description: '{ items: [{ from, type, to, props, sources }] }' } },
  { method: 'POST', path: '/v1/graph/traverse', fn: 'graph', summary: 'Bounded breadth-first walk from a node', body: schemas.traverseBody, success: { status: 200, description: '{ nodes, edges, truncated }' } },
  { method: 'GET', path: '/v1/graph/stats', fn: 'graph', summary: 'Counts by node type and edge type', success: { status: 200, description: '{ nodes: { type: n }, edges: { type: n } }' } },
];

export const API_FUNCTIONS = [...new Set(ROUTES.map((route) => route.fn))];
