/**
 * Slack's Web API through @slack/web-api's WebClient, pointed at SLACK_URL (`slackApiUrl`) and
 * sending through the outbound-safety fetch. Rate limits are not waited out inside a request
 * (`rejectRateLimitedCalls`): a connect answers within API Gateway's 29 s, so a 429 becomes a
 * sentence with Slack's Retry-After instead.
 */
import { LogLevel, WebAPIHTTPError, WebAPIPlatformError, WebAPIRateLimitedError, WebAPIRequestError, WebClient, type FetchFunction } from '@slack/web-api';
import { describeFetchError, isObject, statusLabel, type Upstream } from '../http-checks.ts';
import type { OutboundFetch } from '../types.ts';

/** SLACK_URL (default https://slack.com): the web base for OAuth; the Web API is under `/api/`. */
export function slackUrls(env: NodeJS.ProcessEnv = process.env): { web: string; api: string } {
  const web = (env.SLACK_URL || 'https://slack.com').replace(/\/+$/, '');
  return { web, api: `${web}/api/` };
}

export interface SlackChannel {
  id: string;
  name: string;
  isPrivate: boolean;
  isMember: boolean;
  isArchived: boolean;
}

const silent = { debug() {}, info() {}, warn() {}, error() {}, setLevel() {}, getLevel: () => LogLevel.ERROR, setName() {} };

export function slackClient(token: string, fetch: OutboundFetch, env: NodeJS.ProcessEnv = process.env): WebClient {
  return new WebClient(token, {
    slackApiUrl: slackUrls(env).api,
    fetch: ((url, init) => fetch(url, init as RequestInit)) as FetchFunction,
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    timeout: 10_000,
    logger: silent,
    logLevel: LogLevel.ERROR,
  });
}

export function slackUpstream(env: NodeJS.ProcessEnv = process.env): Upstream {
  return { product: 'Slack', origin: slackUrls(env).web };
}

const TOKEN_ERRORS = new Set(['invalid_auth', 'not_authed', 'token_revoked', 'token_expired', 'account_inactive', 'no_permission']);

/** The Slack error code of a failed call (`not_in_channel`, `channel_not_found`…), or a short name for transport failures. */
export function slackErrorCode(error: unknown): string {
  if (error instanceof WebAPIPlatformError) return error.data.error;
  if (error instanceof WebAPIRateLimitedError) return 'ratelimited';
  if (error instanceof WebAPIHTTPError) return `http_${error.statusCode}`;
  return 'request_failed';
}

/** A sentence for a failed call; `what` says what was asked ("auth.test", "posting to #alerts"). */
export function describeSlackError(error: unknown, what: string, env: NodeJS.ProcessEnv = process.env): string {
  const upstream = slackUpstream(env);
  if (error instanceof WebAPIPlatformError) {
    const code = error.data.error;
    if (TOKEN_ERRORS.has(code)) return `Slack rejected the token (${code}): the OpenTrace app was uninstalled from the workspace or its token revoked. Connect Slack again.`;
    if (code === 'missing_scope') {
      const needed = isObject(error.data) && typeof (error.data as Record<string, unknown>).needed === 'string' ? ` (needs ${String((error.data as Record<string, unknown>).needed)})` : '';
      return `Slack refused ${what}: the OpenTrace app lacks a permission${needed}. Connect Slack again to grant it.`;
    }
    return `Slack refused ${what} (${code}).`;
  }
  if (error instanceof WebAPIRateLimitedError) return `Slack is rate-limiting requests (429 Too Many Requests): try again in ${error.retryAfter} s.`;
  if (error instanceof WebAPIHTTPError) return `Slack answered ${what} with ${statusLabel(error.statusCode)}. This is a server-side error: try again later.`;
  if (error instanceof WebAPIRequestError) return describeFetchError(upstream, error.original) ?? `Could not reach Slack at ${upstream.origin} for ${what}.`;
  return `Calling Slack for ${what} failed (${(error as Error | null)?.name ?? 'error'}).`;
}

function channelOf(value: unknown): SlackChannel | undefined {
  if (!isObject(value) || typeof value.id !== 'string') return undefined;
  return {
    id: value.id,
    name: typeof value.name === 'string' ? value.name : value.id,
    isPrivate: value.is_private === true,
    isMember: value.is_member === true,
    isArchived: value.is_archived === true,
  };
}

export const isChannelId = (ref: string) => /^[CGD][A-Z0-9]{6,20}$/.test(ref);

/**
 * Resolves channel ids (conversations.info) and names (conversations.list, public and private,
 * up to 2,000 channels). Unresolvable references come back in `missing` with Slack's reason.
 */
export async function resolveChannels(client: WebClient, refs: readonly string[]): Promise<{ found: Map<string, SlackChannel>; missing: Map<string, string> }> {
  const found = new Map<string, SlackChannel>();
  const missing = new Map<string, string>();
  const names = refs.filter((ref) => !isChannelId(ref));
  for (const id of refs.filter(isChannelId)) {
    try {
      const answer = await client.conversations.info({ channel: id });
      const channel = channelOf(answer.channel);
      if (channel) found.set(id, channel);
      else missing.set(id, 'channel_not_found');
    } catch (error) {
      if (error instanceof WebAPIPlatformError && error.data.error === 'channel_not_found') missing.set(id, 'channel_not_found');
      else throw error;
    }
  }
  if (names.length > 0) {
    const wanted = new Map(names.map((ref) => [ref.replace(/^#/, '').toLowerCase(), ref]));
    let cursor: string | undefined;
    for (let page = 0; page < 10 && wanted.size > 0; page++) {
      const answer = await client.conversations.list({ types: 'public_channel,private_channel', exclude_archived: true, limit: 200, ...(cursor ? { cursor } : {}) });
      for (const entry of answer.channels ?? []) {
        const channel = channelOf(entry);
        const ref = channel ? wanted.get(channel.name.toLowerCase()) : undefined;
        if (channel && ref) {
          found.set(ref, channel);
          wanted.delete(channel.name.toLowerCase());
        }
      }
      cursor = answer.response_metadata?.next_cursor || undefined;
      if (!cursor) break;
    }
    for (const ref of wanted.values()) missing.set(ref, 'channel_not_found');
  }
  return { found, missing };
}
