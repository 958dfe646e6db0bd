/**
 * A fake Slack for tests and the local walkthrough (point SLACK_URL at it; the Web API is under
 * /api/), shaped like Slack's documented Web API: every method answers HTTP 200 with
 * `{ ok: true, … }` or `{ ok: false, error }`, except rate limits (429 with Retry-After).
 *
 * OAuth v2 (test/fakes/oauth-fake.ts): GET /oauth/v2/authorize (redirects back with code +
 * state, or error=access_denied when `authorize: 'deny'`; the channel picked for the incoming
 * webhook is `webhookChannel`), POST /api/oauth.v2.access (client id/secret with HTTP Basic or
 * form fields; `grant_type=refresh_token` with token rotation on). With `tokenRotation` (the
 * default) bot tokens are `xoxe.xoxb-…`, expire after 12 h and come with `xoxe-1-…` refresh
 * tokens that rotate on use; without it, `xoxb-…` tokens that never expire.
 *
 * Methods (bot token as Bearer header or `token` field; invalid_auth / token_expired
 * otherwise): auth.test, conversations.list (types, exclude_archived, cursor/limit),
 * conversations.info, chat.postMessage (channel_not_found, not_in_channel, is_archived;
 * `rateLimitedChannels` answer 429 with Retry-After). Posted messages land in `fake.messages`.
 * Answers carry `x-oauth-scopes` with the token's scopes.
 */
import { html, reply, startHttpFake, type CommonFakeOptions, type FakeReply, type HttpFake, type RecordedRequest } from './http-fake.ts';
import { FakeOAuthServer, type FakeOAuthSettings } from './oauth-fake.ts';

export const DEFAULT_SLACK_CLIENT_ID = '1111111111.2222222222222';
export const DEFAULT_SLACK_CLIENT_SECRET = 'fake-slack-client-secret-0123456789abcdef';

export interface FakeSlackChannel {
  id: string;
  name: string;
  isPrivate: boolean;
  isArchived?: boolean;
  /** Whether the OpenTrace bot was invited. */
  botIsMember: boolean;
}

export interface FakeSlackMessage {
  channel: string;
  text: string;
  ts: string;
}

export interface SlackFakeModel {
  team: { id: string; name: string; domain: string };
  botUserId: string;
  botName: string;
  installerUserId: string;
  channels: FakeSlackChannel[];
}

export interface SlackFakeOptions extends CommonFakeOptions {
  clientId?: string;
  clientSecret?: string;
  authorize?: 'approve' | 'deny';
  /** Token rotation on the app (default true). */
  tokenRotation?: boolean;
  /** Bot token lifetime with rotation on (default 43,200 s). */
  accessTokenTtlSeconds?: number;
  /** The channel picked for the incoming webhook on the consent screen (default #alerts); null for none. */
  webhookChannel?: string | null;
  /** The scopes the user grants (default: those requested). */
  grantScopes?: string[];
  /** chat.postMessage to these channel ids answers 429 with Retry-After. */
  rateLimitedChannels?: string[];
  now?: () => number;
}

export interface SlackFake extends HttpFake<SlackFakeOptions> {
  model: SlackFakeModel;
  oauth: FakeOAuthServer;
  messages: FakeSlackMessage[];
}

export const SLACK_CHANNELS = {
  alerts: 'C0ALERTS01',
  general: 'C0GENERAL1',
  incidents: 'G0INCIDNT1',
  random: 'C0RANDOM01',
  archived: 'C0OLDSTUFF',
} as const;

export function defaultSlackModel(): SlackFakeModel {
  return {
    team: { id: 'T0ACME0001', name: 'Acme Corp', domain: 'acme' },
    botUserId: 'U0OPENTRCE',
    botName: 'opentrace',
    installerUserId: 'U0JANEDOE1',
    channels: [
      { id: SLACK_CHANNELS.alerts, name: 'alerts', isPrivate: false, botIsMember: true },
      { id: SLACK_CHANNELS.general, name: 'general', isPrivate: false, botIsMember: false },
      { id: SLACK_CHANNELS.incidents, name: 'incidents', isPrivate: true, botIsMember: false },
      { id: SLACK_CHANNELS.random, name: 'random', isPrivate: false, botIsMember: false },
      { id: SLACK_CHANNELS.archived, name: 'old-stuff', isPrivate: false, isArchived: true, botIsMember: true },
    ],
  };
}

function channelView(channel: FakeSlackChannel, model: SlackFakeModel) {
  return {
    id: channel.id,
    name: channel.name,
    is_channel: !channel.isPrivate,
    is_group: channel.isPrivate,
    is_im: false,
    is_private: channel.isPrivate,
    is_archived: channel.isArchived ?? false,
    is_general: channel.name === 'general',
    is_member: channel.botIsMember,
    context_team_id: model.team.id,
    created: 1_700_000_000,
    num_members: 12,
  };
}

/** Form fields of a Web API call: form-encoded or JSON bodies, plus the query string. */
function fields(request: RecordedRequest): URLSearchParams {
  const params = new URLSearchParams(request.query);
  if (/json/i.test(String(request.headers['content-type'] ?? ''))) {
    try {
      for (const [name, value] of Object.entries(JSON.parse(request.body) as Record<string, unknown>)) params.set(name, typeof value === 'string' ? value : JSON.stringify(value));
    } catch {
      // Slack answers invalid JSON with invalid_json; not needed here
    }
  } else {
    for (const [name, value] of new URLSearchParams(request.body)) params.set(name, value);
  }
  return params;
}

const slackError = (error: string, extra: Record<string, unknown> = {}): FakeReply => reply(200, { ok: false, error, ...extra });

export async function startSlackFake(options: SlackFakeOptions = {}): Promise<SlackFake> {
  const opts: SlackFakeOptions = { ...options };
  const model = defaultSlackModel();
  const messages: FakeSlackMessage[] = [];
  const now = () => (opts.now ?? Date.now)();
  const rotation = () => opts.tokenRotation ?? true;
  const settings = (): FakeOAuthSettings => ({
    apps: [{ clientId: opts.clientId ?? DEFAULT_SLACK_CLIENT_ID, clientSecret: opts.clientSecret ?? DEFAULT_SLACK_CLIENT_SECRET }],
    accessTokenTtlSeconds: rotation() ? (opts.accessTokenTtlSeconds ?? 43_200) : null,
    refreshTokens: rotation(),
    requirePkce: false,
    prefixes: rotation() ? { access: 'xoxe.xoxb-1-', refresh: 'xoxe-1-' } : { access: 'xoxb-1-', refresh: 'xoxe-1-' },
    now,
  });
  const oauth = new FakeOAuthServer(settings);
  let sequence = 0;

  const handle = async (request: RecordedRequest): Promise<FakeReply> => {
    if (request.method === 'GET' && request.path === '/oauth/v2/authorize') {
      const requested = (request.query.get('scope') ?? '').split(',').filter(Boolean);
      const webhook = opts.webhookChannel === undefined ? SLACK_CHANNELS.alerts : opts.webhookChannel;
      const outcome = oauth.authorize(request.query, model.installerUserId, {
        deny: opts.authorize === 'deny',
        scopes: opts.grantScopes ?? requested,
        extra: webhook && requested.includes('incoming-webhook') ? { webhookChannel: webhook } : {},
      });
      return outcome.ok ? reply(302, '', { location: outcome.location }) : html(outcome.status, `<html><body><h1>Oops!</h1><p>${outcome.description}</p></body></html>`);
    }
    if (!request.path.startsWith('/api/')) return html(404, '<html><body>There’s been a glitch…</body></html>');
    const method = request.path.slice('/api/'.length);
    const params = fields(request);

    if (method === 'oauth.v2.access') {
      const outcome = await oauth.token(params, request.headers.authorization);
      if (!outcome.ok) {
        const code = outcome.error === 'invalid_client' ? 'invalid_client_id' : outcome.error === 'invalid_grant' ? (params.get('grant_type') === 'refresh_token' ? 'invalid_refresh_token' : 'invalid_code') : outcome.error;
        return slackError(code);
      }
      const webhookChannel = typeof outcome.grant.extra.webhookChannel === 'string' ? model.channels.find((c) => c.id === outcome.grant.extra.webhookChannel) : undefined;
      return reply(200, {
        ok: true,
        app_id: 'A0OPENTRACE',
        authed_user: { id: model.installerUserId },
        scope: outcome.grant.scopes.join(','),
        token_type: 'bot',
        access_token: outcome.accessToken,
        bot_user_id: model.botUserId,
        team: { id: model.team.id, name: model.team.name },
        enterprise: null,
        is_enterprise_install: false,
        ...(outcome.expiresIn !== undefined ? { expires_in: outcome.expiresIn } : {}),
        ...(outcome.refreshToken ? { refresh_token: outcome.refreshToken } : {}),
        ...(webhookChannel && params.get('grant_type') !== 'refresh_token'
          ? {
              incoming_webhook: {
                channel: `#${webhookChannel.name}`,
                channel_id: webhookChannel.id,
                configuration_url: `https://${model.team.domain}.slack.com/services/B0WEBHOOK1`,
                url: `https://hooks.slack.com/services/${model.team.id}/B0WEBHOOK1/${outcome.accessToken.slice(-24)}`,
              },
            }
          : {}),
      });
    }

    const header = request.headers.authorization;
    const token = typeof header === 'string' && /^bearer\s+/i.test(header) ? header.replace(/^bearer\s+/i, '') : (params.get('token') ?? undefined);
    if (!token) return slackError('not_authed');
    const grant = oauth.check(token);
    if (grant === 'expired') return slackError('token_expired');
    if (!grant) return slackError('invalid_auth');
    const scopeHeaders = { 'x-oauth-scopes': grant.scopes.join(','), 'x-accepted-oauth-scopes': '' };
    const needs = (scope: string): FakeReply | undefined =>
      grant.scopes.includes(scope) ? undefined : { ...slackError('missing_scope', { needed: scope, provided: grant.scopes.join(',') }), headers: scopeHeaders };

    if (method === 'auth.test') {
      return reply(200, { ok: true, url: `https://${model.team.domain}.slack.com/`, team: model.team.name, user: model.botName, team_id: model.team.id, user_id: model.botUserId, bot_id: 'B0OPENTRCE', is_enterprise_install: false }, scopeHeaders);
    }
    if (method === 'conversations.list') {
      const types = (params.get('types') ?? 'public_channel').split(',');
      if (types.includes('public_channel')) {
        const missing = needs('channels:read');
        if (missing) return missing;
      }
      const excludeArchived = params.get('exclude_archived') === 'true';
      // A bot sees public channels, and private ones only once invited.
      const visible = model.channels.filter(
        (c) => (c.isPrivate ? types.includes('private_channel') && c.botIsMember && grant.scopes.includes('groups:read') : types.includes('public_channel')) && !(excludeArchived && c.isArchived),
      );
      const limit = Math.min(1000, Math.max(1, Number(params.get('limit') ?? 100) || 100));
      const start = params.get('cursor') ? Number(Buffer.from(params.get('cursor')!, 'base64').toString('utf8').replace('offset:', '')) || 0 : 0;
      const page = visible.slice(start, start + limit);
      const next = start + limit < visible.length ? Buffer.from(`offset:${start + limit}`).toString('base64') : '';
      return reply(200, { ok: true, channels: page.map((c) => channelView(c, model)), response_metadata: { next_cursor: next } }, scopeHeaders);
    }
    if (method === 'conversations.info') {
      const channel = model.channels.find((c) => c.id === params.get('channel'));
      if (!channel || (channel.isPrivate && !channel.botIsMember)) return { ...slackError('channel_not_found'), headers: scopeHeaders };
      return reply(200, { ok: true, channel: channelView(channel, model) }, scopeHeaders);
    }
    if (method === 'chat.postMessage') {
      const missing = needs('chat:write');
      if (missing) return missing;
      const ref = params.get('channel') ?? '';
      const channel = model.channels.find((c) => c.id === ref || `#${c.name}` === ref || c.name === ref);
      if (!channel || (channel.isPrivate && !channel.botIsMember)) return { ...slackError('channel_not_found'), headers: scopeHeaders };
      if (opts.rateLimitedChannels?.includes(channel.id)) return reply(429, { ok: false, error: 'ratelimited' }, { 'retry-after': String(opts.retryAfterSeconds ?? 30) });
      if (channel.isArchived) return { ...slackError('is_archived'), headers: scopeHeaders };
      if (!channel.botIsMember && !grant.scopes.includes('chat:write.public')) return { ...slackError('not_in_channel'), headers: scopeHeaders };
      const text = params.get('text') ?? '';
      if (!text && !params.get('blocks')) return slackError('no_text');
      sequence++;
      const ts = `${Math.floor(now() / 1000)}.${String(sequence).padStart(6, '0')}`;
      messages.push({ channel: channel.id, text, ts });
      return reply(200, { ok: true, channel: channel.id, ts, message: { type: 'message', subtype: 'bot_message', text, ts, bot_id: 'B0OPENTRCE', user: model.botUserId } }, scopeHeaders);
    }
    return slackError('unknown_method');
  };

  const fake = await startHttpFake<SlackFakeOptions>({
    options: opts,
    isUnguarded: (request) => request.path === '/oauth/v2/authorize' || request.path === '/api/oauth.v2.access',
    errorReply: (status) => (status === 429 ? reply(429, { ok: false, error: 'ratelimited' }) : status >= 500 ? html(status, '<html><body>Slack is having trouble.</body></html>') : slackError(status === 401 ? 'invalid_auth' : status === 403 ? 'not_allowed_token_type' : 'unknown_method')),
    handle,
  });
  return Object.assign(fake, { model, oauth, messages });
}
