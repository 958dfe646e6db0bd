/**
 * The OAuth connect flow every OAuth integration shares (api.md "Connect"):
 *
 *   authorize  POST /v1/integrations/{type}/authorize: checks `returnUrl` against the allowed
 *              origins, picks the app (OpenTrace's, or a registered self-hosted instance's),
 *              stores a state (256-bit nonce, single use, 10 min, bound to the tenant, the type,
 *              the return URL, the PKCE verifier and the redirect URI) and answers the provider's
 *              authorization URL.
 *   callback   GET /v1/oauth/{type}/callback: consumes the state (unknown, expired, reused or
 *              forged: 400, before anything else), then either the provider's error (redirected
 *              back, nothing stored) or the code: exchanged (with the PKCE verifier), the tokens
 *              stored in the secret store only, the connection created and verified (through the
 *              connection lifecycle), and the browser sent back to `returnUrl?status=connected&
 *              connectionId=…` (or `status=error&error=…`); without a returnUrl, 200 { connection }.
 *
 * Provider specifics come from the descriptors (functions/oauth/provider.ts).
 */
import { ConnectionLifecycle, type ConnectionView } from '#connections/lifecycle.ts';
import type { VerifyCheck } from '#connectors/types.ts';
import { describeFetchError } from '#connectors/http-checks.ts';
import { AppError, NotFoundError, UpstreamFailedError, UpstreamRejectedError, ValidationError } from '#platform/errors.ts';
import { logger } from '#platform/observability.ts';
import { OAuthStateStore } from '#platform/oauth-states.ts';
import { checkUrl, OutboundBlockedError, policyFromEnv, safeFetch } from '#platform/outbound.ts';
import type { Runtime } from '#platform/runtime.ts';
import { isDefaultBaseUrl, resolveApp } from './apps.ts';
import { OAuthClient, OAuthTokenError } from './client.ts';
import { credentialsFromTokens } from './credentials.ts';
import { instanceHost, instanceSecretName, normalizeBaseUrl, OAuthInstanceStore } from './instances.ts';
import { createPkce } from './pkce.ts';
import type { OAuthProvider } from './provider.ts';
import { oauthProvider, oauthProviders } from './providers.ts';
import { allowedReturnOrigins, checkReturnUrl, returnUrlWith } from './return-url.ts';

export class InvalidOAuthStateError extends AppError {
  constructor() {
    super(400, 'invalid-oauth-state', 'Invalid OAuth state', 'The OAuth state is unknown, expired (it lasts 10 minutes) or already used. Start again with POST /v1/integrations/{type}/authorize.', [
      { path: 'query.state', message: 'unknown, expired or already used' },
    ]);
  }
}

export class OAuthDeniedError extends AppError {
  constructor(product: string, code: string) {
    super(400, 'oauth-access-denied', 'Authorization not granted', `${product} did not authorize OpenTrace (${code}); nothing was stored. Start again with POST /v1/integrations/{type}/authorize to connect.`, [
      { path: 'query.error', message: code },
    ]);
  }
}

/** The provider with this type, or 404 (unknown type) / 400 (a form-connected integration). */
export function requireOAuthProvider(type: string, known: (type: string) => boolean = () => false): OAuthProvider {
  const provider = oauthProvider(type);
  if (provider) return provider;
  const oauthTypes = oauthProviders().map((p) => p.type).join(', ');
  if (known(type)) {
    throw new ValidationError(`${type} does not connect through OAuth: use POST /v1/connections. OAuth integrations: ${oauthTypes}.`, [{ path: 'params.type', message: `must be one of: ${oauthTypes}` }]);
  }
  throw new NotFoundError(`There is no OAuth integration "${type}". OAuth integrations: ${oauthTypes}.`);
}

export function callbackUrl(apiBaseUrl: string, type: string): string {
  return `${apiBaseUrl.replace(/\/+$/, '')}/v1/oauth/${type}/callback`;
}

/** A base URL the tenant gave: a 400 on `path` when the outbound policy refuses it. */
function checkedBaseUrl(raw: string, path: string, env: NodeJS.ProcessEnv): string {
  try {
    checkUrl(raw, policyFromEnv(env));
  } catch (error) {
    if (error instanceof OutboundBlockedError) throw new ValidationError(`The base URL is not allowed: ${error.message}.`, [{ path, message: error.message }]);
    throw error;
  }
  return normalizeBaseUrl(raw);
}

export interface AuthorizeInput {
  returnUrl?: string;
  baseUrl?: string;
  channels?: string[];
  name?: string;
}

export async function startAuthorization(
  rt: Runtime,
  tenantId: string,
  provider: OAuthProvider,
  input: AuthorizeInput,
  apiBaseUrl: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ authorizeUrl: string; expiresAt: string }> {
  if (input.baseUrl !== undefined && !provider.selfHosted) {
    throw new ValidationError(`${provider.product} has no self-hosted instances: leave baseUrl out.`, [{ path: 'body.baseUrl', message: `not used by ${provider.type}` }]);
  }
  if (input.channels !== undefined && !provider.channelSelection) {
    throw new ValidationError(`${provider.product} has no channels: leave channels out.`, [{ path: 'body.channels', message: `not used by ${provider.type}` }]);
  }
  const returnUrl = input.returnUrl === undefined ? undefined : checkReturnUrl(input.returnUrl, allowedReturnOrigins(env));
  const baseUrl = input.baseUrl === undefined ? undefined : checkedBaseUrl(input.baseUrl, 'body.baseUrl', env);
  const app = await resolveApp(rt, tenantId, provider, baseUrl, env);
  const client = new OAuthClient(provider.clientConfig(app));
  const redirectUri = callbackUrl(apiBaseUrl, provider.type);
  const pkce = client.config.pkce ? createPkce() : undefined;
  const extra: Record<string, unknown> = { redirectUri };
  if (provider.selfHosted) extra.baseUrl = app.baseUrl;
  if (input.channels?.length) extra.channels = [...new Set(input.channels)];
  if (input.name) extra.name = input.name;
  const { state, expiresAt } = await new OAuthStateStore(rt.table, rt.now).create(tenantId, {
    type: provider.type,
    ...(returnUrl ? { returnUrl } : {}),
    ...(pkce ? { codeVerifier: pkce.verifier } : {}),
    extra,
  });
  logger.info('oauth authorization started', { type: provider.type, tenantId, selfHosted: app.source === 'instance' });
  return { authorizeUrl: client.authorizationUrl({ state, redirectUri, ...(pkce ? { codeChallenge: pkce.challenge } : {}) }), expiresAt };
}

export type CallbackOutcome = { kind: 'redirect'; location: string } | { kind: 'connected'; connection: ConnectionView; checks: VerifyCheck[] };

/** A provider's `error` parameter, safe to echo: a short token of letters, digits, `_.-`. */
function errorCode(value: string): string {
  return /^[A-Za-z0-9_.-]{1,64}$/.test(value) ? value : 'provider_error';
}

/** The error code a redirect carries for a failure after the state was accepted. */
function redirectCode(error: unknown): string {
  if (error instanceof OAuthTokenError) {
    return { invalid_grant: 'invalid_grant', invalid_client: 'invalid_client', rejected: 'exchange_failed', unavailable: 'temporarily_unavailable' }[error.kind];
  }
  if (error instanceof OutboundBlockedError) return 'invalid_request';
  return 'server_error';
}

/** The same failure as an API error, for a flow without a returnUrl. */
function apiError(provider: OAuthProvider, error: unknown): unknown {
  if (error instanceof OAuthTokenError) {
    if (error.kind === 'unavailable') return new UpstreamFailedError(error.message);
    if (error.kind === 'invalid_client') return new UpstreamFailedError(`${error.message} OpenTrace's ${provider.product} app is misconfigured; nothing was stored.`);
    return new UpstreamRejectedError(`${error.message} Nothing was stored; start again with POST /v1/integrations/${provider.type}/authorize.`);
  }
  if (error instanceof OutboundBlockedError) return new ValidationError(`The ${provider.product} URL is not allowed: ${error.message}.`);
  return error;
}

export async function completeCallback(rt: Runtime, provider: OAuthProvider, query: Record<string, string>, env: NodeJS.ProcessEnv = process.env): Promise<CallbackOutcome> {
  const consumed = query.state ? await new OAuthStateStore(rt.table, rt.now).consume(query.state, provider.type) : undefined;
  if (!consumed) throw new InvalidOAuthStateError();
  const { tenantId, returnUrl } = consumed;
  const back = (params: Record<string, string>): CallbackOutcome => ({ kind: 'redirect', location: returnUrlWith(returnUrl!, params) });

  if (query.error !== undefined || !query.code) {
    const code = query.error !== undefined ? errorCode(query.error) : 'invalid_request';
    logger.info('oauth authorization not granted', { type: provider.type, tenantId, error: code });
    if (returnUrl) return back({ status: 'error', error: code });
    if (query.error !== undefined) throw new OAuthDeniedError(provider.product, code);
    throw new ValidationError(`${provider.product} sent neither a code nor an error back. Start again with POST /v1/integrations/${provider.type}/authorize.`, [{ path: 'query.code', message: 'missing' }]);
  }

  try {
    const extra = consumed.extra ?? {};
    const redirectUri = typeof extra.redirectUri === 'string' ? extra.redirectUri : '';
    const app = await resolveApp(rt, tenantId, provider, typeof extra.baseUrl === 'string' ? extra.baseUrl : undefined, env);
    const client = new OAuthClient(provider.clientConfig(app));
    const tokens = await client.exchangeCode({ code: query.code, redirectUri, ...(consumed.codeVerifier ? { codeVerifier: consumed.codeVerifier } : {}) });
    const credentials = credentialsFromTokens(tokens, rt.now(), undefined, provider.extraCredentials?.(tokens) ?? {});
    const config = provider.initialConfig({ query, extra, tokens, app });
    const afterConnect = provider.afterConnect;
    const { connection, checks } = await new ConnectionLifecycle(rt).createFromOAuth(
      tenantId,
      { type: provider.type, ...(typeof extra.name === 'string' ? { name: extra.name } : {}), config, credentials },
      {
        defaultName: (verified) => provider.connectionName(verified),
        ...(afterConnect
          ? { afterVerify: (verified) => afterConnect({ tenantId, config: verified.config, credentials, fetch: (url, init) => safeFetch(url, init), logger }) }
          : {}),
      },
    );
    if (returnUrl) {
      return back(connection.status === 'connected' ? { status: 'connected', connectionId: connection.id } : { status: 'error', error: 'verification_failed', connectionId: connection.id });
    }
    return { kind: 'connected', connection, checks };
  } catch (error) {
    logger.warn('oauth callback failed', { type: provider.type, tenantId, errorName: (error as Error | null)?.name, kind: (error as OAuthTokenError | null)?.kind });
    if (returnUrl) return back({ status: 'error', error: redirectCode(error) });
    throw apiError(provider, error);
  }
}

export interface InstanceInput {
  baseUrl: string;
  clientId: string;
  clientSecret: string;
}

export interface InstanceView {
  provider: string;
  baseUrl: string;
  clientId: string;
  /** The redirect URI to register in the instance's OAuth application. */
  callbackUrl: string;
  check: string;
  createdAt: string;
  updatedAt: string;
}

/**
 * Registers (or updates) a tenant's self-hosted instance: the base URL through the outbound
 * policy and a live look (the provider's probe), the client secret to the secret store, the
 * record to the table. Re-registering a host replaces its app.
 */
export async function registerInstance(rt: Runtime, tenantId: string, provider: OAuthProvider, input: InstanceInput, apiBaseUrl: string, env: NodeJS.ProcessEnv = process.env): Promise<InstanceView> {
  if (!provider.selfHosted || !provider.probeInstance) throw new NotFoundError(`${provider.product} has no self-hosted instances.`);
  const baseUrl = checkedBaseUrl(input.baseUrl, 'body.baseUrl', env);
  if (isDefaultBaseUrl(provider, baseUrl, env)) {
    throw new ValidationError(`${baseUrl} uses OpenTrace's own ${provider.product} app: connect without registering it.`, [{ path: 'body.baseUrl', message: 'the default instance needs no registration' }]);
  }
  let check: string;
  try {
    check = (await provider.probeInstance(baseUrl, (url, init) => safeFetch(url, init))).detail;
  } catch (error) {
    if (error instanceof OutboundBlockedError) throw new ValidationError(`The base URL is not allowed: ${error.message}.`, [{ path: 'body.baseUrl', message: error.message }]);
    const detail = describeFetchError({ product: provider.product, origin: baseUrl }, error) ?? (error as Error).message;
    throw new UpstreamRejectedError(detail, [{ path: 'body.baseUrl', message: detail }]);
  }
  const host = instanceHost(baseUrl);
  const secretName = instanceSecretName(provider.type, host);
  const store = new OAuthInstanceStore(rt.table);
  const now = rt.now().toISOString();
  const existing = await store.get(tenantId, provider.type, host);
  await rt.secrets.put(tenantId, secretName, { clientSecret: input.clientSecret });
  const instance = { provider: provider.type, host, baseUrl, clientId: input.clientId, secretName, createdAt: existing?.createdAt ?? now, updatedAt: now };
  await store.put(tenantId, instance);
  logger.info('oauth instance registered', { type: provider.type, tenantId, host, replaced: existing !== undefined });
  return { provider: provider.type, baseUrl, clientId: input.clientId, callbackUrl: callbackUrl(apiBaseUrl, provider.type), check, createdAt: instance.createdAt, updatedAt: now };
}
