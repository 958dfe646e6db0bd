import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { addGitHubRepositories, DEFAULT_GITHUB_CLIENT_ID, DEFAULT_GITHUB_CLIENT_SECRET, startGitHubFake, type GitHubFake } from '../fakes/github.ts';
import { startTestApi, type TestApi } from '../support/api.ts';
import { oauthEnv, RETURN_URL, returnParams, roundTrip, shiftClock, storedSecretStrings, tenantRecordsText } from './support.ts';

let api: TestApi;
let github: GitHubFake;
let acme: string;
let restoreEnv: () => void;

beforeAll(async () => {
  github = await startGitHubFake();
  restoreEnv = oauthEnv({ GITHUB_URL: github.url, GITHUB_API_URL: github.url, GITHUB_CLIENT_ID: DEFAULT_GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET: DEFAULT_GITHUB_CLIENT_SECRET });
  api = await startTestApi();
  acme = await api.tokenFor('acme');
});
afterAll(async () => {
  await api.close();
  await github.close();
  restoreEnv();
});
afterEach(() => {
  shiftClock(0);
  github.set({ authorize: 'approve', installOnAuthorize: false, mode: 'normal' });
});

describe('GitHub: connect through the OpenTrace GitHub App', () => {
  it('round trip: authorize URL with PKCE → GitHub → callback → connected, tokens in the secret store only', async () => {
    const secretsBefore = api.secrets.values.size;
    const { authorize, providerRedirect, callback } = await roundTrip(api, acme, 'github', { returnUrl: RETURN_URL });

    const url = new URL(authorize.body.authorizeUrl);
    expect(`${url.origin}${url.pathname}`).toBe(`${github.url}/login/oauth/authorize`);
    expect(url.searchParams.get('client_id')).toBe(DEFAULT_GITHUB_CLIENT_ID);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(url.searchParams.get('state')).toMatch(/^acme\.[A-Za-z0-9_-]{43}$/);
    expect(url.searchParams.get('redirect_uri')).toBe(`${api.url}/v1/oauth/github/callback`);
    expect(Date.parse(authorize.body.expiresAt) - Date.now()).toBeGreaterThan(9 * 60_000);
    expect(providerRedirect.searchParams.get('code')).toBeTruthy();

    const params = returnParams(callback);
    expect(params).toMatchObject({ from: 'oauth', status: 'connected' });
    expect(callback.headers.get('cache-control')).toBe('no-store');
    const connection = await api.call('GET', `/v1/connections/${params.connectionId}`, { token: acme });
    expect(connection.body).toMatchObject({
      type: 'github',
      name: 'GitHub acme',
      status: 'connected',
      config: { installationId: 4242, account: { login: 'acme', type: 'Organization' }, login: 'octocat', repositories: ['acme/payments', 'acme/checkout', 'acme/infra'], repositoryCount: 3 },
    });

    // The tokens exist in the secret store and nowhere else (the suite fails on any stored secret in a response or log line).
    expect(api.secrets.values.size).toBe(secretsBefore + 1);
    const stored = api.secrets.values.get(`acme/${params.connectionId}-v1`)!;
    expect(stored.accessToken).toMatch(/^ghu_/);
    expect(stored.refreshToken).toMatch(/^ghr_/);
    expect(stored.expiresAt).toBeGreaterThan(Date.now() + 7.9 * 3600_000);
    expect(github.oauth.isValid(String(stored.accessToken))).toBe(true);
    // Not in any response or table record either (connection, OAuth state, lease): only the secret's name is there.
    const records = await tenantRecordsText(api, 'acme');
    for (const secret of storedSecretStrings(api)) {
      expect(connection.text).not.toContain(secret);
      expect(records).not.toContain(secret);
    }
    // The user token went to GitHub's API, nowhere else.
    expect(github.requests.filter((r) => r.path === '/user').at(-1)?.headers.authorization).toBe(`Bearer ${stored.accessToken}`);
  });

  it('answers 200 { connection } when the flow has no returnUrl', async () => {
    const { callback } = await roundTrip(api, acme, 'github', { name: 'Acme GitHub' });
    expect(callback.status).toBe(200);
    expect(callback.body.connection).toMatchObject({ name: 'Acme GitHub', status: 'connected', type: 'github' });
    expect(callback.body.checks.map((c: { name: string; ok: boolean }) => [c.name, c.ok])).toEqual([
      ['user', true],
      ['installation', true],
      ['repositories', true],
    ]);
  });

  it('records the installation GitHub names in the callback (installed during the flow)', async () => {
    github.model.installations.unshift({ id: 777, account: { id: 583231, login: 'octocat', type: 'User' }, repositorySelection: 'all', repositories: ['octocat/Hello-World'], users: ['octocat'] });
    github.set({ installOnAuthorize: true });
    try {
      const { providerRedirect, callback } = await roundTrip(api, acme, 'github');
      expect(providerRedirect.searchParams.get('installation_id')).toBe('777');
      expect(providerRedirect.searchParams.get('setup_action')).toBe('install');
      expect(callback.body.connection.config).toMatchObject({ installationId: 777, repositories: ['octocat/Hello-World'], repositorySelection: 'all' });

      // Without it, the first installation is taken and the others are named.
      github.set({ installOnAuthorize: false });
      const second = await roundTrip(api, acme, 'github');
      expect(second.callback.body.connection.config.installationId).toBe(777);
      expect(second.callback.body.checks[1].detail).toMatch(/also installed on acme/);
    } finally {
      github.model.installations.shift();
    }
  });

  it('follows Link pagination through every page of the installation repositories', async () => {
    const added = addGitHubRepositories(github.model, 4242, 150);
    try {
      const { callback } = await roundTrip(api, acme, 'github');
      expect(callback.body.connection.config.repositories).toHaveLength(153);
      expect(callback.body.connection.config.repositoryCount).toBe(153);
      const pages = github.requests.filter((r) => r.path === '/user/installations/4242/repositories').slice(-2);
      expect(pages.map((r) => r.query.get('page'))).toEqual([null, '2']);
    } finally {
      const installation = github.model.installations.find((i) => i.id === 4242)!;
      installation.repositories = installation.repositories.filter((name) => !added.includes(name));
    }
  });

  it('changes the repositories selection with PATCH within what the installation grants', async () => {
    const { callback } = await roundTrip(api, acme, 'github');
    const id = callback.body.connection.id;
    const narrowed = await api.call('PATCH', `/v1/connections/${id}`, { token: acme, body: { config: { repositories: ['acme/payments'] } } });
    expect(narrowed.status).toBe(200);
    expect(narrowed.body.config).toMatchObject({ installationId: 4242, repositories: ['acme/payments'] });

    const refused = await api.call('PATCH', `/v1/connections/${id}`, { token: acme, body: { config: { repositories: ['acme/payments', 'acme/secret-project'] } } });
    expect(refused.status).toBe(422);
    expect(refused.body.detail).toMatch(/does not grant acme\/secret-project/);
    expect((await api.call('GET', `/v1/connections/${id}`, { token: acme })).body.config.repositories).toEqual(['acme/payments']);

    const invalid = await api.call('PATCH', `/v1/connections/${id}`, { token: acme, body: { config: { repositories: ['not a repo'] } } });
    expect(invalid.status).toBe(400);
    const credentials = await api.call('PATCH', `/v1/connections/${id}`, { token: acme, body: { credentials: { accessToken: 'ghu_by_hand' } } });
    expect(credentials.status).toBe(400);
  });

  it('stores the connection with status error when the app is installed nowhere, and says where to install it', async () => {
    const saved = github.model.installations.splice(0);
    try {
      const { callback } = await roundTrip(api, acme, 'github', { returnUrl: RETURN_URL });
      const params = returnParams(callback);
      expect(params).toMatchObject({ status: 'error', error: 'verification_failed' });
      const connection = await api.call('GET', `/v1/connections/${params.connectionId}`, { token: acme });
      expect(connection.body.status).toBe('error');
      expect(connection.body.lastError).toContain(`${github.url}/apps/opentrace/installations/new`);

      // Installed afterwards: the test finds it and the connection recovers, without another OAuth round trip.
      github.model.installations.push(...saved);
      const test = await api.call('POST', `/v1/connections/${params.connectionId}/test`, { token: acme });
      expect(test.body.ok).toBe(true);
      expect((await api.call('GET', `/v1/connections/${params.connectionId}`, { token: acme })).body).toMatchObject({ status: 'connected' });
    } finally {
      if (github.model.installations.length === 0) github.model.installations.push(...saved);
    }
  });

  it('refreshes the 8 h user token before it expires, rotating the stored refresh token', async () => {
    const { callback } = await roundTrip(api, acme, 'github');
    const id = callback.body.connection.id;
    const first = api.secrets.values.get(`acme/${id}-v1`)!;
    const refreshesBefore = github.oauth.stats.refreshes;

    shiftClock(8 * 3600_000 - 60_000); // one minute before expiry: inside the refresh margin
    const test = await api.call('POST', `/v1/connections/${id}/test`, { token: acme });
    expect(test.body.ok).toBe(true);
    expect(github.oauth.stats.refreshes).toBe(refreshesBefore + 1);
    expect(api.secrets.values.has(`acme/${id}-v1`)).toBe(false);
    const second = api.secrets.values.get(`acme/${id}-v2`)!;
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect(github.oauth.isValid(String(second.accessToken))).toBe(true);
    expect(github.oauth.isValid(String(first.accessToken))).toBe(false);

    // Fresh now: the next test uses it without another refresh.
    await api.call('POST', `/v1/connections/${id}/test`, { token: acme });
    expect(github.oauth.stats.refreshes).toBe(refreshesBefore + 1);
  });

  it('keeps POST /v1/connections for form integrations only', async () => {
    const answer = await api.call('POST', '/v1/connections', { token: acme, body: { type: 'github', config: {}, credentials: {} } });
    expect(answer.status).toBe(400);
    expect(answer.body.detail).toContain('POST /v1/integrations/github/authorize');
  });
});
