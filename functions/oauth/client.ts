/**
 * The client side of OAuth 2 (RFC 6749, PKCE per RFC 7636), one implementation for every
 * provider: builds the authorization URL, exchanges a code, refreshes a token. What differs per
 * provider (endpoints, scopes, client authentication, error codes, answers with status 200 that
 * are errors) is data in an `OAuthClientConfig`, built by the provider descriptors under
 * functions/connectors/<type>/oauth.ts.
 *
 * Every failure is an `OAuthTokenError` whose `kind` drives the caller:
 *   invalid_grant  the code or refresh token is not (or no longer) valid: a refresh that keeps
 *                  getting this needs the user to reconnect;
 *   invalid_client the app's client id/secret (or redirect URI) is wrong: an operator problem;
 *   rejected       any other refusal of the request;
 *   unavailable    the provider failed, throttled, timed out or could not be reached: try later.
 * Messages never carry a token, code, verifier or client secret.
 */
import { OutboundBlockedError, OutboundTimeoutError, OutboundUnreachableError, safeFetch } from '#platform/outbound.ts';
import { isObject, readBody, redact, retryAfterSeconds, statusLabel } from '#connectors/http-checks.ts';
import type { OutboundFetch } from '#connectors/types.ts';

export interface OAuthClientConfig {
  /** "GitHub", "GitLab", "Slack": for messages. */
  product: string;
  clientId: string;
  clientSecret: string;
  authorizeUrl: string;
  tokenUrl: string;
  /** How the client authenticates at the token endpoint: form fields, or HTTP Basic (RFC 6749 §2.3.1). */
  clientAuth: 'body' | 'basic';
  /** Send a PKCE S256 challenge with the authorization request and the verifier with the code. */
  pkce: boolean;
  scopes?: readonly string[];
  /** RFC 6749 says a space; Slack wants commas. */
  scopeSeparator?: string;
  /** Extra authorization request parameters (`response_type=code` is always sent). */
  authorizeParams?: Record<string, string>;
  /** Provider error codes that mean "this code or refresh token is not valid" besides `invalid_grant`. */
  grantErrorCodes?: readonly string[];
  /** Provider error codes that mean "the app's credentials are wrong" besides `invalid_client`. */
  clientErrorCodes?: readonly string[];
}

/** A token endpoint's answer. `raw` is the whole JSON answer: it holds secrets, keep it in memory only. */
export interface TokenSet {
  accessToken: string;
  refreshToken?: string;
  expiresInSeconds?: number;
  refreshTokenExpiresInSeconds?: number;
  tokenType?: string;
  scope?: string;
  raw: Record<string, unknown>;
}

export type OAuthErrorKind = 'invalid_grant' | 'invalid_client' | 'rejected' | 'unavailable';

export class OAuthTokenError extends Error {
  readonly kind: OAuthErrorKind;
  /** The provider's own error code (`bad_refresh_token`, `invalid_grant`, `invalid_code`…), when it gave one. */
  readonly providerCode: string | undefined;
  readonly status: number | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(kind: OAuthErrorKind, message: string, details: { providerCode?: string; status?: number; retryAfterSeconds?: number } = {}) {
    super(message);
    this.name = 'OAuthTokenError';
    this.kind = kind;
    this.providerCode = details.providerCode;
    this.status = details.status;
    this.retryAfterSeconds = details.retryAfterSeconds;
  }
}

const STANDARD_CLIENT_ERRORS = ['invalid_client', 'unauthorized_client'];
const TOKEN_TIMEOUT_MS = 10_000;

/** A provider's error code or description, made safe to show: one short line of printable text. */
function cleanText(value: unknown, max = 200): string | undefined {
  if (typeof value !== 'string') return undefined;
  const line = value.replace(/[^\x20-\x7e]+/g, ' ').replace(/\s+/g, ' ').trim();
  if (!line) return undefined;
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

export class OAuthClient {
  readonly config: OAuthClientConfig;
  readonly #fetch: OutboundFetch;

  constructor(config: OAuthClientConfig, fetch: OutboundFetch = (url, init) => safeFetch(url, init)) {
    this.config = config;
    this.#fetch = fetch;
  }

  /** The URL to send the user's browser to. */
  authorizationUrl(input: { state: string; redirectUri: string; codeChallenge?: string }): string {
    const url = new URL(this.config.authorizeUrl);
    const params = url.searchParams;
    params.set('client_id', this.config.clientId);
    params.set('redirect_uri', input.redirectUri);
    params.set('response_type', 'code');
    params.set('state', input.state);
    if (this.config.scopes?.length) params.set('scope', this.config.scopes.join(this.config.scopeSeparator ?? ' '));
    if (this.config.pkce) {
      if (!input.codeChallenge) throw new Error(`${this.config.product} uses PKCE: a code challenge is required`);
      params.set('code_challenge', input.codeChallenge);
      params.set('code_challenge_method', 'S256');
    }
    for (const [name, value] of Object.entries(this.config.authorizeParams ?? {})) params.set(name, value);
    return url.toString();
  }

  /** Authorization code → tokens. */
  exchangeCode(input: { code: string; redirectUri: string; codeVerifier?: string }): Promise<TokenSet> {
    if (this.config.pkce && !input.codeVerifier) throw new Error(`${this.config.product} uses PKCE: the code verifier is required`);
    const form: Record<string, string> = { grant_type: 'authorization_code', code: input.code, redirect_uri: input.redirectUri };
    if (input.codeVerifier) form.code_verifier = input.codeVerifier;
    return this.#tokenRequest(form, 'authorization code', [input.code, input.codeVerifier]);
  }

  /** Refresh token → new tokens (with rotation, a new refresh token too; the old one is then dead). */
  refresh(input: { refreshToken: string }): Promise<TokenSet> {
    const form: Record<string, string> = { grant_type: 'refresh_token', refresh_token: input.refreshToken };
    return this.#tokenRequest(form, 'refresh token', [input.refreshToken]);
  }

  async #tokenRequest(form: Record<string, string>, what: string, sent: (string | undefined)[]): Promise<TokenSet> {
    const { product, clientId, clientSecret } = this.config;
    const headers: Record<string, string> = { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' };
    const body = new URLSearchParams(form);
    if (this.config.clientAuth === 'basic') {
      const user = encodeURIComponent(clientId);
      const password = encodeURIComponent(clientSecret);
      headers.authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    } else {
      body.set('client_id', clientId);
      body.set('client_secret', clientSecret);
    }
    const secrets = [clientSecret, ...sent];
    const origin = new URL(this.config.tokenUrl).origin;

    let response: Response;
    try {
      response = await this.#fetch(this.config.tokenUrl, { method: 'POST', headers, body: body.toString(), timeoutMs: TOKEN_TIMEOUT_MS });
    } catch (error) {
      if (error instanceof OutboundBlockedError) throw error;
      const reason =
        error instanceof OutboundTimeoutError ? 'did not answer in time' : error instanceof OutboundUnreachableError ? 'could not be reached' : `failed (${(error as Error)?.name ?? 'error'})`;
      throw new OAuthTokenError('unavailable', `${product}'s token endpoint at ${origin} ${reason}.`);
    }
    const read = await readBody(response, 64 * 1024);
    const json = isObject(read.json) ? read.json : undefined;
    const said = (text: string) => redact(text, secrets);

    if (read.status === 429 || read.status >= 500) {
      const retryAfter = retryAfterSeconds(response.headers.get('retry-after'));
      throw new OAuthTokenError('unavailable', `${product}'s token endpoint answered ${statusLabel(read.status)}${retryAfter !== undefined ? `; retry after ${retryAfter} s` : ''}.`, {
        status: read.status,
        ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}),
      });
    }
    // GitHub and Slack answer errors with 200: look at the body first, then at the status.
    const providerCode = json ? cleanText(json.ok === false ? json.error : json.error, 64) : undefined;
    if (providerCode || read.status !== 200 || !json || typeof json.access_token !== 'string' || !json.access_token) {
      const code = providerCode ?? (read.status === 401 ? 'invalid_client' : undefined);
      const description = json ? cleanText(json.error_description) : undefined;
      const kind: OAuthErrorKind =
        code === 'invalid_grant' || (code !== undefined && this.config.grantErrorCodes?.includes(code))
          ? 'invalid_grant'
          : code !== undefined && (STANDARD_CLIENT_ERRORS.includes(code) || this.config.clientErrorCodes?.includes(code))
            ? 'invalid_client'
            : 'rejected';
      const why = code
        ? `${code}${description ? `: ${description}` : ''}`
        : read.status !== 200
          ? statusLabel(read.status)
          : 'the answer had no access token';
      throw new OAuthTokenError(kind, said(`${product} refused the ${what} (${why}).`), { ...(code ? { providerCode: code } : {}), status: read.status });
    }

    const number = (value: unknown) => (typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : undefined);
    const tokens: TokenSet = { accessToken: json.access_token, raw: json };
    if (typeof json.refresh_token === 'string' && json.refresh_token) tokens.refreshToken = json.refresh_token;
    const expiresIn = number(json.expires_in);
    if (expiresIn !== undefined) tokens.expiresInSeconds = expiresIn;
    const refreshExpiresIn = number(json.refresh_token_expires_in);
    if (refreshExpiresIn !== undefined) tokens.refreshTokenExpiresInSeconds = refreshExpiresIn;
    if (typeof json.token_type === 'string') tokens.tokenType = json.token_type;
    if (typeof json.scope === 'string') tokens.scope = json.scope;
    return tokens;
  }
}
