/**
 * PKCE (RFC 7636) with S256: the verifier stays server-side in the OAuth state item; only its
 * SHA-256 (the challenge) travels through the browser to the provider.
 */
import { createHash } from 'node:crypto';
import { randomToken } from '#platform/ids.ts';

export interface Pkce {
  /** 43 characters of base64url (256 random bits): within RFC 7636's 43-128 unreserved characters. */
  verifier: string;
  challenge: string;
  method: 'S256';
}

export function s256Challenge(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

export function createPkce(): Pkce {
  const verifier = randomToken(32);
  return { verifier, challenge: s256Challenge(verifier), method: 'S256' };
}
