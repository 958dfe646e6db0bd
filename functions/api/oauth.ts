/**
 * OAuth connect: POST /v1/integrations/{type}/authorize, GET /v1/oauth/{type}/callback (public:
 * the single-use state authenticates it) and PUT /v1/integrations/gitlab/instances. The flow is
 * functions/oauth/flow.ts; this file is the HTTP edge only.
 */
import { findConnector } from '#connectors/registry.ts';
import { ValidationError } from '#platform/errors.ts';
import { apiHandler, json, parseWith, requireTenant, type ApiRequest, type Operations } from '#platform/http.ts';
import { runtime } from '#platform/runtime.ts';
import { completeCallback, registerInstance, requireOAuthProvider, startAuthorization } from '../oauth/flow.ts';
import { authorizeBody, integrationTypeParams, oauthCallbackQuery, oauthInstanceBody } from './schemas.ts';

/**
 * The public base URL of this API, for the redirect URI the providers call back: OPENTRACE_API_URL
 * (set it in the cloud: it must match the callback URL registered with each provider), else the
 * request's own scheme and Host (the local stack: http://127.0.0.1:3000).
 */
export function apiBaseUrl(request: ApiRequest, env: NodeJS.ProcessEnv = process.env): string {
  if (env.OPENTRACE_API_URL) return env.OPENTRACE_API_URL.replace(/\/+$/, '');
  const host = request.headers.host ?? '';
  if (!/^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$/.test(host)) {
    throw new ValidationError('The Host header is missing or malformed.', [{ path: 'headers.host', message: 'a host name and optional port' }]);
  }
  const proto = (request.headers['x-forwarded-proto'] ?? 'https').split(',')[0]!.trim().toLowerCase();
  return `${proto === 'http' ? 'http' : 'https'}://${host}`;
}

const isIntegration = (type: string) => findConnector(type) !== undefined;

/** Callback answers carry the code's outcome: never cached, never leaked through a Referer. */
const CALLBACK_HEADERS = { 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' };

export const operations: Operations = {
  'POST /v1/integrations/{type}/authorize': async (request) => {
    const tenantId = requireTenant(request);
    const { type } = parseWith(integrationTypeParams, request.params, 'params');
    const provider = requireOAuthProvider(type, isIntegration);
    const body = parseWith(authorizeBody, request.body ?? {}, 'body');
    return json(200, await startAuthorization(runtime(), tenantId, provider, body, apiBaseUrl(request)), { 'cache-control': 'no-store' });
  },
  'GET /v1/oauth/{type}/callback': async (request) => {
    const { type } = parseWith(integrationTypeParams, request.params, 'params');
    const provider = requireOAuthProvider(type, isIntegration);
    const query = parseWith(oauthCallbackQuery, request.query, 'query') as Record<string, string>;
    const outcome = await completeCallback(runtime(), provider, query);
    if (outcome.kind === 'redirect') return { status: 302, headers: { ...CALLBACK_HEADERS, location: outcome.location } };
    return json(200, { connection: outcome.connection, checks: outcome.checks }, CALLBACK_HEADERS);
  },
  'PUT /v1/integrations/gitlab/instances': async (request) => {
    const tenantId = requireTenant(request);
    const body = parseWith(oauthInstanceBody, request.body, 'body');
    return json(200, await registerInstance(runtime(), tenantId, requireOAuthProvider('gitlab'), body, apiBaseUrl(request)));
  },
};

export const handler = apiHandler(operations);
