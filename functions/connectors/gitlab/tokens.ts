/**
 * The sync's GitLab access token, through OAuthTokenManager (functions/oauth/tokens.ts): the
 * token is read from the secret store through the connection's pointer, refreshed under the
 * connection's refresh lease when it would expire before the slice ends (GitLab rotates the
 * refresh token on every refresh, so two refreshers racing would kill the connection), and
 * cached for the slice. Partitions syncing in parallel each call this; the manager makes sure
 * only one of them refreshes.
 */
import { runtime } from '#platform/runtime.ts';
import { OAuthTokenManager } from '../../oauth/tokens.ts';
import type { TokenSource } from './rest.ts';

/** A token must outlive the slice by this much. */
const SLICE_MARGIN_MS = 2 * 60_000;
/** Never ask for more than this (GitLab tokens last 2 h). */
const MAX_VALIDITY_MS = 60 * 60_000;
/** Past any token's lifetime: asking for this much validity forces a refresh. */
const FORCE_REFRESH_MS = 365 * 86_400_000;

export interface ManagedTokenOptions {
  connection: { tenantId: string; id: string };
  /** Milliseconds left in the slice. */
  remainingMs: () => number;
  now: () => number;
  manager?: OAuthTokenManager;
}

/**
 * The runner's own token accessor (`ctx.freshCredentials`, OAuthTokenManager under the hood): the
 * token is read once per slice, valid for the rest of it, and renewed on a 401 (re-read, else
 * refreshed when the stored token is the refused one).
 */
export function contextTokenSource(fresh: (request?: { rejectedAccessToken?: string }) => Promise<{ accessToken: string }>): TokenSource {
  let current: Promise<string> | undefined;
  const load = (request?: { rejectedAccessToken?: string }) => {
    const loading = fresh(request).then((credentials) => credentials.accessToken);
    current = loading;
    loading.catch(() => {
      if (current === loading) current = undefined;
    });
    return loading;
  };
  return {
    token: () => current ?? load(),
    async renew(rejected) {
      await load({ rejectedAccessToken: rejected });
    },
  };
}

/** Without `ctx.freshCredentials` (another runner): OAuthTokenManager over the runtime, directly. */
export function managedTokenSource(options: ManagedTokenOptions): TokenSource {
  const manager = options.manager ?? new OAuthTokenManager(runtime());
  let current: { token: string; expiresAt?: number } | undefined;
  let loading: Promise<{ token: string; expiresAt?: number }> | undefined;
  const validity = () => Math.min(MAX_VALIDITY_MS, Math.max(0, options.remainingMs()) + SLICE_MARGIN_MS);
  const load = (minValidityMs: number) =>
    manager.freshCredentials(options.connection, { minValidityMs }).then((credentials) => {
      current = { token: credentials.accessToken, ...(credentials.expiresAt !== undefined ? { expiresAt: credentials.expiresAt } : {}) };
      return current;
    });

  return {
    async token() {
      if (current && (current.expiresAt === undefined || current.expiresAt - options.now() > SLICE_MARGIN_MS)) return current.token;
      loading ??= load(validity()).finally(() => {
        loading = undefined;
      });
      return (await loading).token;
    },
    async renew(rejected) {
      current = undefined;
      // Another process may have rotated it already: read again first.
      const again = await load(validity());
      if (again.token !== rejected) return;
      // The stored token itself is refused (revoked early, or the clocks disagree): refresh it now.
      await load(FORCE_REFRESH_MS);
    },
  };
}
