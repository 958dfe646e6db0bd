import { randomBytes } from 'node:crypto';

// Crockford base32, lower case: ids sort by creation time and read well in URLs and logs.
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

function encodeTime(ms: number, length = 10): string {
  let out = '';
  let value = ms;
  for (let i = 0; i < length; i++) {
    out = ALPHABET[value % 32] + out;
    value = Math.floor(value / 32);
  }
  return out;
}

function encodeRandom(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const byte of bytes) out += ALPHABET[byte % 32];
  return out;
}

/** `conn_…`, `sync_…`: a time-sortable id (10 chars of milliseconds, 16 random chars). */
export function newId(prefix: 'conn' | 'sync', now = Date.now()): string {
  return `${prefix}_${encodeTime(now)}${encodeRandom(16)}`;
}

export const ID_PATTERNS = {
  conn: /^conn_[0-9a-z]{26}$/,
  sync: /^sync_[0-9a-z]{26}$/,
} as const;

/** 256 random bits, URL-safe: API tokens, OAuth state nonces, PKCE verifiers. */
export const randomToken = (bytes = 32) => randomBytes(bytes).toString('base64url');
