/**
 * The shared OAuth flow's guarantees, whatever the provider: state single-use, 10-minute expiry,
 * bound to tenant and type, unforgeable; access_denied stores nothing; returnUrl only on the
 * allowed origins; the routes' errors.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { keys } from '#platform/keys.ts';
import { DEFAULT_GITHUB_CLIENT_ID, DEFAULT_GITHUB_CLIENT_SECRET, startGitHubFake, type GitHubFake } from '../fakes/github.ts';
import { DEFAULT_SLACK_CLIENT_ID, DEFAULT_SLACK_CLIENT_SECRET, startSlackFake, type SlackFake } from '../fakes/slack.ts';
import { startTestApi, type TestApi } from '../support/api.ts';
import { callCallback, oauthEnv, RETURN_URL, returnParams, roundTrip, setEnv, shiftClock, startFlow } from './support.ts';

let api: TestApi;
let github: GitHubFake;
let slack: SlackFake;
let acme: string;
let restoreEnv: () => void;

beforeAll(async () => {
  github = await startGitHubFake();
  slack = await startSlackFake();
  restoreEnv = oauthEnv({
    GITHUB_URL: github.url,
    GITHUB_API_URL: github.url,
    GITHUB_CLIENT_ID: DEFAULT_GITHUB_CLIENT_ID,
    GITHUB_CLIENT_SECRET: DEFAULT_GITHUB_CLIENT_SECRET,
    SLACK_URL: slack.url,
    SLACK_CLIENT_ID: DEFAULT_SLACK_CLIENT_ID,
    SLACK_CLIENT_SECRET: DEFAULT_SLACK_CLIENT_SECRET,
  });
  api = await startTestApi();
  acme = await api.tokenFor('acme');
});
afterAll(async () => {
  await api.close();
  await github.close();
  await slack.close();
  restoreEnv();
});
afterEach(() => {
  shiftClock(0);
  github.set({ authorize: 'approve' });
  slack.set({ authorize: 'approve' });
});

/** OAuth states stored for acme (a Query on the tenant's partition, never a Scan). */
async function pendingStates(): Promise<number> {
  const { PK, SK } = keys.oauthState('acme', '');
  const page = await api.table.client.send(
    new QueryCommand({ TableName: api.table.tableName, KeyConditionExpression: 'PK = :pk AND begins_with(SK, :sk)', ExpressionAttributeValues: { ':pk': PK, ':sk': SK }, Select: 'COUNT' }),
  );
  return page.Count ?? 0;
}

async function connectionCount(token = acme): Promise<number> {
  return (await api.call('GET', '/v1/connections?limit=500', { token })).body.items.length;
}

function expectStateRefused(answer: { status: number; headers: Headers; body: { type: string; errors: { path: string }[] } }) {
  expect(answer.status).toBe(400);
  expect(answer.headers.get('content-type')).toMatch(/application\/problem\+json/);
  expect(answer.body.type).toMatch(/invalid-oauth-state$/);
  expect(answer.body.errors[0]!.path).toBe('query.state');
}

describe('OAuth state', () => {
  it('is single-use: replaying a callback answers 400 and exchanges nothing', async () => {
    const { providerRedirect, callback } = await roundTrip(api, acme, 'github', { returnUrl: RETURN_URL });
    expect(returnParams(callback).status).toBe('connected');
    const exchanges = github.oauth.stats.exchanges;
    const count = await connectionCount();

    expectStateRefused(await callCallback(api, providerRedirect));
    expect(github.oauth.stats.exchanges).toBe(exchanges);
    expect(await connectionCount()).toBe(count);
  });

  it('expires after 10 minutes: 400, and the code is never exchanged', async () => {
    const { providerRedirect } = await startFlow(api, acme, 'github', { returnUrl: RETURN_URL });
    const exchanges = github.oauth.stats.exchanges;
    const secrets = api.secrets.values.size;
    shiftClock(10 * 60_000 + 1000);
    expectStateRefused(await callCallback(api, providerRedirect));
    expect(github.oauth.stats.exchanges).toBe(exchanges);
    expect(api.secrets.values.size).toBe(secrets);

    // Just inside the 10 minutes it still works.
    shiftClock(0);
    const fresh = await startFlow(api, acme, 'github');
    shiftClock(9 * 60_000);
    expect((await callCallback(api, fresh.providerRedirect)).status).toBe(200);
  });

  it('cannot be forged, moved to another tenant or used for another integration', async () => {
    const { providerRedirect } = await startFlow(api, acme, 'github');
    const exchanges = github.oauth.stats.exchanges;
    const code = providerRedirect.searchParams.get('code')!;
    const state = providerRedirect.searchParams.get('state')!;
    const nonce = state.slice('acme.'.length);
    const callback = (type: string, query: string) => api.call('GET', `/v1/oauth/${type}/callback?${query}`);

    for (const forged of [
      `acme.${randomBytes(32).toString('base64url')}`, // a well-formed nonce nobody issued
      `globex.${nonce}`, // the real nonce, claimed for another tenant
      `acme.${nonce.slice(0, -1)}A`,
      'acme',
      'not-a-state',
      `${'a'.repeat(300)}.${nonce}`,
    ]) {
      expectStateRefused(await callback('github', `code=${code}&state=${encodeURIComponent(forged)}`));
    }
    expectStateRefused(await callback('github', `code=${code}`));
    // Issued for GitHub, presented to the Slack callback: refused, and consumed.
    expectStateRefused(await callback('slack', `code=${code}&state=${encodeURIComponent(state)}`));
    expectStateRefused(await callCallback(api, providerRedirect));
    expect(github.oauth.stats.exchanges).toBe(exchanges);
  });

  it('is bound to the tenant that started the flow', async () => {
    const globex = await api.tokenFor('globex');
    const { callback } = await roundTrip(api, globex, 'github');
    expect(callback.status).toBe(200);
    const id = callback.body.connection.id;
    expect((await api.call('GET', `/v1/connections/${id}`, { token: globex })).status).toBe(200);
    expect((await api.call('GET', `/v1/connections/${id}`, { token: acme })).status).toBe(404);
  });
});

describe('the provider says no', () => {
  it.each(['github', 'slack'])('%s access_denied: redirected back with the error, nothing stored', async (type) => {
    (type === 'github' ? github : slack).set({ authorize: 'deny' });
    const secrets = api.secrets.values.size;
    const count = await connectionCount();
    const { providerRedirect } = await startFlow(api, acme, type, { returnUrl: RETURN_URL });
    expect(providerRedirect.searchParams.get('error')).toBe('access_denied');
    const answer = await callCallback(api, providerRedirect);
    expect(returnParams(answer)).toEqual({ from: 'oauth', status: 'error', error: 'access_denied' });
    expect(api.secrets.values.size).toBe(secrets);
    expect(await connectionCount()).toBe(count);
    // The state is spent all the same.
    expectStateRefused(await callCallback(api, providerRedirect));
  });

  it('access_denied without a returnUrl: 400 problem, nothing stored', async () => {
    github.set({ authorize: 'deny' });
    const secrets = api.secrets.values.size;
    const { providerRedirect } = await startFlow(api, acme, 'github');
    const answer = await callCallback(api, providerRedirect);
    expect(answer.status).toBe(400);
    expect(answer.body.type).toMatch(/oauth-access-denied$/);
    expect(answer.body.detail).toMatch(/GitHub did not authorize OpenTrace \(access_denied\); nothing was stored/);
    expect(api.secrets.values.size).toBe(secrets);
  });

  it('a refused code exchange redirects with the error and stores nothing', async () => {
    const { providerRedirect } = await startFlow(api, acme, 'github', { returnUrl: RETURN_URL });
    providerRedirect.searchParams.set('code', 'a-code-github-never-issued');
    const secrets = api.secrets.values.size;
    const answer = await callCallback(api, providerRedirect);
    expect(returnParams(answer)).toMatchObject({ status: 'error', error: 'invalid_grant' });
    expect(api.secrets.values.size).toBe(secrets);

    const again = await startFlow(api, acme, 'github');
    again.providerRedirect.searchParams.set('code', 'another-unknown-code');
    const problem = await callCallback(api, again.providerRedirect);
    expect(problem.status).toBe(422);
    expect(problem.body.detail).toMatch(/GitHub refused the authorization code \(bad_verification_code/);
  });
});

describe('returnUrl', () => {
  it.each([
    ['another origin', 'https://evil.example/steal'],
    ['a look-alike host', 'https://app.opentrace.test.evil.example/'],
    ['another port', 'https://app.opentrace.test:8443/'],
    ['plain http of an https origin', 'http://app.opentrace.test/'],
    ['a javascript: URL', 'javascript:alert(1)'],
    ['user info', 'https://user@app.opentrace.test/'],
    ['a relative URL', '/integrations/done'],
  ])('refuses %s with 400 on body.returnUrl and stores no state', async (_, returnUrl) => {
    const states = await pendingStates();
    const answer = await api.call('POST', '/v1/integrations/github/authorize', { token: acme, body: { returnUrl } });
    expect(answer.status).toBe(400);
    expect(answer.body.errors[0].path).toBe('body.returnUrl');
    expect(await pendingStates()).toBe(states);
  });

  it('accepts the configured origins, and the local UI by default', async () => {
    expect((await api.call('POST', '/v1/integrations/github/authorize', { token: acme, body: { returnUrl: 'http://localhost:3000/settings' } })).status).toBe(200);
    const restore = setEnv({ OPENTRACE_ALLOWED_RETURN_ORIGINS: undefined });
    try {
      expect((await api.call('POST', '/v1/integrations/github/authorize', { token: acme, body: { returnUrl: 'http://127.0.0.1:3000/x' } })).status).toBe(200);
      expect((await api.call('POST', '/v1/integrations/github/authorize', { token: acme, body: { returnUrl: RETURN_URL } })).status).toBe(400);
    } finally {
      restore();
    }
  });
});

describe('the routes', () => {
  it('authorize: 401 without a token, 404 for an unknown type, 400 for a form integration or a field of another provider', async () => {
    expect((await api.call('POST', '/v1/integrations/github/authorize', { body: {} })).status).toBe(401);
    expect((await api.call('POST', '/v1/integrations/datadog/authorize', { token: acme, body: {} })).status).toBe(404);
    const grafana = await api.call('POST', '/v1/integrations/grafana/authorize', { token: acme, body: {} });
    expect(grafana.status).toBe(400);
    expect(grafana.body.detail).toMatch(/POST \/v1\/connections/);
    expect((await api.call('POST', '/v1/integrations/github/authorize', { token: acme, body: { baseUrl: 'https://gitlab.example.com' } })).body.errors[0].path).toBe('body.baseUrl');
    expect((await api.call('POST', '/v1/integrations/github/authorize', { token: acme, body: { channels: ['#alerts'] } })).body.errors[0].path).toBe('body.channels');
    expect((await api.call('POST', '/v1/integrations/slack/authorize', { token: acme, body: { channels: ['not a channel!'] } })).status).toBe(400);
    expect((await api.call('POST', '/v1/integrations/github/authorize', { token: acme, body: { tenantId: 'globex' } })).status).toBe(400);
    // No body at all is fine.
    expect((await api.call('POST', '/v1/integrations/github/authorize', { token: acme })).status).toBe(200);
  });

  it('authorize answers 503 when the deployment has no app for the provider', async () => {
    const restore = setEnv({ GITHUB_CLIENT_ID: undefined });
    try {
      const answer = await api.call('POST', '/v1/integrations/github/authorize', { token: acme, body: {} });
      expect(answer.status).toBe(503);
      expect(answer.body.detail).toMatch(/GITHUB_CLIENT_ID/);
    } finally {
      restore();
    }
  });

  it('Slack asks for its bot scopes, without PKCE (Slack has none for this flow)', async () => {
    const answer = await api.call('POST', '/v1/integrations/slack/authorize', { token: acme, body: {} });
    const url = new URL(answer.body.authorizeUrl);
    expect(`${url.origin}${url.pathname}`).toBe(`${slack.url}/oauth/v2/authorize`);
    expect(url.searchParams.get('scope')).toBe('chat:write,chat:write.public,channels:read,groups:read,incoming-webhook');
    expect(url.searchParams.has('code_challenge')).toBe(false);
  });

  it('uses OPENTRACE_API_URL for the redirect URI when set (the cloud)', async () => {
    const restore = setEnv({ OPENTRACE_API_URL: 'https://api.opentrace.test/' });
    try {
      const answer = await api.call('POST', '/v1/integrations/github/authorize', { token: acme, body: {} });
      expect(new URL(answer.body.authorizeUrl).searchParams.get('redirect_uri')).toBe('https://api.opentrace.test/v1/oauth/github/callback');
    } finally {
      restore();
    }
  });

  it('the catalog lists the three OAuth integrations with what PATCH may change', async () => {
    const catalog = await api.call('GET', '/v1/integrations', { token: acme });
    const byType = Object.fromEntries(catalog.body.items.map((item: { type: string }) => [item.type, item]));
    expect(byType.github).toMatchObject({ auth: 'oauth', title: 'GitHub' });
    expect(Object.keys(byType.github.configSchema.properties)).toEqual(['installationId', 'repositories']);
    expect(byType.gitlab.configSchema.properties.baseUrl.readOnly).toBe(true);
    expect(byType.slack.configSchema.properties.channels.type).toBe('array');
    expect(byType.slack.provides).toContain('Test message on connect');
  });
});
