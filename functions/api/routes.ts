/**
 * The HTTP API's route table: the one list both the CDK stack (lib/api.ts: one API Gateway
 * method per route, one Lambda per `fn`) and the local dev server (local/dev-server.ts) read.
 * `fn` names a handler module `functions/api/<fn>.ts` exporting `handler`.
 */
export interface RouteDefinition {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** API Gateway resource path; `{name}` is a path parameter. */
  path: string;
  fn: string;
  /** Routes without auth: the health check and the OAuth callbacks. */
  public?: boolean;
}

export const ROUTES: readonly RouteDefinition[] = [
  { method: 'GET', path: '/v1/health', fn: 'health', public: true },
];

export const API_FUNCTIONS = [...new Set(ROUTES.map((route) => route.fn))];
