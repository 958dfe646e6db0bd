/**
 * Slack's OAuth descriptor: OAuth v2 with a bot token (SLACK_URL, default https://slack.com;
 * app from SLACK_CLIENT_ID / SLACK_CLIENT_SECRET). The client authenticates to oauth.v2.access
 * with HTTP Basic; Slack has no PKCE for this flow. With token rotation on, the bot token
 * expires every 12 h and comes with a refresh token that rotates on use.
 *
 * Scopes: `chat:write` (post), `chat:write.public` (post in public channels without joining),
 * `channels:read` / `groups:read` (find the chosen channels), `incoming-webhook` (Slack's own
 * channel picker on the consent screen: the guide's "Choose which channel(s) to post
 * notifications to"; the picked channel joins the ones given to the authorize call).
 */
import type { OAuthApp, OAuthProvider } from '../../oauth/provider.ts';
import { isObject } from '../http-checks.ts';
import { describeSlackError, slackClient, slackErrorCode, slackUrls } from './api.ts';

export const SLACK_SCOPES = ['chat:write', 'chat:write.public', 'channels:read', 'groups:read', 'incoming-webhook'] as const;

/** The guide's "Verifying the Connection": posted to each selected channel on connect. */
export const SLACK_TEST_MESSAGE =
  ':wave: OpenTrace is connected. This channel will receive OpenTrace notifications: alerts about system changes, investigation findings and shared insights.';

export interface TestMessageResult {
  channel: string;
  channelName?: string;
  ok: boolean;
  ts?: string;
  error?: string;
  at: string;
}

export const slackOAuth: OAuthProvider = {
  type: 'slack',
  product: 'Slack',
  channelSelection: true,
  defaultBaseUrl: (env) => slackUrls(env).web,
  defaultApp(env): OAuthApp | undefined {
    if (!env.SLACK_CLIENT_ID || !env.SLACK_CLIENT_SECRET) return undefined;
    return { clientId: env.SLACK_CLIENT_ID, clientSecret: env.SLACK_CLIENT_SECRET, baseUrl: slackUrls(env).web, source: 'environment' };
  },
  clientConfig: (app) => ({
    product: 'Slack',
    clientId: app.clientId,
    clientSecret: app.clientSecret,
    authorizeUrl: `${app.baseUrl}/oauth/v2/authorize`,
    tokenUrl: `${app.baseUrl}/api/oauth.v2.access`,
    clientAuth: 'basic',
    pkce: false,
    scopes: SLACK_SCOPES,
    scopeSeparator: ',',
    // Slack answers errors with 200 and { ok: false, error }.
    grantErrorCodes: ['invalid_code', 'code_already_used', 'invalid_refresh_token', 'token_expired', 'token_revoked'],
    clientErrorCodes: ['bad_client_secret', 'invalid_client_id', 'bad_redirect_uri'],
  }),
  extraCredentials(tokens): Record<string, string> {
    const webhook = isObject(tokens.raw.incoming_webhook) ? tokens.raw.incoming_webhook : undefined;
    return typeof webhook?.url === 'string' ? { incomingWebhookUrl: webhook.url } : {};
  },
  initialConfig({ extra, tokens }) {
    const channels = Array.isArray(extra.channels) ? extra.channels.filter((c): c is string => typeof c === 'string') : [];
    const webhook = isObject(tokens.raw.incoming_webhook) ? tokens.raw.incoming_webhook : undefined;
    if (typeof webhook?.channel_id === 'string' && !channels.includes(webhook.channel_id)) channels.push(webhook.channel_id);
    return { channels };
  },
  connectionName(config) {
    const team = isObject(config.team) ? config.team : undefined;
    return typeof team?.name === 'string' ? `Slack ${team.name}` : 'Slack';
  },
  async afterConnect({ config, credentials, fetch }) {
    const client = slackClient(credentials.accessToken, fetch);
    const names = new Map<string, string>();
    for (const entry of Array.isArray(config.channelDetails) ? config.channelDetails : []) {
      if (isObject(entry) && typeof entry.id === 'string' && typeof entry.name === 'string') names.set(entry.id, entry.name);
    }
    const channels = Array.isArray(config.channels) ? config.channels.filter((c): c is string => typeof c === 'string') : [];
    const results: TestMessageResult[] = [];
    for (const channel of channels) {
      const channelName = names.get(channel);
      const label = channelName ? `#${channelName}` : channel;
      try {
        const answer = await client.chat.postMessage({ channel, text: SLACK_TEST_MESSAGE, unfurl_links: false, unfurl_media: false });
        results.push({ channel, ...(channelName ? { channelName } : {}), ok: true, ...(answer.ts ? { ts: answer.ts } : {}), at: new Date().toISOString() });
      } catch (error) {
        const code = slackErrorCode(error);
        const hint = code === 'not_in_channel' ? ` Invite the OpenTrace app to ${label} (/invite @OpenTrace) and test the connection again.` : '';
        results.push({ channel, ...(channelName ? { channelName } : {}), ok: false, error: `${describeSlackError(error, `the test message to ${label}`)}${hint}`, at: new Date().toISOString() });
      }
    }
    const failed = results.filter((result) => !result.ok);
    return {
      config: { testMessages: results },
      ...(failed.length > 0 ? { failure: `The test message could not be posted to ${failed.length} of ${results.length} channel${results.length === 1 ? '' : 's'}: ${failed[0]!.error}` } : {}),
    };
  },
};
