/**
 * What every form-connected integration's live check shares (Grafana, Jaeger, OpenSearch, and any
 * later one that talks to a user-supplied URL), so the three do not each grow their own copy:
 *
 * - `CheckList` runs named checks in order and turns every failure into a `{ name, ok: false,
 *   detail }` whose detail a person can act on. Every detail is scrubbed of the connection's
 *   secrets. `OutboundBlockedError` is the one error it lets through: the URL was refused by the
 *   outbound policy before anything was contacted, which the API answers as a 400 on the URL.
 * - Sentences for the failure classes, so they read the same everywhere: unreachable, timed out,
 *   rate-limited (429), upstream server error (5xx), anything else unexpected.
 * - Zod pieces for the fields the three forms share (a service URL, a secret string).
 * - `readBody` (bounded read, JSON when it is JSON) and `joinUrl` (keeps a base path such as a
 *   reverse proxy's `/grafana`).
 */
import { STATUS_CODES } from 'node:http';
import { z } from 'zod';
import { OutboundBlockedError, OutboundTimeoutError, OutboundUnreachableError } from '#platform/outbound.ts';
import type { Logger, VerifyCheck, VerifyResult } from './types.ts';

/** Thrown inside a check step: the check fails with this message as its detail. */
export class CheckFailure extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'CheckFailure';
  }
}

/** Who a detail talks about: the product's name and the origin the user configured. */
export interface Upstream {
  /** "Grafana", "Jaeger", "OpenSearch". */
  product: string;
  /** The configured URL as the user wrote it, without a trailing slash (`https://grafana.acme.dev/grafana`). */
  origin: string;
}

// ---------------------------------------------------------------------------------------------
// Zod pieces

const USERINFO = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i;

/**
 * A service base URL: http(s), no user:password@ (credentials have their own fields), no query
 * or fragment. A path is allowed (a server behind a reverse proxy at `/grafana`). Whether plain
 * http is allowed is the outbound policy's call at check time (only on the local stack).
 */
export function serviceUrlSchema(example: string) {
  return z
    .url({ protocol: /^https?$/, error: `url must be an http(s) URL such as ${example}` })
    .max(2048, 'url must be at most 2048 characters')
    .refine((value) => !USERINFO.test(value), 'url must not contain a user name or password: put credentials in the credentials fields')
    .refine((value) => !/[?#]/.test(value), 'url must not have a query string or fragment: give the base URL only')
    .describe(`Base URL, e.g. ${example}`);
}

/** A required string field with "is required" / "must be a string" messages. */
export function requiredString(field: string) {
  return z.string({ error: (issue) => (issue.input === undefined ? `${field} is required` : `${field} must be a string`) });
}

/** A pasted token or key: surrounding whitespace (a copied newline) is trimmed; no inner whitespace. */
export function secretTokenSchema(field: string) {
  return requiredString(field)
    .trim()
    .min(1, `${field} must not be empty`)
    .max(8192, `${field} must be at most 8192 characters`)
    .regex(/^\S+$/, `${field} must not contain spaces or line breaks`);
}

// ---------------------------------------------------------------------------------------------
// URLs and bodies

/** Strips trailing slashes, for details and for joining. */
export function baseOf(url: string): string {
  return url.replace(/\/+$/, '');
}

/** `joinUrl('https://x/grafana/', 'api/health')` → `https://x/grafana/api/health` (the base path is kept). */
export function joinUrl(base: string, path: string): URL {
  return new URL(path.replace(/^\/+/, ''), `${baseOf(base)}/`);
}

export interface ReadBody {
  status: number;
  contentType: string;
  text: string;
  /** The parsed body when it is JSON (whatever the content type says), else undefined. */
  json: unknown;
  /** True when the body was longer than the limit and only its start was read. */
  truncated: boolean;
}

/** Reads at most `maxBytes` of a response (a check never needs more) and parses JSON if it is JSON. */
export async function readBody(response: Response, maxBytes = 4 * 1024 * 1024): Promise<ReadBody> {
  const contentType = response.headers.get('content-type') ?? '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  const reader = response.body?.getReader();
  if (reader) {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
      if (size > maxBytes) {
        truncated = true;
        await reader.cancel();
        break;
      }
    }
  }
  const text = Buffer.concat(chunks).toString('utf8');
  let json: unknown;
  if (!truncated && /^\s*[[{]/.test(text)) {
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
  }
  return { status: response.status, contentType, text, json, truncated };
}

/**
 * " after redirecting to https://sso.example.com/login" when the answer came from somewhere else
 * than asked (a login page in front of the server is the usual reason), else "".
 */
export function redirectNote(requested: URL, response: Response): string {
  if (!response.url) return '';
  let final: URL;
  try {
    final = new URL(response.url);
  } catch {
    return '';
  }
  if (final.origin === requested.origin && final.pathname === requested.pathname) return '';
  return ` after redirecting to ${final.origin}${final.pathname}`;
}

export function isHtml(body: ReadBody): boolean {
  return /text\/html/i.test(body.contentType) || /^\s*<(!doctype|html)/i.test(body.text);
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), if it says. */
export function retryAfterSeconds(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

/**
 * A short message the upstream gave with an error, from the usual JSON shapes (`message`,
 * `error`, `error.message`, `error.reason`, Elasticsearch-style `error.root_cause[0].reason`), or
 * a short plain-text body. One line, at most 200 characters. Callers redact secrets (CheckList does).
 */
export function upstreamMessage(body: ReadBody | undefined): string | undefined {
  if (!body) return undefined;
  const json = body.json;
  let message: unknown;
  if (isObject(json)) {
    const error = json.error;
    if (typeof json.message === 'string') message = json.message;
    else if (typeof error === 'string') message = error;
    else if (isObject(error)) {
      const rootCause = Array.isArray(error.root_cause) && isObject(error.root_cause[0]) ? error.root_cause[0].reason : undefined;
      message = error.message ?? error.reason ?? rootCause;
    }
  } else if (!isHtml(body) && body.text.trim() && body.text.length < 500) {
    message = body.text;
  }
  if (typeof message !== 'string' || !message.trim()) return undefined;
  const line = message.replace(/\s+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 197)}…` : line;
}

/** ` It said: "…".` with the upstream's own message, or "" when it gave none. */
export function upstreamSaid(body: ReadBody | undefined): string {
  const message = upstreamMessage(body);
  return message ? ` It said: "${message}".` : '';
}

export function statusLabel(status: number): string {
  const text = STATUS_CODES[status];
  return text ? `${status} ${text}` : String(status);
}

// ---------------------------------------------------------------------------------------------
// Failure sentences

/** The upstream is rate-limiting us. */
export function rateLimitedDetail(upstream: Upstream, retryAfter: number | undefined): string {
  const wait = retryAfter !== undefined ? `try again in ${retryAfter} s` : 'try again in a minute';
  return `${upstream.product} at ${upstream.origin} is rate-limiting requests (429 Too Many Requests): ${wait}.`;
}

/** The upstream (or a proxy in front of it) failed on its side. */
export function serverErrorDetail(upstream: Upstream, status: number, body?: ReadBody): string {
  const proxy = status === 502 || status === 503 || status === 504 ? ' (a proxy or load balancer in front of it may be reporting that it is down)' : '';
  return `${upstream.product} at ${upstream.origin} failed with ${statusLabel(status)}${proxy}. This is a server-side error, not a problem with your settings: try again later, and check ${upstream.product}'s logs if it persists.${upstreamSaid(body)}`;
}

/**
 * The generic answer for a status a check did not handle itself: 429, 5xx, or anything else
 * unexpected. Checks handle 401/403/404 first, because what those mean depends on the product.
 */
export function unexpectedStatusDetail(upstream: Upstream, body: ReadBody, headers: Headers, path: string): string {
  if (body.status === 429) return rateLimitedDetail(upstream, retryAfterSeconds(headers.get('retry-after')));
  if (body.status >= 500) return serverErrorDetail(upstream, body.status, body);
  return `${upstream.product} at ${upstream.origin} answered ${statusLabel(body.status)} to ${path}, which OpenTrace did not expect.${upstreamSaid(body)}`;
}

/** Credentials rejected (401). `noun`: "the token", "the credentials", "the auth header". */
export function rejectedDetail(upstream: Upstream, noun: string, status: number | string, body?: ReadBody, hint = ''): string {
  return `${upstream.product} rejected ${noun} (${status}).${hint ? ` ${hint}` : ''}${upstreamSaid(body)}`;
}

const CERTIFICATE_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ERR_TLS_CERT_ALTNAME_INVALID/;

/** Why a host could not be reached, from a system error code (ENOTFOUND, ECONNREFUSED, a TLS code…). */
export function unreachableDetail(upstream: Upstream, code: string | undefined): string {
  const at = `Could not reach ${upstream.product} at ${upstream.origin}${code ? ` (${code})` : ''}`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `${at}: the host name does not resolve. Check the URL for typos, and that the name is public DNS (OpenTrace cannot resolve names of your private network).`;
  if (code === 'ECONNREFUSED') return `${at}: nothing accepts connections on that port. Check the port in the URL and that ${upstream.product} is running.`;
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET') return `${at}: the connection was closed before an answer. Check that the URL's scheme (http/https) and port match the server, and that a firewall lets OpenTrace in.`;
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return `${at}: no route to the host. Check that the server is reachable from the internet (or from OpenTrace's allow-listed addresses).`;
  if (code && CERTIFICATE_CODES.test(code)) return `${at}: its TLS certificate is not trusted. OpenTrace needs a certificate from a public certificate authority that matches the host name.`;
  if (code && /SSL|TLS|EPROTO/.test(code)) return `${at}: the TLS handshake failed. If the server does not use TLS, use http:// (allowed on the local stack only); otherwise check its TLS setup.`;
  return `${at}. Check the URL and that the server accepts connections from OpenTrace (firewall, allow-list).`;
}

/** The upstream did not answer in time. */
export function timeoutDetail(upstream: Upstream, seconds: number | undefined): string {
  const within = seconds !== undefined ? ` within ${seconds} s` : ' in time';
  return `Timed out: ${upstream.product} at ${upstream.origin} did not answer${within}. Check that the URL and port are right and that the server accepts connections from OpenTrace (firewall, allow-list); a server under heavy load can also be this slow.`;
}

/**
 * A detail for an error thrown by ctx.fetch (safeFetch): timeout or unreachable. Undefined for
 * anything else (the caller decides). OutboundBlockedError is never described here: it propagates.
 */
export function describeFetchError(upstream: Upstream, error: unknown): string | undefined {
  if (error instanceof OutboundTimeoutError) {
    const seconds = /within (\d+) s/.exec(error.message)?.[1];
    return timeoutDetail(upstream, seconds === undefined ? undefined : Number(seconds));
  }
  if (error instanceof OutboundUnreachableError) {
    return unreachableDetail(upstream, /\(([A-Z0-9_]+)\)\s*$/.exec(error.message)?.[1]);
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Secrets never leave in a detail

/** Replaces every occurrence of each secret (3+ characters; shorter ones cannot be told apart from text) with "[redacted]". */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const secret of secrets) {
    if (!secret || secret.length < 3) continue;
    out = out.split(secret).join('[redacted]');
  }
  return out;
}

/** The secret strings of a credentials object (every string value, nested objects included). */
export function secretsOf(credentials: unknown): string[] {
  if (typeof credentials === 'string') return [credentials];
  if (Array.isArray(credentials)) return credentials.flatMap(secretsOf);
  if (isObject(credentials)) return Object.values(credentials).flatMap(secretsOf);
  return [];
}

// ---------------------------------------------------------------------------------------------
// Running checks

export interface Passed<T> {
  detail: string;
  value: T;
}

export type Outcome<T> = { ok: true; value: T } | { ok: false };

/**
 * The time all of one verify's requests may take together. The connect API answers synchronously
 * behind API Gateway's 29 s integration timeout, and still has to store the connection after the
 * check: each request is bounded by the outbound policy, and the whole check by this.
 */
export const VERIFY_BUDGET_MS = 25_000;

export interface CheckListOptions {
  upstream: Upstream;
  /** Strings that must never appear in a detail (token, password, header value…). */
  secrets: readonly (string | undefined)[];
  logger?: Logger;
  /** Overall time budget (default VERIFY_BUDGET_MS). */
  budgetMs?: number;
}

/**
 * Runs a connector's checks. A step returns `{ detail, value }` when it passes and throws
 * CheckFailure (or lets a ctx.fetch error through) when it fails. Checks keep the order `run`
 * was called in, also when they run concurrently. Pass `signal` to every ctx.fetch (and bound
 * other calls by `remainingMs()`) so the whole verify stays within its budget.
 */
export class CheckList {
  readonly checks: VerifyCheck[] = [];
  /** Aborts when the budget is spent: pass it as ctx.fetch's `signal`. */
  readonly signal: AbortSignal;
  readonly #upstream: Upstream;
  readonly #secrets: readonly (string | undefined)[];
  readonly #logger: Logger | undefined;
  readonly #budgetMs: number;
  readonly #deadline: number;

  constructor(options: CheckListOptions) {
    this.#upstream = options.upstream;
    this.#secrets = options.secrets;
    this.#logger = options.logger;
    this.#budgetMs = options.budgetMs ?? VERIFY_BUDGET_MS;
    this.#deadline = Date.now() + this.#budgetMs;
    this.signal = AbortSignal.timeout(this.#budgetMs);
  }

  get ok(): boolean {
    return this.checks.every((check) => check.ok);
  }

  /** Milliseconds left of the budget (at least 1). */
  remainingMs(): number {
    return Math.max(1, this.#deadline - Date.now());
  }

  async run<T>(name: string, step: () => Promise<Passed<T>>): Promise<Outcome<T>> {
    const index = this.checks.length;
    this.checks.push({ name, ok: false, detail: 'not finished' });
    const settle = (ok: boolean, detail: string) => {
      this.checks[index] = { name, ok, detail: redact(detail, this.#secrets) };
    };
    try {
      const passed = await step();
      settle(true, passed.detail);
      return { ok: true, value: passed.value };
    } catch (error) {
      if (error instanceof OutboundBlockedError) throw error;
      let detail: string;
      if (error instanceof CheckFailure) detail = error.message;
      else if (error instanceof OutboundTimeoutError && this.signal.aborted) {
        detail = `Timed out: the checks of ${this.#upstream.product} at ${this.#upstream.origin} took more than ${Math.round(this.#budgetMs / 1000)} s in all. The server answers too slowly for OpenTrace: check its load, and that the URL points at it directly.`;
      } else {
        detail = describeFetchError(this.#upstream, error) ?? '';
        if (!detail) {
          this.#logger?.warn('unexpected error in a connection check', { check: name, errorName: (error as Error | null)?.name, message: redact(String((error as Error | null)?.message), this.#secrets) });
          detail = `The ${name} check of ${this.#upstream.product} at ${this.#upstream.origin} failed unexpectedly (${(error as Error | null)?.name ?? 'error'}: ${(error as Error | null)?.message ?? String(error)}). Try again; if it persists, contact OpenTrace support.`;
        }
      }
      settle(false, detail);
      return { ok: false };
    }
  }

  result(discovered?: Record<string, unknown>): VerifyResult {
    return { ok: this.ok, checks: this.checks, ...(discovered ? { discovered } : {}) };
  }
}

/** Runs `task` over `items` with at most `concurrency` at a time; answers in item order. */
export async function mapConcurrent<T, R>(items: readonly T[], concurrency: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}
