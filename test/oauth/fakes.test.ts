/**
 * The provider fakes keep to the documented shapes the connectors rely on (and the sync work
 * will build on): PKCE verification, rotation, pagination and rate-limit headers, Slack's errors.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DEFAULT_GITHUB_CLIENT_ID, DEFAULT_GITHUB_CLIENT_SECRET, startGitHubFake, type GitHubFake } from '../fakes/github.ts';
import { DEFAULT_GITLAB_CLIENT_ID, DEFAULT_GITLAB_CLIENT_SECRET, startGitLabFake, type GitLabFake } from '../fakes/gitlab.ts';
import { s256 } from '../fakes/oauth-fake.ts';
import { DEFAULT_SLACK_CLIENT_ID, DEFAULT_SLACK_CLIENT_SECRET, SLACK_CHANNELS, startSlackFake, type SlackFake } from '../fakes/slack.ts';

let github: GitHubFake;
let gitlab: GitLabFake;
let slack: SlackFake;

beforeAll(async () => {
  [github, gitlab, slack] = await Promise.all([startGitHubFake(), startGitLabFake(), startSlackFake()]);
});
afterAll(async () => {
  await Promise.all([github.close(), gitlab.close(), slack.close()]);
});

const REDIRECT = 'http://127.0.0.1:9/v1/oauth/x/callback';
const VERIFIER = 'a'.repeat(43);

async function authorizeAt(url: string): Promise<URL> {
  const response = await fetch(url, { redirect: 'manual' });
  await response.text();
  return new URL(response.headers.get('location')!);
}

async function post(url: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(form).toString() });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

async function gitlabTokens() {
  const back = await authorizeAt(`${gitlab.url}/oauth/authorize?client_id=${DEFAULT_GITLAB_CLIENT_ID}&redirect_uri=${encodeURIComponent(REDIRECT)}&response_type=code&state=s1&code_challenge=${s256(VERIFIER)}&code_challenge_method=S256`);
  const answer = await post(`${gitlab.url}/oauth/token`, { grant_type: 'authorization_code', code: back.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: VERIFIER, client_id: DEFAULT_GITLAB_CLIENT_ID, client_secret: DEFAULT_GITLAB_CLIENT_SECRET });
  return JSON.parse(answer.text) as { access_token: string; refresh_token: string; expires_in: number };
}

describe('the GitLab fake', () => {
  it('requires PKCE S256 and checks the verifier against the challenge', async () => {
    const noPkce = await authorizeAt(`${gitlab.url}/oauth/authorize?client_id=${DEFAULT_GITLAB_CLIENT_ID}&redirect_uri=${encodeURIComponent(REDIRECT)}&response_type=code&state=s0`);
    expect(noPkce.searchParams.get('error')).toBe('invalid_request');
    const back = await authorizeAt(`${gitlab.url}/oauth/authorize?client_id=${DEFAULT_GITLAB_CLIENT_ID}&redirect_uri=${encodeURIComponent(REDIRECT)}&response_type=code&state=s1&code_challenge=${s256(VERIFIER)}&code_challenge_method=S256`);
    expect(back.searchParams.get('state')).toBe('s1');
    const wrong = await post(`${gitlab.url}/oauth/token`, { grant_type: 'authorization_code', code: back.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: 'b'.repeat(43), client_id: DEFAULT_GITLAB_CLIENT_ID, client_secret: DEFAULT_GITLAB_CLIENT_SECRET });
    expect(wrong.status).toBe(400);
    expect(JSON.parse(wrong.text)).toMatchObject({ error: 'invalid_grant' });
  });

  it('rotates refresh tokens: a used one answers invalid_grant, the old access token stops working', async () => {
    const first = await gitlabTokens();
    expect(first.expires_in).toBe(7200);
    const refreshed = await post(`${gitlab.url}/oauth/token`, { grant_type: 'refresh_token', refresh_token: first.refresh_token, client_id: DEFAULT_GITLAB_CLIENT_ID, client_secret: DEFAULT_GITLAB_CLIENT_SECRET });
    expect(refreshed.status).toBe(200);
    const again = await post(`${gitlab.url}/oauth/token`, { grant_type: 'refresh_token', refresh_token: first.refresh_token, client_id: DEFAULT_GITLAB_CLIENT_ID, client_secret: DEFAULT_GITLAB_CLIENT_SECRET });
    expect(again.status).toBe(400);
    expect(JSON.parse(again.text).error).toBe('invalid_grant');
    const old = await fetch(`${gitlab.url}/api/v4/user`, { headers: { authorization: `Bearer ${first.access_token}` } });
    expect(old.status).toBe(401);
  });

  it('pages projects with X-Total / X-Next-Page / Link, and by keyset, with RateLimit headers', async () => {
    const { access_token } = await gitlabTokens();
    const auth = { authorization: `Bearer ${access_token}` };
    const page1 = await fetch(`${gitlab.url}/api/v4/projects?membership=true&per_page=2`, { headers: auth });
    expect(page1.headers.get('x-total')).toBe('3');
    expect(page1.headers.get('x-next-page')).toBe('2');
    expect(page1.headers.get('link')).toMatch(/per_page=2&page=2>; rel="next"/);
    expect(page1.headers.get('ratelimit-limit')).toBe('2000');
    expect(((await page1.json()) as unknown[]).length).toBe(2);
    const keyset = await fetch(`${gitlab.url}/api/v4/projects?membership=true&per_page=2&pagination=keyset&order_by=id&sort=asc`, { headers: auth });
    expect(keyset.headers.get('link')).toMatch(/id_after=1002/);
    const byPath = await fetch(`${gitlab.url}/api/v4/projects/${encodeURIComponent('acme/platform/deploy')}`, { headers: auth });
    expect(((await byPath.json()) as { id: number }).id).toBe(1003);
  });
});

describe('the GitHub fake', () => {
  it('answers the token endpoint form-encoded unless asked for JSON, errors with status 200', async () => {
    const back = await authorizeAt(`${github.url}/login/oauth/authorize?client_id=${DEFAULT_GITHUB_CLIENT_ID}&redirect_uri=${encodeURIComponent(REDIRECT)}&state=s&code_challenge=${s256(VERIFIER)}&code_challenge_method=S256`);
    const form = await post(`${github.url}/login/oauth/access_token`, { code: back.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: VERIFIER, client_id: DEFAULT_GITHUB_CLIENT_ID, client_secret: DEFAULT_GITHUB_CLIENT_SECRET });
    const tokens = new URLSearchParams(form.text);
    expect(tokens.get('access_token')).toMatch(/^ghu_/);
    expect(tokens.get('expires_in')).toBe('28800');
    expect(tokens.get('refresh_token_expires_in')).toBe('15897600');
    const reused = await post(`${github.url}/login/oauth/access_token`, { code: back.searchParams.get('code')!, client_id: DEFAULT_GITHUB_CLIENT_ID, client_secret: DEFAULT_GITHUB_CLIENT_SECRET }, { accept: 'application/json' });
    expect(reused.status).toBe(200);
    expect(JSON.parse(reused.text).error).toBe('bad_verification_code');

    const user = await fetch(`${github.url}/user`, { headers: { authorization: `Bearer ${tokens.get('access_token')}` } });
    expect(user.headers.get('x-ratelimit-limit')).toBe('5000');
    expect(Number(user.headers.get('x-ratelimit-remaining'))).toBeLessThan(5000);
    github.set({ rateLimitRemaining: 0 });
    try {
      const limited = await fetch(`${github.url}/user`, { headers: { authorization: `Bearer ${tokens.get('access_token')}` } });
      expect(limited.status).toBe(403);
      expect(limited.headers.get('x-ratelimit-remaining')).toBe('0');
    } finally {
      github.set({ rateLimitRemaining: undefined });
    }
    expect((await fetch(`${github.url}/user`, { headers: { authorization: 'Bearer ghu_unknown' } })).status).toBe(401);
  });
});

describe('the Slack fake', () => {
  it('oauth.v2.access with Basic auth, then Slack-shaped answers: ok:false errors and 429 Retry-After', async () => {
    const back = await authorizeAt(`${slack.url}/oauth/v2/authorize?client_id=${DEFAULT_SLACK_CLIENT_ID}&scope=chat:write,channels:read&redirect_uri=${encodeURIComponent(REDIRECT)}&state=s`);
    const basic = `Basic ${Buffer.from(`${DEFAULT_SLACK_CLIENT_ID}:${DEFAULT_SLACK_CLIENT_SECRET}`).toString('base64')}`;
    const access = JSON.parse((await post(`${slack.url}/api/oauth.v2.access`, { code: back.searchParams.get('code')!, redirect_uri: REDIRECT }, { authorization: basic })).text);
    expect(access).toMatchObject({ ok: true, token_type: 'bot', team: { id: 'T0ACME0001' }, expires_in: 43200 });
    const bad = JSON.parse((await post(`${slack.url}/api/oauth.v2.access`, { code: 'nope' }, { authorization: basic })).text);
    expect(bad).toEqual({ ok: false, error: 'invalid_code' });

    const call = (method: string, form: Record<string, string>) => post(`${slack.url}/api/${method}`, form, { authorization: `Bearer ${access.access_token}` });
    expect(JSON.parse((await call('chat.postMessage', { channel: SLACK_CHANNELS.random, text: 'hi' })).text)).toEqual({ ok: false, error: 'not_in_channel' });
    expect(JSON.parse((await call('chat.postMessage', { channel: 'C0NOSUCH00', text: 'hi' })).text)).toEqual({ ok: false, error: 'channel_not_found' });
    expect(JSON.parse((await call('chat.postMessage', { channel: SLACK_CHANNELS.archived, text: 'hi' })).text)).toEqual({ ok: false, error: 'is_archived' });
    slack.set({ rateLimitedChannels: [SLACK_CHANNELS.alerts], retryAfterSeconds: 3 });
    const limited = await call('chat.postMessage', { channel: SLACK_CHANNELS.alerts, text: 'hi' });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('3');
    slack.set({ rateLimitedChannels: undefined });
    const posted = JSON.parse((await call('chat.postMessage', { channel: SLACK_CHANNELS.alerts, text: 'hi' })).text);
    expect(posted).toMatchObject({ ok: true, channel: SLACK_CHANNELS.alerts });
    expect(slack.messages.at(-1)).toMatchObject({ channel: SLACK_CHANNELS.alerts, text: 'hi', ts: posted.ts });
    const list = JSON.parse((await call('conversations.list', { types: 'public_channel,private_channel', limit: '2' })).text);
    expect(list.channels).toHaveLength(2);
    expect(list.response_metadata.next_cursor).toBeTruthy();
    expect(JSON.parse((await post(`${slack.url}/api/auth.test`, {}, { authorization: 'Bearer xoxb-nope' })).text)).toEqual({ ok: false, error: 'invalid_auth' });
  });
});
