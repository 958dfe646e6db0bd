/**
 * The client side of the protocol against a real OAuth 2 server (oauth2-mock-server): the shared
 * OAuthClient's authorization URL, code exchange with PKCE S256 (the server checks the verifier
 * against the challenge) and refresh; then the whole connect flow and a refresh under the lease,
 * with the server standing in as a GitLab instance's OAuth endpoints.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { OAuth2Server } from 'oauth2-mock-server';
import { safeFetch, type OutboundPolicy } from '#platform/outbound.ts';
import { OAuthClient, OAuthTokenError, type OAuthClientConfig } from '../../functions/oauth/client.ts';
import { createPkce, s256Challenge } from '../../functions/oauth/pkce.ts';
import { OAuthTokenManager } from '../../functions/oauth/tokens.ts';
import { startTestApi, type TestApi } from '../support/api.ts';
import { oauthEnv, roundTrip } from './support.ts';

const CLIENT_ID = 'opentrace-test-client';
const CLIENT_SECRET = 'real-server-client-secret-0123456789';

let server: OAuth2Server;
let issuer: string;
/** Refresh tokens already used: the server answers them invalid_grant (rotation, as GitLab). */
const usedRefreshTokens = new Set<string>();
const tokenRequests: Record<string, string>[] = [];

beforeAll(async () => {
  server = new OAuth2Server(undefined, undefined, { endpoints: { authorize: '/oauth/authorize', token: '/oauth/token' } });
  await server.issuer.keys.generate('RS256');
  await server.start(0, '127.0.0.1');
  issuer = server.issuer.url!;
  // Two tokens signed in the same second would be identical JWTs: give each its own id.
  server.service.on('beforeTokenSigning', (token: { payload: Record<string, unknown> }) => {
    token.payload.jti = randomUUID();
  });
  server.service.on('beforeResponse', (response: { body: Record<string, unknown>; statusCode: number }, request: { body: Record<string, string> }) => {
    tokenRequests.push({ ...request.body });
    if (request.body.grant_type !== 'refresh_token') return;
    if (usedRefreshTokens.has(request.body.refresh_token!)) {
      response.statusCode = 400;
      response.body = { error: 'invalid_grant', error_description: 'The refresh token was already used.' };
      return;
    }
    usedRefreshTokens.add(request.body.refresh_token!);
  });
});
afterAll(async () => {
  await server.stop();
});

/** The loopback server is a private address: allowed explicitly, as the local stack does. */
const loopback: OutboundPolicy = { allowPrivateNetworks: true, connectTimeoutMs: 2000, totalTimeoutMs: 5000, maxRedirects: 0 };
const newClient = (config: OAuthClientConfig) => new OAuthClient(config, (url, init) => safeFetch(url, init, loopback));

function clientConfig(overrides: Partial<OAuthClientConfig> = {}): OAuthClientConfig {
  return {
    product: 'Test IdP',
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    authorizeUrl: `${issuer}/oauth/authorize`,
    tokenUrl: `${issuer}/oauth/token`,
    clientAuth: 'body',
    pkce: true,
    scopes: ['read_api', 'openid'],
    ...overrides,
  };
}

/** The browser's part: open the authorization URL, read the code and state from the redirect. */
async function authorize(url: string): Promise<URL> {
  const response = await fetch(url, { redirect: 'manual' });
  await response.text();
  expect(response.status).toBe(302);
  return new URL(response.headers.get('location')!);
}

describe('OAuthClient against a real OAuth 2 server', () => {
  it('authorization code + PKCE S256, then refresh with rotation', async () => {
    const client = newClient(clientConfig());
    const pkce = createPkce();
    expect(pkce.challenge).toBe(s256Challenge(pkce.verifier));
    const redirectUri = 'http://127.0.0.1:9/callback';
    const url = new URL(client.authorizationUrl({ state: 'state-123', redirectUri, codeChallenge: pkce.challenge }));
    expect(Object.fromEntries(url.searchParams)).toMatchObject({ client_id: CLIENT_ID, redirect_uri: redirectUri, response_type: 'code', state: 'state-123', scope: 'read_api openid', code_challenge_method: 'S256' });

    const back = await authorize(url.toString());
    expect(back.searchParams.get('state')).toBe('state-123');
    const tokens = await client.exchangeCode({ code: back.searchParams.get('code')!, redirectUri, codeVerifier: pkce.verifier });
    expect(tokens.accessToken.split('.')).toHaveLength(3); // a signed JWT
    expect(tokens.refreshToken).toBeTruthy();
    expect(tokens.expiresInSeconds).toBe(3600);
    expect(tokens.tokenType).toBe('Bearer');
    expect(tokenRequests.at(-1)).toMatchObject({ grant_type: 'authorization_code', client_id: CLIENT_ID, client_secret: CLIENT_SECRET, code_verifier: pkce.verifier, redirect_uri: redirectUri });

    const refreshed = await client.refresh({ refreshToken: tokens.refreshToken! });
    expect(refreshed.accessToken).not.toBe(tokens.accessToken);
    expect(refreshed.refreshToken).not.toBe(tokens.refreshToken);
    // The used refresh token is dead: classified as invalid_grant (the "reconnect needed" path).
    const reused = await client.refresh({ refreshToken: tokens.refreshToken! }).catch((error: unknown) => error);
    expect(reused).toBeInstanceOf(OAuthTokenError);
    expect(reused).toMatchObject({ kind: 'invalid_grant', providerCode: 'invalid_grant', status: 400 });
  });

  it('the server refuses a code_verifier that does not match the challenge', async () => {
    const client = newClient(clientConfig());
    const pkce = createPkce();
    const redirectUri = 'http://127.0.0.1:9/callback';
    const back = await authorize(client.authorizationUrl({ state: 's', redirectUri, codeChallenge: pkce.challenge }));
    const wrong = await client.exchangeCode({ code: back.searchParams.get('code')!, redirectUri, codeVerifier: createPkce().verifier }).catch((error: unknown) => error);
    expect(wrong).toBeInstanceOf(OAuthTokenError);
    expect((wrong as OAuthTokenError).message).toMatch(/invalid_request: code_verifier provided does not match code_challenge/);
    expect((wrong as Error).message).not.toContain(CLIENT_SECRET);
  });

  it('authenticates with HTTP Basic when configured (Slack\'s way)', async () => {
    const client = newClient(clientConfig({ clientAuth: 'basic', pkce: false }));
    const redirectUri = 'http://127.0.0.1:9/callback';
    const back = await authorize(client.authorizationUrl({ state: 's', redirectUri }));
    const tokens = await client.exchangeCode({ code: back.searchParams.get('code')!, redirectUri });
    expect(tokens.accessToken).toBeTruthy();
    expect(tokenRequests.at(-1)).not.toHaveProperty('client_secret');
  });
});

describe('the connect flow and the refresher against a real OAuth 2 server', () => {
  let api: TestApi;
  let restoreEnv: () => void;

  beforeAll(async () => {
    // The server plays a GitLab instance's OAuth endpoints (/oauth/authorize, /oauth/token).
    restoreEnv = oauthEnv({ GITLAB_URL: issuer, GITLAB_CLIENT_ID: CLIENT_ID, GITLAB_CLIENT_SECRET: CLIENT_SECRET });
    api = await startTestApi();
  });
  afterAll(async () => {
    await api.close();
    restoreEnv();
  });

  it('authorize → real server → callback exchanges the code with the PKCE verifier; the refresher rotates the token', async () => {
    const token = await api.tokenFor('acme');
    const { authorize: started, callback } = await roundTrip(api, token, 'gitlab');
    const challenge = new URL(started.body.authorizeUrl).searchParams.get('code_challenge');
    const exchange = tokenRequests.at(-1)!;
    expect(exchange.grant_type).toBe('authorization_code');
    expect(s256Challenge(exchange.code_verifier!)).toBe(challenge);

    // The connection exists with the tokens from the real server; its GitLab API check fails (this server has no /api/v4).
    expect(callback.status).toBe(200);
    const id = callback.body.connection.id;
    expect(callback.body.connection).toMatchObject({ type: 'gitlab', status: 'error' });
    const first = api.secrets.values.get(`acme/${id}-v1`)!;
    expect(String(first.accessToken).split('.')).toHaveLength(3);

    const later = { table: api.table, secrets: api.secrets, now: () => new Date(Date.now() + 2 * 3600_000) };
    const fresh = await new OAuthTokenManager(later, { inFlight: new Map() }).getFreshAccessToken({ tenantId: 'acme', id });
    expect(fresh).not.toBe(first.accessToken);
    expect(tokenRequests.at(-1)).toMatchObject({ grant_type: 'refresh_token', refresh_token: first.refreshToken });
    expect(api.secrets.values.get(`acme/${id}-v2`)?.accessToken).toBe(fresh);
  });
});
