import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { DEFAULT_GITLAB_CLIENT_ID, DEFAULT_GITLAB_CLIENT_SECRET, startGitLabFake, type GitLabFake } from '../fakes/gitlab.ts';
import { startTestApi, type TestApi } from '../support/api.ts';
import { rememberSecret } from '../support/secrets.ts';
import { callCallback, oauthEnv, RETURN_URL, returnParams, roundTrip, shiftClock, startFlow, storedSecretStrings, tenantRecordsText } from './support.ts';

const SELF_HOSTED_CLIENT_ID = 'self-hosted-application-id-9876543210';
const SELF_HOSTED_SECRET = 'gloas-self-hosted-secret-abcdef0123456789';

let api: TestApi;
let gitlab: GitLabFake;
/** A self-managed instance on another base URL (another port, under /gitlab), with its own OAuth application. */
let selfHosted: GitLabFake;
let acme: string;
let restoreEnv: () => void;

beforeAll(async () => {
  gitlab = await startGitLabFake();
  selfHosted = await startGitLabFake({ pathPrefix: '/gitlab', clientId: SELF_HOSTED_CLIENT_ID, clientSecret: SELF_HOSTED_SECRET, username: 'rsmith', version: '16.11.2' });
  rememberSecret(SELF_HOSTED_SECRET);
  restoreEnv = oauthEnv({ GITLAB_URL: gitlab.url, GITLAB_CLIENT_ID: DEFAULT_GITLAB_CLIENT_ID, GITLAB_CLIENT_SECRET: DEFAULT_GITLAB_CLIENT_SECRET });
  api = await startTestApi();
  acme = await api.tokenFor('acme');
});
afterAll(async () => {
  await api.close();
  await gitlab.close();
  await selfHosted.close();
  restoreEnv();
});
afterEach(() => {
  shiftClock(0);
});

describe('GitLab.com', () => {
  it('round trip with PKCE: authorize → GitLab → callback → connected with the readable projects', async () => {
    const { authorize, callback } = await roundTrip(api, acme, 'gitlab', { returnUrl: RETURN_URL });
    const url = new URL(authorize.body.authorizeUrl);
    expect(`${url.origin}${url.pathname}`).toBe(`${gitlab.url}/oauth/authorize`);
    expect(url.searchParams.get('scope')).toBe('read_api');
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('response_type')).toBe('code');

    const { status, connectionId } = returnParams(callback);
    expect(status).toBe('connected');
    const connection = await api.call('GET', `/v1/connections/${connectionId}`, { token: acme });
    expect(connection.body).toMatchObject({
      type: 'gitlab',
      name: `GitLab jdoe@${new URL(gitlab.url).host}`,
      status: 'connected',
      config: { baseUrl: gitlab.url, username: 'jdoe', gitlabVersion: '17.5.1-ee', projects: ['acme/payments', 'acme/checkout', 'acme/platform/deploy'], projectCount: 3 },
    });
    const stored = api.secrets.values.get(`acme/${connectionId}-v1`)!;
    expect(Object.keys(stored).sort()).toEqual(['accessToken', 'expiresAt', 'refreshToken']);
    expect(gitlab.oauth.isValid(String(stored.accessToken))).toBe(true);
    // Not in any response or table record either (connection, OAuth state, lease): only the secret's name is there.
    const records = await tenantRecordsText(api, 'acme');
    for (const secret of storedSecretStrings(api)) {
      expect(connection.text).not.toContain(secret);
      expect(records).not.toContain(secret);
    }
    // The exchange carried the PKCE verifier; the fake checked S256(verifier) = challenge.
    const exchange = gitlab.requests.filter((r) => r.path === '/oauth/token').at(-1)!;
    expect(new URLSearchParams(exchange.body).get('code_verifier')).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('follows GitLab pagination (X-Next-Page / Link) through every page of projects', async () => {
    for (let i = 0; i < 130; i++) gitlab.model.projects.push({ id: 5000 + i, namespace: 'acme/many', path: `svc-${i}`, name: `svc-${i}`, visibility: 'private', defaultBranch: 'main', members: ['jdoe'] });
    try {
      const { callback } = await roundTrip(api, acme, 'gitlab');
      expect(callback.body.connection.config.projects).toHaveLength(133);
      expect(callback.body.connection.config.projectCount).toBe(133);
    } finally {
      gitlab.model.projects.splice(-130);
    }
  });

  it('PATCH: projects within what the user can read; baseUrl is read-only', async () => {
    const { callback } = await roundTrip(api, acme, 'gitlab');
    const id = callback.body.connection.id;
    const narrowed = await api.call('PATCH', `/v1/connections/${id}`, { token: acme, body: { config: { projects: ['acme/payments'] } } });
    expect(narrowed.status).toBe(200);
    expect(narrowed.body.config).toMatchObject({ projects: ['acme/payments'], baseUrl: gitlab.url });

    const unreadable = await api.call('PATCH', `/v1/connections/${id}`, { token: acme, body: { config: { projects: ['acme/hr-tools'] } } });
    expect(unreadable.status).toBe(422);
    expect(unreadable.body.detail).toMatch(/jdoe cannot read acme\/hr-tools/);

    const moved = await api.call('PATCH', `/v1/connections/${id}`, { token: acme, body: { config: { baseUrl: 'https://gitlab.example.com' } } });
    expect(moved.status).toBe(400);
    expect(moved.body.errors).toEqual([{ path: 'body.config.baseUrl', message: 'read-only' }]);
    // Sending the same value is not a change.
    expect((await api.call('PATCH', `/v1/connections/${id}`, { token: acme, body: { config: { baseUrl: gitlab.url, projects: ['acme/checkout'] } } })).status).toBe(200);
  });

  it('refreshes the 2 h token (rotating refresh token) before it is used after expiry', async () => {
    const { callback } = await roundTrip(api, acme, 'gitlab');
    const id = callback.body.connection.id;
    const before = gitlab.oauth.stats.refreshes;
    const first = api.secrets.values.get(`acme/${id}-v1`)!;
    shiftClock(3 * 3600_000);
    const test = await api.call('POST', `/v1/connections/${id}/test`, { token: acme });
    expect(test.body.ok).toBe(true);
    expect(gitlab.oauth.stats.refreshes).toBe(before + 1);
    const second = api.secrets.values.get(`acme/${id}-v2`)!;
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect(second.expiresAt).toBeGreaterThan(Date.now() + 3 * 3600_000);
    // The token the check used is the new one.
    expect(gitlab.requests.filter((r) => r.path === '/api/v4/user').at(-1)?.headers.authorization).toBe(`Bearer ${second.accessToken}`);
  });
});

describe('self-managed GitLab on another base URL', () => {
  it('registers the instance (probe, secret to the secret store) and connects end to end against it', async () => {
    const register = await api.call('PUT', '/v1/integrations/gitlab/instances', {
      token: acme,
      body: { baseUrl: `${selfHosted.baseUrl}/`, clientId: SELF_HOSTED_CLIENT_ID, clientSecret: SELF_HOSTED_SECRET },
    });
    expect(register.status).toBe(200);
    expect(register.body).toMatchObject({ provider: 'gitlab', baseUrl: selfHosted.baseUrl, clientId: SELF_HOSTED_CLIENT_ID, callbackUrl: `${api.url}/v1/oauth/gitlab/callback` });
    expect(register.body.check).toMatch(/is a GitLab instance/);
    expect(register.text).not.toContain(SELF_HOSTED_SECRET);
    const secretName = `oauthapp-gitlab-${new URL(selfHosted.url).host.replace(':', '_')}`;
    expect(api.secrets.values.get(`acme/${secretName}`)).toEqual({ clientSecret: SELF_HOSTED_SECRET });

    const gitlabComExchanges = gitlab.oauth.stats.exchanges;
    const gitlabComRefreshes = gitlab.oauth.stats.refreshes;
    const { authorize, callback } = await roundTrip(api, acme, 'gitlab', { baseUrl: selfHosted.baseUrl, returnUrl: RETURN_URL });
    const url = new URL(authorize.body.authorizeUrl);
    expect(`${url.origin}${url.pathname}`).toBe(`${selfHosted.baseUrl}/oauth/authorize`);
    expect(url.searchParams.get('client_id')).toBe(SELF_HOSTED_CLIENT_ID);
    const { status, connectionId } = returnParams(callback);
    expect(status).toBe('connected');
    expect(gitlab.oauth.stats.exchanges).toBe(gitlabComExchanges);
    expect(selfHosted.oauth.stats.exchanges).toBe(1);

    const connection = await api.call('GET', `/v1/connections/${connectionId}`, { token: acme });
    expect(connection.body.config).toMatchObject({ baseUrl: selfHosted.baseUrl, username: 'rsmith', gitlabVersion: '16.11.2', projects: ['acme/payments', 'acme/hr-tools'] });

    // Refresh goes to the instance's own token endpoint, with its own app.
    shiftClock(2 * 3600_000);
    expect((await api.call('POST', `/v1/connections/${connectionId}/test`, { token: acme })).body.ok).toBe(true);
    expect(selfHosted.oauth.stats.refreshes).toBe(1);
    expect(gitlab.oauth.stats.refreshes).toBe(gitlabComRefreshes);
  });

  it('is per tenant: another tenant cannot use acme\'s instance', async () => {
    const globex = await api.tokenFor('globex');
    const answer = await api.call('POST', '/v1/integrations/gitlab/authorize', { token: globex, body: { baseUrl: selfHosted.baseUrl } });
    expect(answer.status).toBe(400);
    expect(answer.body.errors[0].path).toBe('body.baseUrl');
    expect(answer.body.detail).toMatch(/register its OAuth application first with PUT \/v1\/integrations\/gitlab\/instances/);
  });

  it('refuses what is not a GitLab instance, or not allowed, before storing anything', async () => {
    const secrets = api.secrets.values.size;
    const notGitLab = await api.call('PUT', '/v1/integrations/gitlab/instances', { token: acme, body: { baseUrl: `${selfHosted.url}/elsewhere`, clientId: 'x-client', clientSecret: 'x-secret-value' } });
    expect(notGitLab.status).toBe(422);
    expect(notGitLab.body.detail).toMatch(/does not look like GitLab/);
    const metadata = await api.call('PUT', '/v1/integrations/gitlab/instances', { token: acme, body: { baseUrl: 'http://169.254.169.254/', clientId: 'x-client', clientSecret: 'x-secret-value' } });
    expect(metadata.status).toBe(400);
    expect(metadata.body.errors[0].path).toBe('body.baseUrl');
    const gitlabCom = await api.call('PUT', '/v1/integrations/gitlab/instances', { token: acme, body: { baseUrl: gitlab.url, clientId: 'x-client', clientSecret: 'x-secret-value' } });
    expect(gitlabCom.status).toBe(400);
    const invalid = await api.call('PUT', '/v1/integrations/gitlab/instances', { token: acme, body: { baseUrl: 'ftp://gitlab.example.com', clientId: '', clientSecret: 'has spaces in it' } });
    expect(invalid.status).toBe(400);
    expect(invalid.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(['body.baseUrl', 'body.clientId', 'body.clientSecret']);
    expect(api.secrets.values.size).toBe(secrets);
  });

  it('a wrong client secret fails the exchange: redirected with invalid_client, nothing stored', async () => {
    await api.call('PUT', '/v1/integrations/gitlab/instances', { token: acme, body: { baseUrl: selfHosted.baseUrl, clientId: SELF_HOSTED_CLIENT_ID, clientSecret: 'gloas-mistyped-secret-000' } });
    const count = api.secrets.values.size;
    const { providerRedirect } = await startFlow(api, acme, 'gitlab', { baseUrl: selfHosted.baseUrl, returnUrl: RETURN_URL });
    expect(returnParams(await callCallback(api, providerRedirect))).toMatchObject({ status: 'error', error: 'invalid_client' });
    expect(api.secrets.values.size).toBe(count);
    await api.call('PUT', '/v1/integrations/gitlab/instances', { token: acme, body: { baseUrl: selfHosted.baseUrl, clientId: SELF_HOSTED_CLIENT_ID, clientSecret: SELF_HOSTED_SECRET } });
  });
});
