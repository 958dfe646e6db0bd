/**
 * Fresh OAuth access tokens for a connection, refreshed without races.
 *
 * Rotating refresh tokens (GitLab always, GitHub App user tokens, Slack with rotation on) are
 * single-use: two refreshers holding the same refresh token means one of them gets
 * `invalid_grant` and, done naively, the connection dies. So:
 *
 * - A token is refreshed `marginMs` before it expires (callers needing it longer, such as a sync
 *   slice, ask for `minValidityMs`).
 * - One refresh per connection in this process: concurrent callers share one promise.
 * - One refresh per connection across processes: a lease (`refresh:<connectionId>`, LeaseStore).
 *   The holder re-reads the stored token after taking the lease (someone may have just
 *   refreshed) and again on `invalid_grant`; the others poll the stored token with backoff for a
 *   bounded time instead of refreshing themselves.
 * - Every refresh writes a NEW secret version (`<connectionId>-v<n+1>`), points the connection
 *   record at it, then deletes the old version, all before the new access token is handed out.
 *   The record (a consistent DynamoDB read) is the pointer, and a version's content never
 *   changes, so no process can read a stale token from a cached secret (the Secrets Manager
 *   adapter caches reads for minutes). A refresher that died between writing the new version and
 *   moving the pointer is recovered on the next `invalid_grant` (the next version is adopted).
 * - A refresh the provider refuses twice (`invalid_grant`) marks the connection `error` with
 *   lastError "reconnect needed: …"; from then on no refresh is attempted until the user connects
 *   again. A provider that is down is a temporary failure (502), never "reconnect needed".
 */
import { ConnectionStore, type Connection } from '#platform/connections.ts';
import { AppError, NotFoundError, UpstreamFailedError, UpstreamRejectedError } from '#platform/errors.ts';
import { randomToken } from '#platform/ids.ts';
import { LeaseStore } from '#platform/leases.ts';
import { logger } from '#platform/observability.ts';
import { safeFetch } from '#platform/outbound.ts';
import type { Runtime } from '#platform/runtime.ts';
import type { OutboundFetch } from '#connectors/types.ts';
import { resolveApp } from './apps.ts';
import { OAuthClient, OAuthTokenError } from './client.ts';
import { credentialsFromTokens, needsRefresh, oauthCredentialsSchema, type OAuthCredentials } from './credentials.ts';
import type { OAuthProvider } from './provider.ts';
import { oauthProvider } from './providers.ts';

/** Refresh this long before expiry by default. */
export const REFRESH_MARGIN_MS = 5 * 60_000;
/** The refresh lease: far longer than one refresh request (10 s timeout), short enough that a crashed holder does not block for long. */
export const REFRESH_LEASE_MS = 30_000;
/** How long a caller waits for another process's refresh before giving up for now. */
export const REFRESH_WAIT_MS = 20_000;
export const RECONNECT_PREFIX = 'reconnect needed: ';

/** The stored grant is dead: only connecting again helps. The connection is marked `error`. */
export class ReconnectNeededError extends UpstreamRejectedError {
  constructor(detail: string) {
    super(`${RECONNECT_PREFIX}${detail}`);
  }
}

/** The provider could not refresh the token right now (down, throttled, misconfigured app). Try again later. */
export class TokenRefreshFailedError extends UpstreamFailedError {}

/** Another process is refreshing this connection's token and did not finish in time. */
export class TokenRefreshBusyError extends AppError {
  readonly retryAfterSeconds = 5;
  constructor(detail: string) {
    super(503, 'token-refresh-busy', 'Token refresh in progress', detail);
  }
}

export function isReconnectNeeded(connection: Pick<Connection, 'status' | 'lastError'>): boolean {
  return connection.status === 'error' && (connection.lastError ?? '').startsWith(RECONNECT_PREFIX);
}

/** `conn_x-v3` → `conn_x-v4`; a connection without a version suffix starts at v1. */
export function nextSecretName(connectionId: string, current: string | undefined): string {
  const version = Number(/-v(\d+)$/.exec(current ?? '')?.[1] ?? 0);
  return `${connectionId}-v${version + 1}`;
}

export interface TokenManagerOptions {
  now?: () => Date;
  /** Waits between polls while another process holds the refresh lease (tests inject their own). */
  sleep?: (ms: number) => Promise<void>;
  marginMs?: number;
  leaseMs?: number;
  waitMs?: number;
  /** Refreshes in flight by connection: one map per process (the default). A test passes its own to play a second process. */
  inFlight?: Map<string, Promise<OAuthCredentials>>;
  fetch?: OutboundFetch;
  env?: NodeJS.ProcessEnv;
}

interface Loaded {
  connection: Connection;
  credentials: OAuthCredentials;
}

const processInFlight = new Map<string, Promise<OAuthCredentials>>();
const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class OAuthTokenManager {
  readonly #rt: Runtime;
  readonly #connections: ConnectionStore;
  readonly #leases: LeaseStore;
  readonly #now: () => Date;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #marginMs: number;
  readonly #leaseMs: number;
  readonly #waitMs: number;
  readonly #inFlight: Map<string, Promise<OAuthCredentials>>;
  readonly #fetch: OutboundFetch;
  readonly #env: NodeJS.ProcessEnv;

  constructor(rt: Runtime, options: TokenManagerOptions = {}) {
    this.#rt = rt;
    this.#now = options.now ?? rt.now;
    this.#connections = new ConnectionStore(rt.table);
    this.#leases = new LeaseStore(rt.table, this.#now);
    this.#sleep = options.sleep ?? realSleep;
    this.#marginMs = options.marginMs ?? REFRESH_MARGIN_MS;
    this.#leaseMs = options.leaseMs ?? REFRESH_LEASE_MS;
    this.#waitMs = options.waitMs ?? REFRESH_WAIT_MS;
    this.#inFlight = options.inFlight ?? processInFlight;
    this.#fetch = options.fetch ?? ((url, init) => safeFetch(url, init));
    this.#env = options.env ?? process.env;
  }

  /** An access token valid for at least `minValidityMs` (default: the refresh margin). */
  async getFreshAccessToken(connection: Pick<Connection, 'tenantId' | 'id'>, options: { minValidityMs?: number } = {}): Promise<string> {
    return (await this.freshCredentials(connection, options)).accessToken;
  }

  /** The stored credentials with a fresh access token (refreshed first when it is about to expire). */
  async freshCredentials(connection: Pick<Connection, 'tenantId' | 'id'>, options: { minValidityMs?: number } = {}): Promise<OAuthCredentials> {
    const { tenantId, id } = connection;
    const margin = Math.max(this.#marginMs, options.minValidityMs ?? 0);
    const loaded = await this.#load(tenantId, id);
    if (!needsRefresh(loaded.credentials, this.#now(), margin)) return loaded.credentials;

    const key = `${tenantId}/${id}`;
    const running = this.#inFlight.get(key);
    if (running) return running;
    const refresh: Promise<OAuthCredentials> = this.#refreshUnderLease(tenantId, id, margin).finally(() => {
      if (this.#inFlight.get(key) === refresh) this.#inFlight.delete(key);
    });
    this.#inFlight.set(key, refresh);
    return refresh;
  }

  /**
   * The connection (consistent read: it points at the current secret version) and its
   * credentials. `adoptNext`: also look for a next version a crashed refresher left behind.
   */
  async #load(tenantId: string, connectionId: string, options: { adoptNext?: boolean } = {}): Promise<Loaded> {
    for (let attempt = 0; ; attempt++) {
      const connection = await this.#connections.get(tenantId, connectionId, true);
      if (!connection || connection.status === 'disconnecting') throw new NotFoundError(`Connection ${connectionId} does not exist.`);
      if (isReconnectNeeded(connection)) throw new ReconnectNeededError(connection.lastError!.slice(RECONNECT_PREFIX.length));
      const provider = this.#provider(connection);
      if (options.adoptNext) {
        const next = nextSecretName(connectionId, connection.secretName);
        const parsed = oauthCredentialsSchema.safeParse(await this.#rt.secrets.get(tenantId, next));
        if (parsed.success) {
          logger.warn('adopting a token version a previous refresh stored without finishing', { connectionId, type: connection.type });
          return { connection: await this.#point(connection, next), credentials: parsed.data };
        }
      }
      const value = connection.secretName ? await this.#rt.secrets.get(tenantId, connection.secretName) : undefined;
      if (value === undefined && attempt === 0) continue; // rotated between the two reads: read the pointer again
      const parsed = oauthCredentialsSchema.safeParse(value);
      if (!parsed.success) {
        throw await this.#markReconnectNeeded(connection, `${provider.product}'s stored token is missing. Connect ${provider.product} again (POST /v1/integrations/${provider.type}/authorize).`);
      }
      return { connection, credentials: parsed.data };
    }
  }

  #provider(connection: Connection): OAuthProvider {
    const provider = oauthProvider(connection.type);
    if (!provider) throw new Error(`${connection.type} connections do not use OAuth tokens`);
    return provider;
  }

  async #refreshUnderLease(tenantId: string, connectionId: string, margin: number): Promise<OAuthCredentials> {
    const owner = randomToken(12);
    const leaseName = `refresh:${connectionId}`;
    const deadline = this.#now().getTime() + this.#waitMs;
    let delay = 50;
    for (;;) {
      if (await this.#leases.acquire(tenantId, leaseName, owner, this.#leaseMs)) {
        try {
          return await this.#refreshHoldingLease(tenantId, connectionId, margin);
        } finally {
          await this.#leases.release(tenantId, leaseName, owner).catch((error: unknown) => {
            logger.warn('could not release the token refresh lease (it expires by itself)', { connectionId, errorName: (error as Error)?.name });
          });
        }
      }
      // Another process is refreshing: wait for the token it stores rather than race it.
      await this.#sleep(delay);
      delay = Math.min(delay * 2, 1000);
      const latest = await this.#load(tenantId, connectionId);
      if (!needsRefresh(latest.credentials, this.#now(), margin)) return latest.credentials;
      if (this.#now().getTime() >= deadline) {
        throw new TokenRefreshBusyError(`Another request is refreshing this connection's ${this.#provider(latest.connection).product} token; try again in a few seconds.`);
      }
    }
  }

  async #refreshHoldingLease(tenantId: string, connectionId: string, margin: number): Promise<OAuthCredentials> {
    // Re-read after taking the lease: the previous holder may have refreshed a moment ago.
    let { connection, credentials } = await this.#load(tenantId, connectionId);
    if (!needsRefresh(credentials, this.#now(), margin)) return credentials;
    const provider = this.#provider(connection);
    const reconnect = `Connect ${provider.product} again (POST /v1/integrations/${provider.type}/authorize).`;
    const baseUrl = typeof connection.config.baseUrl === 'string' ? connection.config.baseUrl : undefined;
    const client = new OAuthClient(provider.clientConfig(await resolveApp(this.#rt, tenantId, provider, baseUrl, this.#env)), this.#fetch);

    for (let refusals = 0; ; ) {
      if (!credentials.refreshToken) throw await this.#markReconnectNeeded(connection, `the ${provider.product} token expired and there is no refresh token. ${reconnect}`);
      if (credentials.refreshTokenExpiresAt !== undefined && credentials.refreshTokenExpiresAt <= this.#now().getTime()) {
        throw await this.#markReconnectNeeded(connection, `the ${provider.product} refresh token expired. ${reconnect}`);
      }
      try {
        const tokens = await client.refresh({ refreshToken: credentials.refreshToken });
        const next = credentialsFromTokens(tokens, this.#now(), credentials);
        await this.#store(connection, next);
        logger.info('oauth token refreshed', { connectionId, type: connection.type });
        return next;
      } catch (error) {
        if (!(error instanceof OAuthTokenError)) throw error;
        if (error.kind !== 'invalid_grant') {
          logger.warn('oauth token refresh failed', { connectionId, type: connection.type, kind: error.kind, status: error.status });
          throw new TokenRefreshFailedError(`Could not refresh the ${provider.product} token: ${error.message} Try again later.`);
        }
        refusals++;
        logger.warn('oauth refresh token refused', { connectionId, type: connection.type, providerCode: error.providerCode, refusals });
        // Someone may have rotated it meanwhile (a holder whose lease ran out, or one that crashed
        // after storing the next version): read again before concluding anything.
        const again = await this.#load(tenantId, connectionId, { adoptNext: true });
        if (!needsRefresh(again.credentials, this.#now(), margin)) return again.credentials;
        if (refusals >= 2) {
          throw await this.#markReconnectNeeded(again.connection, `${provider.product} refused the stored refresh token (${error.providerCode ?? 'invalid_grant'}). ${reconnect}`);
        }
        ({ connection, credentials } = again);
      }
    }
  }

  /** Writes the new version, then moves the connection's pointer to it, then drops the old version. */
  async #store(connection: Connection, credentials: OAuthCredentials): Promise<void> {
    const name = nextSecretName(connection.id, connection.secretName);
    await this.#rt.secrets.put(connection.tenantId, name, credentials);
    await this.#point(connection, name);
  }

  async #point(connection: Connection, name: string): Promise<Connection> {
    let replaced: string | undefined;
    const updated = await this.#connections.update(connection.tenantId, connection.id, (current) => {
      if (current.status === 'disconnecting') return undefined;
      replaced = current.secretName;
      return { ...current, secretName: name };
    });
    if (!updated || updated.secretName !== name) {
      // Disconnected meanwhile: the new version must not outlive the connection.
      await this.#rt.secrets.delete(connection.tenantId, name);
      throw new NotFoundError(`Connection ${connection.id} does not exist.`);
    }
    if (replaced && replaced !== name) await this.#rt.secrets.delete(connection.tenantId, replaced);
    return updated;
  }

  async #markReconnectNeeded(connection: Connection, detail: string): Promise<ReconnectNeededError> {
    await this.#connections.update(connection.tenantId, connection.id, (current) => {
      if (current.status === 'disconnecting') return undefined;
      return { ...current, status: 'error', lastError: `${RECONNECT_PREFIX}${detail}` };
    });
    logger.warn('oauth connection needs to be reconnected', { connectionId: connection.id, type: connection.type });
    return new ReconnectNeededError(detail);
  }
}
