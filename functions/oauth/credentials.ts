/**
 * What an OAuth connection keeps in the secret store (and nowhere else): its tokens. Expiry times
 * are epoch milliseconds. Provider extras that are secrets too (Slack's incoming-webhook URL)
 * sit next to the tokens; nothing that is not a secret goes here (base URLs, team names and
 * scopes live on the connection's config).
 */
import { z } from 'zod';
import type { TokenSet } from './client.ts';

export const oauthCredentialsSchema = z.looseObject({
  accessToken: z.string().min(1),
  refreshToken: z.string().min(1).optional(),
  /** When the access token expires (epoch ms); absent for tokens that do not expire. */
  expiresAt: z.number().int().positive().optional(),
  /** When the refresh token expires (epoch ms), if the provider says (GitHub: 6 months). */
  refreshTokenExpiresAt: z.number().int().positive().optional(),
});

export type OAuthCredentials = z.infer<typeof oauthCredentialsSchema>;

/**
 * The credentials to store after a code exchange (no `previous`) or a refresh. A refresh answer
 * without a refresh token (no rotation) keeps the previous one; extras (webhook URL) are kept.
 */
export function credentialsFromTokens(tokens: TokenSet, now: Date, previous?: OAuthCredentials, extras: Record<string, string> = {}): OAuthCredentials {
  const at = now.getTime();
  const next: OAuthCredentials = { ...(previous ?? {}), ...extras, accessToken: tokens.accessToken };
  const refreshToken = tokens.refreshToken ?? previous?.refreshToken;
  if (refreshToken) next.refreshToken = refreshToken;
  else delete next.refreshToken;
  if (tokens.expiresInSeconds !== undefined) next.expiresAt = at + tokens.expiresInSeconds * 1000;
  else delete next.expiresAt;
  if (tokens.refreshTokenExpiresInSeconds !== undefined) next.refreshTokenExpiresAt = at + tokens.refreshTokenExpiresInSeconds * 1000;
  else if (tokens.refreshToken) delete next.refreshTokenExpiresAt;
  return next;
}

/** True when the access token expires within `marginMs` (tokens without an expiry never need a refresh). */
export function needsRefresh(credentials: OAuthCredentials, now: Date, marginMs: number): boolean {
  return credentials.expiresAt !== undefined && credentials.expiresAt - now.getTime() <= marginMs;
}
