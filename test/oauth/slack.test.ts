import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { SLACK_TEST_MESSAGE } from '#connectors/slack/oauth.ts';
import { DEFAULT_SLACK_CLIENT_ID, DEFAULT_SLACK_CLIENT_SECRET, SLACK_CHANNELS, startSlackFake, type SlackFake } from '../fakes/slack.ts';
import { startTestApi, type TestApi } from '../support/api.ts';
import { oauthEnv, RETURN_URL, returnParams, roundTrip, shiftClock, storedSecretStrings, tenantRecordsText } from './support.ts';

let api: TestApi;
let slack: SlackFake;
let acme: string;
let restoreEnv: () => void;

beforeAll(async () => {
  slack = await startSlackFake();
  restoreEnv = oauthEnv({ SLACK_URL: slack.url, SLACK_CLIENT_ID: DEFAULT_SLACK_CLIENT_ID, SLACK_CLIENT_SECRET: DEFAULT_SLACK_CLIENT_SECRET });
  api = await startTestApi();
  acme = await api.tokenFor('acme');
});
afterAll(async () => {
  await api.close();
  await slack.close();
  restoreEnv();
});
afterEach(() => {
  shiftClock(0);
  slack.set({ grantScopes: undefined, webhookChannel: undefined, rateLimitedChannels: undefined, tokenRotation: true });
});

describe('Slack: connect with a bot token and the chosen channels', () => {
  it('round trip: consent (channel picked there + one from the authorize call) → connected, test message posted to each', async () => {
    const messagesBefore = slack.messages.length;
    const { callback } = await roundTrip(api, acme, 'slack', { returnUrl: RETURN_URL, channels: ['#general'] });
    const { status, connectionId } = returnParams(callback);
    expect(status).toBe('connected');

    const connection = await api.call('GET', `/v1/connections/${connectionId}`, { token: acme });
    expect(connection.body).toMatchObject({
      type: 'slack',
      name: 'Slack Acme Corp',
      status: 'connected',
      config: {
        channels: [SLACK_CHANNELS.general, SLACK_CHANNELS.alerts],
        team: { id: 'T0ACME0001', name: 'Acme Corp' },
        botUserId: 'U0OPENTRCE',
        testMessages: [
          { channel: SLACK_CHANNELS.general, channelName: 'general', ok: true },
          { channel: SLACK_CHANNELS.alerts, channelName: 'alerts', ok: true },
        ],
      },
    });
    const posted = slack.messages.slice(messagesBefore);
    expect(posted.map((m) => [m.channel, m.text])).toEqual([
      [SLACK_CHANNELS.general, SLACK_TEST_MESSAGE],
      [SLACK_CHANNELS.alerts, SLACK_TEST_MESSAGE],
    ]);
    expect(connection.body.config.testMessages.map((t: { ts: string }) => t.ts)).toEqual(posted.map((m) => m.ts));

    // Client id/secret went to oauth.v2.access with HTTP Basic; the bot token, the refresh token and the webhook URL are in the secret store only.
    const exchange = slack.requests.filter((r) => r.path === '/api/oauth.v2.access').at(-1)!;
    expect(exchange.headers.authorization).toBe(`Basic ${Buffer.from(`${encodeURIComponent(DEFAULT_SLACK_CLIENT_ID)}:${DEFAULT_SLACK_CLIENT_SECRET}`).toString('base64')}`);
    const stored = api.secrets.values.get(`acme/${connectionId}-v1`)!;
    expect(stored.accessToken).toMatch(/^xoxe\.xoxb-1-/);
    expect(stored.refreshToken).toMatch(/^xoxe-1-/);
    expect(stored.incomingWebhookUrl).toMatch(/^https:\/\/hooks\.slack\.com\/services\//);
    // Not in any response or table record either (connection, OAuth state, lease): only the secret's name is there.
    const records = await tenantRecordsText(api, 'acme');
    for (const secret of storedSecretStrings(api)) {
      expect(connection.text).not.toContain(secret);
      expect(records).not.toContain(secret);
    }
  });

  it('records a test message Slack refused (not_in_channel) and tells how to fix it', async () => {
    // The workspace granted no chat:write.public: the bot must be invited to #random first.
    slack.set({ grantScopes: ['chat:write', 'channels:read', 'groups:read', 'incoming-webhook'], webhookChannel: null });
    const { callback } = await roundTrip(api, acme, 'slack', { returnUrl: RETURN_URL, channels: ['#random'] });
    const { status, error, connectionId } = returnParams(callback);
    expect([status, error]).toEqual(['error', 'verification_failed']);
    const connection = await api.call('GET', `/v1/connections/${connectionId}`, { token: acme });
    expect(connection.body.status).toBe('error');
    expect(connection.body.config.testMessages).toEqual([expect.objectContaining({ channel: SLACK_CHANNELS.random, ok: false })]);
    expect(connection.body.lastError).toMatch(/not_in_channel.*\/invite @OpenTrace/);
  });

  it('a private channel the app was not invited to fails the channel check', async () => {
    const { callback } = await roundTrip(api, acme, 'slack', { channels: [SLACK_CHANNELS.incidents] });
    expect(callback.status).toBe(200);
    expect(callback.body.connection.status).toBe('error');
    const channels = callback.body.checks.find((c: { name: string }) => c.name === 'channels');
    expect(channels).toMatchObject({ ok: false });
    expect(channels.detail).toMatch(/G0INCIDNT1 was not found.*\/invite @OpenTrace/);

    // Invited later: the test passes and the connection recovers.
    slack.model.channels.find((c) => c.id === SLACK_CHANNELS.incidents)!.botIsMember = true;
    try {
      const test = await api.call('POST', `/v1/connections/${callback.body.connection.id}/test`, { token: acme });
      expect(test.body.ok).toBe(true);
    } finally {
      slack.model.channels.find((c) => c.id === SLACK_CHANNELS.incidents)!.botIsMember = false;
    }
  });

  it('a rate-limited channel (429 Retry-After) is reported, not waited out', async () => {
    slack.set({ rateLimitedChannels: [SLACK_CHANNELS.alerts], retryAfterSeconds: 42 });
    const { callback } = await roundTrip(api, acme, 'slack');
    expect(callback.body.connection.status).toBe('error');
    expect(callback.body.connection.config.testMessages[0]).toMatchObject({ channel: SLACK_CHANNELS.alerts, ok: false });
    expect(callback.body.connection.config.testMessages[0].error).toMatch(/rate-limiting.*42 s/);
  });

  it('changes the channels with PATCH (names resolved to ids), and refuses what it cannot post to', async () => {
    const { callback } = await roundTrip(api, acme, 'slack');
    const id = callback.body.connection.id;
    const changed = await api.call('PATCH', `/v1/connections/${id}`, { token: acme, body: { config: { channels: ['#random', SLACK_CHANNELS.alerts] } } });
    expect(changed.status).toBe(200);
    expect(changed.body.config.channels).toEqual([SLACK_CHANNELS.random, SLACK_CHANNELS.alerts]);
    expect(changed.body.config.testMessages).toHaveLength(1);

    const archived = await api.call('PATCH', `/v1/connections/${id}`, { token: acme, body: { config: { channels: ['#old-stuff'] } } });
    expect(archived.status).toBe(422);
    const missing = await api.call('PATCH', `/v1/connections/${id}`, { token: acme, body: { config: { channels: ['#no-such-channel'] } } });
    expect(missing.status).toBe(422);
    expect(missing.body.detail).toMatch(/#no-such-channel was not found/);
    const readOnly = await api.call('PATCH', `/v1/connections/${id}`, { token: acme, body: { config: { testMessages: [] } } });
    expect(readOnly.status).toBe(400);
    expect((await api.call('GET', `/v1/connections/${id}`, { token: acme })).body.config.channels).toEqual([SLACK_CHANNELS.random, SLACK_CHANNELS.alerts]);
  });

  it('with token rotation on, the 12 h bot token is refreshed before use; without it, never', async () => {
    const { callback } = await roundTrip(api, acme, 'slack');
    const id = callback.body.connection.id;
    const before = slack.oauth.stats.refreshes;
    shiftClock(12 * 3600_000);
    expect((await api.call('POST', `/v1/connections/${id}/test`, { token: acme })).body.ok).toBe(true);
    expect(slack.oauth.stats.refreshes).toBe(before + 1);
    const refreshed = api.secrets.values.get(`acme/${id}-v2`)!;
    expect(slack.oauth.isValid(String(refreshed.accessToken))).toBe(true);
    // The webhook URL from the first exchange is kept across refreshes.
    expect(refreshed.incomingWebhookUrl).toMatch(/^https:\/\/hooks\.slack\.com\//);

    shiftClock(0);
    slack.set({ tokenRotation: false });
    const plain = await roundTrip(api, acme, 'slack');
    const plainId = plain.callback.body.connection.id;
    expect(api.secrets.values.get(`acme/${plainId}-v1`)).not.toHaveProperty('expiresAt');
    shiftClock(400 * 24 * 3600_000);
    expect((await api.call('POST', `/v1/connections/${plainId}/test`, { token: acme })).body.ok).toBe(true);
    expect(slack.oauth.stats.refreshes).toBe(before + 1);
  });

  it('a revoked token (app uninstalled) fails the test with a reconnect hint', async () => {
    const { callback } = await roundTrip(api, acme, 'slack');
    slack.oauth.revokeAll(slack.model.installerUserId);
    const test = await api.call('POST', `/v1/connections/${callback.body.connection.id}/test`, { token: acme });
    expect(test.body.ok).toBe(false);
    expect(test.body.checks[0].detail).toMatch(/Slack rejected the token \(invalid_auth\).*Connect Slack again/);
  });
});
