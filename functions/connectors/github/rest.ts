/**
 * The sync's GitHub REST client: @octokit/rest with @octokit/plugin-throttling and
 * @octokit/plugin-retry, on the connection's token and the slice's fetch.
 *
 * - Requests go through the SyncContext's fetch: the outbound guard (https only, no private
 *   addresses, redirects checked; a GitHub Enterprise GITHUB_API_URL gets the same checks as any
 *   user-influenced URL) and the run's request count. A tarball's 302 to its short-lived download
 *   URL is followed there, without the token (another origin).
 * - Rate limits: the throttling plugin reads `x-ratelimit-*`, `retry-after` and GitHub's
 *   secondary-limit answers. A short wait (≤ `maxInlineWaitSeconds`, and well inside the slice's
 *   time) is waited in-process and the request retried; a longer one ends the slice with
 *   `RateLimitWait`, whose seconds the sync returns as `waitSeconds` so the state machine's Wait
 *   state waits instead of a Lambda. The retry plugin retries 5xx answers with backoff.
 * - Conditional requests: `get(url, { etag })` sends `If-None-Match` and answers `notModified`
 *   on a 304, which GitHub does not charge against the primary limit. Every other answer is
 *   counted with `ctx.countRateLimited` (the run's `stats.rateLimitedRequests`).
 * - Tokens: the token is asked for per request; a 401 asks the token source again with the
 *   refused token (another process may have rotated it) and retries once.
 * - Pagination follows `Link: rel="next"` only on the API's own origin (the token must not travel).
 */
import { Octokit } from '@octokit/rest';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import { heldBody } from '#platform/outbound.ts';
import type { Logger, OutboundFetch } from '../types.ts';
import { GITHUB_API_VERSION, nextLink } from './api.ts';

const GitHubOctokit = Octokit.plugin(throttling, retry);
type GitHubClient = InstanceType<typeof GitHubOctokit>;
interface RawResponse {
  status: number;
  headers: Record<string, string | undefined>;
  data: unknown;
}
/** octokit.request with a full options object (absolute URLs from Link headers), as @octokit/request accepts it. */
type RawRequest = (options: Record<string, unknown>) => Promise<RawResponse>;

/** A rate limit asks for a longer wait than this slice should spend: continue after `waitSeconds`. */
export class RateLimitWait extends Error {
  readonly waitSeconds: number;
  constructor(waitSeconds: number, kind: string) {
    super(`GitHub's ${kind} rate limit asks to wait ${waitSeconds} s`);
    this.name = 'RateLimitWait';
    this.waitSeconds = waitSeconds;
  }
}

/** GitHub answered something the sync cannot go on with (after the retries). The message names the request. */
export class GitHubRequestError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'UpstreamFailedError';
    this.status = status;
  }
}

export interface TokenSource {
  token(): Promise<string>;
  /** The token was refused (401): get another (re-read, refreshed if it is still the refused one). */
  renew(rejected: string): Promise<void>;
}

export interface GitHubRestOptions {
  baseUrl: string;
  /** The slice's counted, guarded fetch. */
  fetch: OutboundFetch;
  tokens: TokenSource;
  logger: Logger;
  /** Milliseconds left in the slice. */
  remainingMs: () => number;
  /** Counts answers charged against the rate limit. */
  countRateLimited: (count?: number) => void;
  /** Throttling groups are per connection (GitHub's limits are per token). */
  id: string;
  /** Waits up to this long in-process; longer waits are handed to the state machine. @default 60 */
  maxInlineWaitSeconds?: number;
  /** Milliseconds per second of `retry-after` / backoff (tests shorten it). @default 1000 */
  retryAfterBaseMs?: number;
  /** Retries of a 5xx answer. @default 3 */
  retries?: number;
}

export type Answer<T> = { notModified: true; etag: string | undefined } | { notModified: false; data: T; etag: string | undefined; next: string | undefined; status: number };

interface RequestFailure {
  status?: number;
  message?: string;
  response?: { headers?: Record<string, string | undefined>; data?: unknown };
}

/** Requests for archives stream for longer than an API call: they get the slice's time. */
const API_TIMEOUT_MS = 30_000;

export class GitHubRest {
  readonly octokit: GitHubClient;
  readonly baseUrl: string;
  readonly #origin: string;
  #pendingWait: { seconds: number; kind: string } | undefined;

  constructor(options: GitHubRestOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#origin = new URL(this.baseUrl).origin;
    const maxInline = options.maxInlineWaitSeconds ?? 60;
    const base = options.retryAfterBaseMs ?? 1000;
    const decide = (kind: string) => (retryAfter: number, request: { method?: string; url?: string }, _octokit: unknown, retryCount: number) => {
      const waitMs = retryAfter * base;
      // Wait here when it is short and leaves most of the slice; a second hit on the same request hands over.
      if (retryCount < 2 && retryAfter <= maxInline && waitMs < options.remainingMs() / 2) {
        options.logger.info('github rate limit: waiting in-process', { kind, retryAfter, retryCount, url: request.url });
        return true;
      }
      options.logger.info('github rate limit: handing the wait to the state machine', { kind, retryAfter, url: request.url });
      this.#pendingWait = { seconds: Math.max(this.#pendingWait?.seconds ?? 0, Math.ceil(retryAfter)), kind };
      return false;
    };
    const countingFetch: OutboundFetch = async (url, init) => {
      const archive = /\/(tarball|zipball)\//.test(String(url));
      const timeoutMs = archive ? Math.max(API_TIMEOUT_MS, options.remainingMs() - 10_000) : API_TIMEOUT_MS;
      const response = await options.fetch(url, { ...init, timeoutMs });
      // Every answer is counted: 0 for a 304, so a pass of only 304s still reports its 0.
      options.countRateLimited(response.status === 304 ? 0 : 1);
      return archive && response.status === 200 ? new Response(heldBody(response), response) : response;
    };
    this.octokit = new GitHubOctokit({
      baseUrl: this.baseUrl,
      userAgent: 'OpenTrace',
      request: { fetch: countingFetch },
      // The request log reports every non-2xx answer (304s included) as an error; the sync reports what matters itself.
      log: { debug: () => undefined, info: () => undefined, warn: (message: string) => options.logger.warn(`octokit: ${message}`), error: (message: string) => options.logger.debug(`octokit: ${message}`) },
      throttle: {
        id: options.id,
        retryAfterBaseValue: base,
        fallbackSecondaryRateRetryAfter: 60,
        onRateLimit: decide('primary'),
        onSecondaryRateLimit: decide('secondary'),
      },
      // 429 is the throttling plugin's (rate limits), never a blind retry's.
      retry: { retries: options.retries ?? 3, retryAfterBaseValue: base, doNotRetry: [400, 401, 403, 404, 409, 410, 422, 429, 451] },
    });
    this.octokit.hook.before('request', async (request) => {
      request.headers.authorization = `Bearer ${await options.tokens.token()}`;
      request.headers['x-github-api-version'] = GITHUB_API_VERSION;
    });
    this.octokit.hook.error('request', async (error, request) => {
      const failure = error as RequestFailure;
      const marker = request.request as { renewedToken?: boolean } | undefined;
      if (failure.status !== 401 || marker?.renewedToken) throw error;
      const refused = String(request.headers.authorization ?? '').replace(/^(?:bearer|token)\s+/i, '');
      await options.tokens.renew(refused);
      return this.#request({ ...request, request: { ...request.request, renewedToken: true } });
    });
  }

  #request(options: Record<string, unknown>): Promise<RawResponse> {
    return (this.octokit.request as unknown as RawRequest)(options);
  }

  /** An absolute URL on the API for a path (`repos/acme/x/branches?per_page=100`). */
  url(path: string): string {
    return `${this.baseUrl}/${path.replace(/^\/+/, '')}`;
  }

  /**
   * One GET; `etag` makes it conditional. `accept404`: undefined for what is not there (404, 410
   * Gone: issues turned off; 409: an empty repository). Throws RateLimitWait, or
   * GitHubRequestError for an answer the sync cannot use.
   */
  async get<T>(url: string, options: { etag?: string | undefined; accept404?: boolean } = {}): Promise<Answer<T> | undefined> {
    if (new URL(url).origin !== this.#origin) throw new GitHubRequestError(0, `GitHub pointed to ${new URL(url).origin}, which is not its API (${this.baseUrl}); OpenTrace does not send the token there.`);
    try {
      const response = await this.#request({ method: 'GET', url, headers: options.etag ? { 'if-none-match': options.etag } : {} });
      const headers = response.headers;
      return { notModified: false, data: response.data as T, etag: headers.etag, next: this.#next(headers.link), status: response.status };
    } catch (error) {
      const failure = error as RequestFailure;
      if (failure.status === 304) return { notModified: true, etag: failure.response?.headers?.etag ?? options.etag };
      this.#throwPendingWait();
      if (options.accept404 && (failure.status === 404 || failure.status === 409 || failure.status === 410)) return undefined;
      throw this.#failure(failure, url);
    }
  }

  /** The tar.gz of a commit: GitHub answers 302 to a short-lived URL, followed by the fetch (without the token). */
  async tarball(fullName: string, sha: string, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    const url = this.url(`repos/${fullName}/tarball/${sha}`);
    try {
      const response = await this.#request({ method: 'GET', url, request: { parseSuccessResponseBody: false, ...(signal ? { signal } : {}) } });
      const body = response.data as unknown as ReadableStream<Uint8Array> | null;
      if (!body) throw new GitHubRequestError(response.status, `GitHub sent no archive for ${fullName}@${sha.slice(0, 7)}.`);
      return body;
    } catch (error) {
      if (error instanceof GitHubRequestError) throw error;
      this.#throwPendingWait();
      throw this.#failure(error as RequestFailure, url);
    }
  }

  #throwPendingWait(): void {
    const pending = this.#pendingWait;
    if (!pending) return;
    this.#pendingWait = undefined;
    throw new RateLimitWait(pending.seconds, pending.kind);
  }

  #next(link: string | undefined): string | undefined {
    const next = nextLink(link ?? null);
    if (!next) return undefined;
    // Never follow a next link off the API's origin: the token would go with it.
    return new URL(next).origin === this.#origin ? next : undefined;
  }

  #failure(failure: RequestFailure, url: string): GitHubRequestError {
    const status = failure.status ?? 0;
    const path = new URL(url).pathname;
    const said = githubSaid(failure.response?.data);
    if (status === 401) return new GitHubRequestError(401, `GitHub refused the token for ${path} (401 Unauthorized)${said}: connect GitHub again.`);
    if (status === 403 || status === 429) return new GitHubRequestError(status, `GitHub refused ${path} (${status})${said}.`);
    if (status >= 500 || status === 0) return new GitHubRequestError(status, `GitHub answered ${status || 'nothing'} for ${path} after retries${status === 0 && failure.message ? `: ${failure.message.slice(0, 200)}` : ''}.`);
    return new GitHubRequestError(status, `GitHub answered ${status} for ${path}${said}.`);
  }
}

/**
 * ` (GitHub said: …)` from an error body: its `message`, and for a 422 the `errors` that say what
 * was refused (`{"resource":"Label","field":"color","code":"invalid"}` → `Label.color: invalid`;
 * a `custom` one carries its own `message`). Nothing when the body has no message.
 */
function githubSaid(data: unknown): string {
  if (!data || typeof data !== 'object') return '';
  const { message, errors } = data as { message?: unknown; errors?: unknown };
  if (typeof message !== 'string') return '';
  const details = (Array.isArray(errors) ? errors : [])
    .map((error: unknown) => {
      if (typeof error === 'string') return error;
      if (!error || typeof error !== 'object') return '';
      const { resource, field, code, message: text } = error as Record<string, unknown>;
      if (typeof text === 'string' && text) return text;
      const what = [resource, field].filter((part): part is string => typeof part === 'string' && part !== '').join('.');
      return [what, typeof code === 'string' ? code : ''].filter(Boolean).join(': ');
    })
    .filter(Boolean)
    .slice(0, 5);
  const text = details.length > 0 ? `${message} — ${details.join('; ')}` : message;
  return ` (GitHub said: ${text.replace(/\s+/g, ' ').trim().slice(0, 200)})`;
}
