/**
 * Where the callback may send the browser back to: only URLs on the configured origins, so the
 * OAuth flow can never be used as an open redirect. OPENTRACE_ALLOWED_RETURN_ORIGINS is a
 * comma-separated list of origins (`https://app.opentrace.dev,https://staging.opentrace.dev`);
 * unset, it is the local UI's origins. Matching is by exact origin (scheme, host and port).
 */
import { ValidationError } from '#platform/errors.ts';

export const DEFAULT_ALLOWED_RETURN_ORIGINS = ['http://localhost:3000', 'http://127.0.0.1:3000'] as const;

export function allowedReturnOrigins(env: NodeJS.ProcessEnv = process.env): string[] {
  const raw = env.OPENTRACE_ALLOWED_RETURN_ORIGINS;
  const list = raw === undefined || raw.trim() === '' ? [...DEFAULT_ALLOWED_RETURN_ORIGINS] : raw.split(',').map((entry) => entry.trim()).filter(Boolean);
  const origins: string[] = [];
  for (const entry of list) {
    try {
      const url = new URL(entry);
      if ((url.protocol === 'https:' || url.protocol === 'http:') && url.origin !== 'null') origins.push(url.origin);
    } catch {
      // an unparsable entry allows nothing
    }
  }
  return origins;
}

/** The return URL, normalized, if it is on an allowed origin; otherwise a 400 on body.returnUrl. */
export function checkReturnUrl(raw: string, allowed: readonly string[] = allowedReturnOrigins()): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ValidationError('returnUrl must be an absolute URL.', [{ path: 'body.returnUrl', message: 'not an absolute URL' }]);
  }
  const refuse = (why: string) => new ValidationError(`returnUrl is not allowed: ${why}.`, [{ path: 'body.returnUrl', message: why }]);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw refuse('it must be an http(s) URL');
  if (url.username || url.password) throw refuse('it must not carry a user name or password');
  if (!allowed.includes(url.origin)) {
    throw refuse(`${url.origin} is not one of the allowed origins (${allowed.join(', ') || 'none configured'}; OPENTRACE_ALLOWED_RETURN_ORIGINS)`);
  }
  return url.toString();
}

/** `returnUrl` with the outcome in its query (`status=connected&connectionId=…` or `status=error&error=…`). */
export function returnUrlWith(returnUrl: string, params: Record<string, string>): string {
  const url = new URL(returnUrl);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return url.toString();
}
