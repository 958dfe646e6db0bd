/**
 * The GitLab REST client of the sync: `@gitbeaker/rest` for the API surface (endpoints, options,
 * response types), over OpenTrace's own transport, plugged in as gitbeaker's `requesterFn`:
 *
 * - every request goes through `ctx.fetch`, the outbound-safety fetch (the base URL of a
 *   self-managed instance is user input: https only in the cloud, no private addresses, checked
 *   at connect time, redirects re-checked) and is counted in the run's stats. gitbeaker's own
 *   requester calls the global fetch (an `agent` option is its only hook), so it is not used;
 * - the token comes from a token function (`oauthToken: () => tokens.token()`, called by gitbeaker
 *   per request), backed by OAuthTokenManager: cached for the slice, refreshed under the
 *   connection's refresh lease when it would expire within the slice, renewed once on a 401;
 * - rate limits: `RateLimit-Remaining` / `-Reset` are tracked per instance (shared by the
 *   partitions running in one process) and a nearly spent quota waits for the reset; a 429 waits
 *   for `Retry-After`, else `RateLimit-Reset`, else a fallback backoff (1, 2, 4, 8 s), because
 *   GitLab.com sometimes sends neither. Short waits happen here; a longer one throws
 *   `GitLabWaitError` and the sync hands the wait to the state machine (`waitSeconds`);
 * - 502/503/504 are retried with backoff, then fail the slice (UpstreamFailedError);
 * - conditional requests: `If-None-Match` with a stored ETag, a 304 reported as `notModified`
 *   (GitLab counts a 304 against its rate limit, unlike GitHub: ETags save transfer and work,
 *   not quota).
 *
 * Lists are read one page per call (`maxPages: 1` and an explicit page, or keyset), so the sync
 * can stop at any page boundary and resume from a cursor: `list()` returns the items and the next
 * page (from the Link header, or `X-Next-Page`), whichever pagination the instance answered with.
 */
import { Gitlab } from '@gitbeaker/rest';
import { UpstreamFailedError, UpstreamRejectedError } from '#platform/errors.ts';
import { heldBody } from '#platform/outbound.ts';
import type { OutboundFetch } from '../types.ts';

export const PER_PAGE = 100;
/** Waits up to this long happen in the slice; longer ones go back to the state machine. */
export const MAX_INLINE_WAIT_MS = 10_000;
/** When a 429 says nothing about when to retry. */
export const FALLBACK_BACKOFF_MS = [1_000, 2_000, 4_000, 8_000];
/** The wait handed back after the inline fallback backoff ran out. */
export const FALLBACK_HANDBACK_SECONDS = 60;
const SERVER_ERROR_RETRIES = [1_000, 2_000, 4_000];
/** Below this many requests left in the window, wait for the reset (or hand it back). */
const QUOTA_RESERVE = 5;

/** GitLab asked us to wait longer than a slice should sleep: hand `seconds` to the state machine. */
export class GitLabWaitError extends Error {
  readonly seconds: number;
  constructor(seconds: number, reason: string) {
    super(`GitLab asked to wait ${seconds} s (${reason})`);
    this.name = 'GitLabWaitError';
    this.seconds = Math.max(1, Math.ceil(seconds));
  }
}

/** A GitLab answer the sync did not expect (404, 403…). The message never carries the token. */
export class GitLabApiError extends Error {
  readonly status: number;
  readonly path: string;
  constructor(status: number, path: string, said: string) {
    super(`GitLab answered ${status} to GET ${path}${said ? `: ${said}` : ''}`);
    this.name = 'GitLabApiError';
    this.status = status;
    this.path = path;
  }
}

export interface TokenSource {
  /** An access token valid for the rest of the slice. */
  token(): Promise<string>;
  /** The token was refused (401): get another one (re-read, else refresh). */
  renew(rejected: string): Promise<void>;
}

export interface GitLabClientOptions {
  baseUrl: string;
  fetch: OutboundFetch;
  tokens: TokenSource;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Time left in the slice: no inline wait may run past it. */
  remainingMs?: () => number;
  maxInlineWaitMs?: number;
  /**
   * Whose quota this is: GitLab's limits are per user, so the connection (default: the origin).
   * Clients with the same key in one process share what the instance said about it.
   */
  quotaKey?: string;
  /** Called for every request sent (retries included): GitLab charges each one, 304s too, against its limit. */
  onRequest?: () => void;
}

/** Where the next page starts: a page number, or a keyset token / id. */
export interface PageRef {
  page?: number;
  pageToken?: string;
  idAfter?: number;
}

export interface ListResult<T> {
  items: T[];
  next?: PageRef;
  etag?: string;
  notModified: boolean;
}

export interface LastResponse {
  status: number;
  headers: Record<string, string>;
}

interface ResourceOptions {
  url: string;
  headers: Record<string, string>;
  authHeaders: Record<string, () => Promise<string>>;
}

interface RequestOptions {
  searchParams?: Record<string, unknown>;
  asStream?: boolean;
  signal?: AbortSignal;
}

interface Quota {
  remaining?: number;
  resetAtMs?: number;
}

/** What the instances said about their rate limits, per quota key (a connection), shared by every client in this process. */
const quotas = new Map<string, Quota>();

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const snake = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function query(params: Record<string, unknown> | undefined): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params ?? {})) {
    if (value === undefined || value === null) continue;
    if (Array.isArray(value)) for (const item of value) search.append(`${snake(key)}[]`, String(item));
    else search.set(snake(key), String(value));
  }
  return search.toString();
}

/** The `rel="next"` URL of a Link header. */
export function nextLink(link: string | undefined | null): string | undefined {
  for (const part of (link ?? '').split(',')) {
    const match = /<([^>]+)>\s*;\s*rel="?next"?/.exec(part.trim());
    if (match) return match[1];
  }
  return undefined;
}

/** Retry-After in ms: delta-seconds or an HTTP date. */
export function retryAfterMs(value: string | null | undefined, now: number): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function messageOf(body: unknown): string {
  if (typeof body === 'string') return body.replace(/\s+/g, ' ').trim().slice(0, 200);
  if (body && typeof body === 'object') {
    const value = (body as Record<string, unknown>).message ?? (body as Record<string, unknown>).error;
    if (typeof value === 'string') return value.slice(0, 200);
    if (value !== undefined) return JSON.stringify(value).slice(0, 200);
  }
  return '';
}

export class GitLabClient {
  /** gitbeaker's resources, sending through this client. */
  readonly api: InstanceType<typeof Gitlab<false>>;
  readonly origin: string;
  /** Whose quota (and archive allowance) this client spends. */
  readonly quotaKey: string;
  /** Status and headers of the latest answer (the sync's calls run one at a time per client). */
  last: LastResponse | undefined;
  /** Requests this client sent (retries included). */
  requests = 0;
  readonly #options: GitLabClientOptions;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #maxInlineWaitMs: number;
  #etag: string | undefined;

  constructor(options: GitLabClientOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#sleep = options.sleep ?? realSleep;
    this.#maxInlineWaitMs = options.maxInlineWaitMs ?? MAX_INLINE_WAIT_MS;
    const base = options.baseUrl.replace(/\/+$/, '');
    this.origin = new URL(base).origin;
    this.quotaKey = options.quotaKey ?? this.origin;
    const requesterFn = (resource: ResourceOptions) => {
      const get = (endpoint: string, request: RequestOptions = {}) => this.#get(resource, endpoint, request);
      const refuse = async (endpoint: string) => {
        throw new Error(`The GitLab sync is read-only; it does not write to ${endpoint}.`);
      };
      return { get, post: refuse, put: refuse, patch: refuse, delete: refuse };
    };
    this.api = new Gitlab({ host: base, oauthToken: () => options.tokens.token(), requesterFn: requesterFn as never, queryTimeout: null });
  }

  /**
   * One page of a list. `call` gets the paging options to pass to the gitbeaker method (one page,
   * 100 items; `keyset`: GitLab's keyset pagination, which an instance without it ignores and
   * answers with page numbers: the next page says which).
   */
  async list<T>(call: (paging: Record<string, unknown>) => Promise<unknown>, at: PageRef | undefined, options: { keyset?: boolean; etag?: string } = {}): Promise<ListResult<T>> {
    const paging: Record<string, unknown> = { perPage: PER_PAGE, maxPages: 1, showExpanded: true };
    if (at?.pageToken !== undefined || at?.idAfter !== undefined || (options.keyset && at?.page === undefined)) {
      paging.pagination = 'keyset';
      if (at?.pageToken !== undefined) paging.pageToken = at.pageToken;
      if (at?.idAfter !== undefined) paging.idAfter = at.idAfter;
    } else {
      paging.page = at?.page ?? 1;
    }
    this.#etag = options.etag;
    let answer: unknown;
    try {
      answer = await call(paging);
    } finally {
      this.#etag = undefined;
    }
    const last = this.last;
    const etag = last?.headers.etag;
    if (last?.status === 304) return { items: [], notModified: true, ...(etag ? { etag } : {}) };
    const data = (answer as { data?: unknown })?.data ?? answer;
    const items = Array.isArray(data) ? (data as T[]) : [];
    const next = this.#nextPage(last);
    return { items, notModified: false, ...(next ? { next } : {}), ...(etag ? { etag } : {}) };
  }

  /** One object (`call` returns what gitbeaker answers with `showExpanded`), conditionally when an ETag is given. */
  async one<T>(call: () => Promise<unknown>, options: { etag?: string } = {}): Promise<{ data?: T; etag?: string; notModified: boolean }> {
    this.#etag = options.etag;
    let answer: unknown;
    try {
      answer = await call();
    } finally {
      this.#etag = undefined;
    }
    const etag = this.last?.headers.etag;
    if (this.last?.status === 304) return { notModified: true, ...(etag ? { etag } : {}) };
    const data = (answer as { data?: unknown })?.data ?? answer;
    return { data: data as T, notModified: false, ...(etag ? { etag } : {}) };
  }

  #nextPage(last: LastResponse | undefined): PageRef | undefined {
    if (!last) return undefined;
    const link = nextLink(last.headers.link);
    if (link) {
      let url: URL;
      try {
        url = new URL(link, this.origin);
      } catch {
        url = new URL('about:blank');
      }
      // Only the paging parameters are taken from the link: the token never goes to another origin.
      if (url.origin === this.origin) {
        const token = url.searchParams.get('page_token');
        if (token !== null) return { pageToken: token };
        const idAfter = url.searchParams.get('id_after');
        if (idAfter !== null && Number.isFinite(Number(idAfter))) return { idAfter: Number(idAfter) };
        const page = Number(url.searchParams.get('page'));
        if (Number.isInteger(page) && page > 0) return { page };
      }
    }
    const nextNumber = Number(last.headers['x-next-page']);
    if (last.headers['x-next-page'] && Number.isInteger(nextNumber) && nextNumber > 0) return { page: nextNumber };
    return undefined;
  }

  /** Waits `ms` in the slice when that is short, else throws GitLabWaitError (the sync hands the wait back). */
  async pause(ms: number, reason: string): Promise<void> {
    if (ms > 0) await this.#wait(ms, reason);
  }

  #remaining(): number {
    return this.#options.remainingMs?.() ?? Number.POSITIVE_INFINITY;
  }

  /** Waits `ms` here when it is short and fits the slice, else throws GitLabWaitError. */
  async #wait(ms: number, reason: string): Promise<void> {
    if (ms <= this.#maxInlineWaitMs && ms < this.#remaining() - 5_000) {
      await this.#sleep(ms);
      return;
    }
    throw new GitLabWaitError(ms / 1000, reason);
  }

  #observe(headers: Headers): void {
    const remaining = headers.get('ratelimit-remaining');
    const reset = headers.get('ratelimit-reset');
    if (remaining === null || !/^\d+$/.test(remaining)) return;
    const quota: Quota = { remaining: Number(remaining) };
    if (reset && /^\d+$/.test(reset)) quota.resetAtMs = Number(reset) * 1000;
    quotas.set(this.quotaKey, quota);
  }

  /** A nearly spent quota waits for its window to reset before the next request. */
  async #respectQuota(): Promise<void> {
    const quota = quotas.get(this.quotaKey);
    if (!quota || quota.remaining === undefined || quota.remaining > QUOTA_RESERVE || quota.resetAtMs === undefined) return;
    const wait = quota.resetAtMs - this.#now();
    if (wait <= 0) {
      quotas.delete(this.quotaKey);
      return;
    }
    await this.#wait(wait + 250, `RateLimit-Remaining ${quota.remaining}, resets at ${new Date(quota.resetAtMs).toISOString()}`);
    quotas.delete(this.quotaKey);
  }

  async #get(resource: ResourceOptions, endpoint: string, request: RequestOptions): Promise<{ body: unknown; headers: Record<string, string>; status: number }> {
    const base = resource.url.endsWith('/') ? resource.url : `${resource.url}/`;
    const url = new URL(endpoint, base);
    url.search = query(request.searchParams);
    const path = `${url.pathname}${url.search ? '?…' : ''}`;
    const etag = this.#etag;
    let renewed = false;
    let throttled = 0;
    let failures = 0;
    for (;;) {
      await this.#respectQuota();
      const headers: Record<string, string> = { accept: request.asStream ? '*/*' : 'application/json', ...resource.headers };
      let authorization = '';
      for (const [name, value] of Object.entries(resource.authHeaders)) {
        headers[name] = await value();
        if (name === 'authorization') authorization = headers[name];
      }
      if (etag) headers['if-none-match'] = etag;
      this.requests++;
      this.#options.onRequest?.();
      // Archives stream for as long as the slice allows; other answers are small.
      const timeoutMs = request.asStream ? Math.max(30_000, Math.min(this.#remaining() - 10_000, 15 * 60_000)) : 60_000;
      const response = await this.#options.fetch(url, { headers, timeoutMs });
      this.#observe(response.headers);
      const flat = Object.fromEntries(response.headers.entries());
      this.last = { status: response.status, headers: flat };

      if (response.status === 304) {
        await response.body?.cancel();
        return { body: null, headers: flat, status: 304 };
      }
      if (response.ok) {
        if (request.asStream) return { body: heldBody(response), headers: flat, status: response.status };
        const text = await response.text();
        const type = response.headers.get('content-type') ?? '';
        let body: unknown = text;
        if (type.includes('json') && text) {
          try {
            body = JSON.parse(text);
          } catch {
            throw new UpstreamFailedError(`GitLab answered GET ${path} with JSON that does not parse.`);
          }
        }
        return { body, headers: flat, status: response.status };
      }

      const token = authorization.replace(/^bearer\s+/i, '');
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text) as unknown;
      } catch {
        // not JSON: keep the text
      }
      // An upstream (or a proxy in front of it) that repeats the token must not put it in a message.
      const said = token ? messageOf(parsed).split(token).join('[redacted]') : messageOf(parsed);
      if (response.status === 401 && !renewed) {
        renewed = true;
        await this.#options.tokens.renew(token);
        continue;
      }
      if (response.status === 401) {
        throw new UpstreamRejectedError(`GitLab refused the connection's token (401${said ? `: ${said}` : ''}) even after a refresh: connect GitLab again.`);
      }
      if (response.status === 429) {
        const fromHeader = retryAfterMs(response.headers.get('retry-after'), this.#now());
        const reset = response.headers.get('ratelimit-reset');
        const fromReset = reset && /^\d+$/.test(reset) && response.headers.get('ratelimit-remaining') === '0' ? Math.max(1000, Number(reset) * 1000 - this.#now()) : undefined;
        const explicit = fromHeader ?? fromReset;
        if (explicit !== undefined) {
          await this.#wait(explicit, `429 on ${path}, Retry-After ${Math.ceil(explicit / 1000)} s`);
        } else {
          // Neither Retry-After nor RateLimit-Reset (GitLab.com does that): back off on our own.
          const backoff = FALLBACK_BACKOFF_MS[throttled];
          if (backoff === undefined) throw new GitLabWaitError(FALLBACK_HANDBACK_SECONDS, `429 on ${path} without Retry-After, ${throttled} retries`);
          await this.#wait(backoff, `429 on ${path} without Retry-After`);
        }
        throttled++;
        continue;
      }
      if (response.status >= 502 && response.status <= 504) {
        const backoff = SERVER_ERROR_RETRIES[failures++];
        if (backoff === undefined) throw new UpstreamFailedError(`GitLab answered ${response.status} to GET ${path} ${failures} times in a row; try again later.`);
        await this.#wait(backoff, `${response.status} on ${path}`);
        continue;
      }
      throw new GitLabApiError(response.status, path, said);
    }
  }
}
