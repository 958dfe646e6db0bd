/**
 * The authorization-server half the GitHub, GitLab and Slack fakes share: registered apps, the
 * authorize step (redirect back with `code` + `state`, or `error=access_denied`), the code
 * exchange (single-use codes, redirect URI and PKCE S256 checked: S256(code_verifier) must equal
 * the code_challenge given at authorize), expiring access tokens, and refresh tokens that rotate:
 * a used refresh token is dead afterwards (`invalid_grant`) and so is the access token it
 * replaced. Each fake wraps the outcomes in its provider's own answer shapes.
 *
 * Test levers: `failRefreshes` (answer the next N refreshes with invalid_grant), `gate` (every
 * token request waits for it: the refresh-race test holds the first refresh there), `stats`
 * (how many authorizations, exchanges and refresh requests arrived), and the clock (`now`).
 */
import { createHash, randomBytes } from 'node:crypto';

export interface FakeOAuthApp {
  clientId: string;
  clientSecret: string;
  /** Allowed redirect URIs (prefix match, as GitHub does); empty or absent allows any. */
  redirectUris?: string[];
}

export interface FakeOAuthSettings {
  apps: FakeOAuthApp[];
  /** Seconds an access token lives; null: it never expires. */
  accessTokenTtlSeconds: number | null;
  /** Seconds a refresh token lives, when the provider says (GitHub: 6 months). */
  refreshTokenTtlSeconds?: number;
  /** Issue refresh tokens (rotated on every use). */
  refreshTokens: boolean;
  /** Require a PKCE S256 challenge at authorize. */
  requirePkce: boolean;
  prefixes: { access: string; refresh: string };
  now: () => number;
}

export interface FakeGrant {
  subject: string;
  clientId: string;
  scopes: string[];
  /** Provider extras carried along (Slack: the channel picked for the incoming webhook). */
  extra: Record<string, unknown>;
}

interface CodeEntry extends FakeGrant {
  redirectUri: string;
  challenge?: string;
  expiresAt: number;
}

export interface AccessEntry extends FakeGrant {
  expiresAt?: number;
  revoked: boolean;
}

interface RefreshEntry extends FakeGrant {
  used: boolean;
  accessToken: string;
  expiresAt?: number;
}

export type AuthorizeOutcome = { ok: true; location: string } | { ok: false; status: number; error: string; description: string };

export type TokenOutcome =
  | { ok: true; accessToken: string; refreshToken?: string; expiresIn?: number; refreshTokenExpiresIn?: number; grant: FakeGrant }
  | { ok: false; status: number; error: string; description: string };

export const s256 = (verifier: string) => createHash('sha256').update(verifier, 'ascii').digest('base64url');
const randomString = (bytes: number) => randomBytes(bytes).toString('base64url').replace(/[-_]/g, 'x');

export class FakeOAuthServer {
  readonly stats = { authorizations: 0, exchanges: 0, refreshes: 0, refused: 0 };
  /** Answer the next N refresh requests with invalid_grant, whatever the token. */
  failRefreshes = 0;
  /** Every token request waits for this first (the refresh-race test holds one here). */
  gate: (() => Promise<void>) | undefined;
  readonly #settings: () => FakeOAuthSettings;
  readonly #codes = new Map<string, CodeEntry>();
  readonly #access = new Map<string, AccessEntry>();
  readonly #refresh = new Map<string, RefreshEntry>();

  constructor(settings: () => FakeOAuthSettings) {
    this.#settings = settings;
  }

  #app(clientId: string | null | undefined): FakeOAuthApp | undefined {
    return this.#settings().apps.find((app) => app.clientId === clientId);
  }

  /**
   * The authorize step as a signed-in user who clicks "Authorize" (`deny`: clicks "Cancel").
   * Answers where the browser is sent next, or an error page's status when the request is bad.
   */
  authorize(query: URLSearchParams, subject: string, options: { deny?: boolean; scopes?: string[]; extra?: Record<string, unknown>; callbackParams?: Record<string, string> } = {}): AuthorizeOutcome {
    const app = this.#app(query.get('client_id'));
    if (!app) return { ok: false, status: 404, error: 'invalid_client', description: 'Unknown client_id.' };
    const redirectUri = query.get('redirect_uri');
    if (!redirectUri) return { ok: false, status: 400, error: 'invalid_request', description: 'redirect_uri is required.' };
    if (app.redirectUris?.length && !app.redirectUris.some((allowed) => redirectUri.startsWith(allowed))) {
      return { ok: false, status: 400, error: 'redirect_uri_mismatch', description: 'The redirect_uri is not associated with this application.' };
    }
    const back = new URL(redirectUri);
    const state = query.get('state');
    const send = (params: Record<string, string>): AuthorizeOutcome => {
      for (const [name, value] of Object.entries(params)) back.searchParams.set(name, value);
      if (state !== null) back.searchParams.set('state', state);
      return { ok: true, location: back.toString() };
    };
    const challenge = query.get('code_challenge') ?? undefined;
    const method = query.get('code_challenge_method') ?? (challenge ? 'plain' : undefined);
    if (challenge && method !== 'S256') return send({ error: 'invalid_request', error_description: 'Only the S256 code challenge method is supported.' });
    if (!challenge && this.#settings().requirePkce) return send({ error: 'invalid_request', error_description: 'PKCE (code_challenge with S256) is required.' });
    if (options.deny) return send({ error: 'access_denied', error_description: 'The user has denied your application access.' });
    this.stats.authorizations++;
    const code = randomString(15);
    const scopes = options.scopes ?? (query.get('scope') ?? '').split(/[ ,]+/).filter(Boolean);
    this.#codes.set(code, {
      subject,
      clientId: app.clientId,
      scopes,
      extra: options.extra ?? {},
      redirectUri,
      ...(challenge ? { challenge } : {}),
      expiresAt: this.#settings().now() + 10 * 60_000,
    });
    return send({ code, ...(options.callbackParams ?? {}) });
  }

  /** The token endpoint: `authorization_code` or `refresh_token`; the client authenticates with Basic or form fields. */
  async token(params: URLSearchParams, authorization: string | undefined): Promise<TokenOutcome> {
    const grantType = params.get('grant_type') ?? 'authorization_code';
    // Counted on arrival, so a held request (gate) already counts as having reached the provider.
    if (grantType === 'refresh_token') this.stats.refreshes++;
    else if (grantType === 'authorization_code') this.stats.exchanges++;
    await this.gate?.();
    let clientId = params.get('client_id');
    let clientSecret = params.get('client_secret');
    const basic = /^basic\s+(.+)$/i.exec(authorization ?? '');
    if (basic) {
      const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      clientId = decodeURIComponent(decoded.slice(0, colon));
      clientSecret = decodeURIComponent(decoded.slice(colon + 1));
    }
    const app = this.#app(clientId);
    if (!app || app.clientSecret !== clientSecret) {
      this.stats.refused++;
      return { ok: false, status: 401, error: 'invalid_client', description: 'Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.' };
    }
    if (grantType === 'authorization_code') return this.#exchange(app, params);
    if (grantType === 'refresh_token') return this.#refreshGrant(app, params);
    this.stats.refused++;
    return { ok: false, status: 400, error: 'unsupported_grant_type', description: `grant_type ${grantType} is not supported.` };
  }

  #invalidGrant(description: string): TokenOutcome {
    this.stats.refused++;
    return { ok: false, status: 400, error: 'invalid_grant', description };
  }

  #exchange(app: FakeOAuthApp, params: URLSearchParams): TokenOutcome {
    const code = params.get('code') ?? '';
    const entry = this.#codes.get(code);
    this.#codes.delete(code); // single use, also when the exchange fails
    if (!entry || entry.expiresAt <= this.#settings().now() || entry.clientId !== app.clientId) {
      return this.#invalidGrant('The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.');
    }
    if (params.get('redirect_uri') !== entry.redirectUri) return this.#invalidGrant('The redirect_uri does not match the one of the authorization request.');
    if (entry.challenge) {
      const verifier = params.get('code_verifier');
      if (!verifier || s256(verifier) !== entry.challenge) return this.#invalidGrant('The code_verifier does not match the code_challenge (PKCE S256).');
    }
    return this.#issue(entry);
  }

  #refreshGrant(app: FakeOAuthApp, params: URLSearchParams): TokenOutcome {
    if (this.failRefreshes > 0) {
      this.failRefreshes--;
      return this.#invalidGrant('The refresh token is invalid (failure injected by the test).');
    }
    const token = params.get('refresh_token') ?? '';
    const entry = this.#refresh.get(token);
    if (!entry || entry.clientId !== app.clientId) return this.#invalidGrant('The refresh token is invalid.');
    if (entry.used) return this.#invalidGrant('The refresh token was already used.');
    if (entry.expiresAt !== undefined && entry.expiresAt <= this.#settings().now()) return this.#invalidGrant('The refresh token expired.');
    // Rotation: the refresh token and the access token it came with stop working.
    entry.used = true;
    const old = this.#access.get(entry.accessToken);
    if (old) old.revoked = true;
    return this.#issue(entry);
  }

  #issue(grant: FakeGrant): TokenOutcome {
    const settings = this.#settings();
    const now = settings.now();
    const accessToken = `${settings.prefixes.access}${randomString(27)}`;
    const ttl = settings.accessTokenTtlSeconds;
    this.#access.set(accessToken, { subject: grant.subject, clientId: grant.clientId, scopes: grant.scopes, extra: grant.extra, revoked: false, ...(ttl !== null ? { expiresAt: now + ttl * 1000 } : {}) });
    const outcome: TokenOutcome = { ok: true, accessToken, grant: { subject: grant.subject, clientId: grant.clientId, scopes: grant.scopes, extra: grant.extra }, ...(ttl !== null ? { expiresIn: ttl } : {}) };
    if (settings.refreshTokens) {
      const refreshToken = `${settings.prefixes.refresh}${randomString(36)}`;
      const refreshTtl = settings.refreshTokenTtlSeconds;
      this.#refresh.set(refreshToken, {
        subject: grant.subject,
        clientId: grant.clientId,
        scopes: grant.scopes,
        extra: grant.extra,
        used: false,
        accessToken,
        ...(refreshTtl !== undefined ? { expiresAt: now + refreshTtl * 1000 } : {}),
      });
      outcome.refreshToken = refreshToken;
      if (refreshTtl !== undefined) outcome.refreshTokenExpiresIn = refreshTtl;
    }
    return outcome;
  }

  /** The grant behind a valid access token; 'expired' or undefined (unknown, revoked) otherwise. */
  check(accessToken: string | undefined): AccessEntry | 'expired' | undefined {
    const entry = accessToken ? this.#access.get(accessToken) : undefined;
    if (!entry || entry.revoked) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= this.#settings().now()) return 'expired';
    return entry;
  }

  /** True when the token works right now: what a test asserts a caller ended up with. */
  isValid(accessToken: string | undefined): boolean {
    const entry = this.check(accessToken);
    return entry !== undefined && entry !== 'expired';
  }

  /** Revokes every token of a subject (the user removed the app). */
  revokeAll(subject: string): void {
    for (const entry of this.#access.values()) if (entry.subject === subject) entry.revoked = true;
    for (const entry of this.#refresh.values()) if (entry.subject === subject) entry.used = true;
  }
}

/** The body of a token request: form-encoded (the standard) or JSON (GitHub accepts both). */
export function tokenParams(body: string, contentType: string | undefined): URLSearchParams {
  if (/json/i.test(contentType ?? '')) {
    try {
      const json = JSON.parse(body) as Record<string, unknown>;
      return new URLSearchParams(Object.entries(json).map(([name, value]): [string, string] => [name, String(value)]));
    } catch {
      return new URLSearchParams();
    }
  }
  return new URLSearchParams(body);
}
