/**
 * The few GitHub REST calls the connection check makes, with a user-to-server token: JSON
 * requests with GitHub's media type and API version, Link-header pagination that never follows a
 * link off the API's origin (the token must not travel elsewhere), and the rate-limit headers
 * (`x-ratelimit-remaining` / `-reset`, `retry-after`) turned into a sentence.
 */
import type { OutboundFetch } from '../types.ts';
import { CheckFailure, joinUrl, readBody, rejectedDetail, retryAfterSeconds, unexpectedStatusDetail, upstreamSaid, type ReadBody, type Upstream } from '../http-checks.ts';

export const GITHUB_API_VERSION = '2022-11-28';

export interface GitHubAnswer {
  body: ReadBody;
  headers: Headers;
}

/** The `rel="next"` URL of a Link header. */
export function nextLink(link: string | null): string | undefined {
  for (const part of (link ?? '').split(',')) {
    const match = /<([^>]+)>\s*;\s*rel="?next"?/.exec(part.trim());
    if (match) return match[1];
  }
  return undefined;
}

export class GitHubApi {
  readonly upstream: Upstream;
  readonly #base: string;
  readonly #token: string;
  readonly #fetch: OutboundFetch;
  readonly #signal: AbortSignal | undefined;

  constructor(base: string, token: string, fetch: OutboundFetch, signal?: AbortSignal) {
    this.#base = base;
    this.#token = token;
    this.#fetch = fetch;
    this.#signal = signal;
    this.upstream = { product: 'GitHub', origin: base };
  }

  async get(pathOrUrl: string): Promise<GitHubAnswer> {
    const url = /^https?:\/\//.test(pathOrUrl) ? new URL(pathOrUrl) : joinUrl(this.#base, pathOrUrl);
    if (url.origin !== new URL(this.#base).origin) throw new CheckFailure(`GitHub pointed to ${url.origin} for the next page, which is not its API (${this.#base}); OpenTrace does not send the token there.`);
    const response = await this.#fetch(url, {
      headers: { accept: 'application/vnd.github+json', authorization: `Bearer ${this.#token}`, 'x-github-api-version': GITHUB_API_VERSION, 'user-agent': 'OpenTrace' },
      ...(this.#signal ? { signal: this.#signal } : {}),
    });
    return { body: await readBody(response), headers: response.headers };
  }

  /** A CheckFailure for a non-200 answer, in GitHub's terms. */
  failure(answer: GitHubAnswer, path: string): CheckFailure {
    const { body, headers } = answer;
    if (body.status === 401) {
      return new CheckFailure(rejectedDetail(this.upstream, 'the token', '401 Unauthorized', body, 'The authorization was revoked or has expired: connect GitHub again.'));
    }
    if ((body.status === 403 || body.status === 429) && (headers.get('x-ratelimit-remaining') === '0' || headers.has('retry-after'))) {
      const retryAfter = retryAfterSeconds(headers.get('retry-after'));
      const reset = Number(headers.get('x-ratelimit-reset'));
      const wait = retryAfter !== undefined ? `in ${retryAfter} s` : Number.isFinite(reset) && reset > 0 ? `after ${new Date(reset * 1000).toISOString()}` : 'in a minute';
      return new CheckFailure(`GitHub is rate-limiting this token (${body.status}, ${headers.get('x-ratelimit-used') ?? '?'} of ${headers.get('x-ratelimit-limit') ?? '?'} requests used): try again ${wait}.`);
    }
    if (body.status === 403) return new CheckFailure(`GitHub refused ${path} (403 Forbidden): the OpenTrace GitHub App lacks a permission it needs.${upstreamSaid(body)}`);
    return new CheckFailure(unexpectedStatusDetail(this.upstream, body, headers, path));
  }
}
