/**
 * Jaeger's HTTP query API (port 16686): `GET /api/v3/services` (api_v3 through Jaeger's HTTP
 * gateway, the stable API), falling back to the v1 `GET /api/services` for older servers that do
 * not serve /api/v3 (they answer 404, or their UI's index page for any unknown path).
 */
import type { OutboundFetch } from '../types.ts';
import { CheckFailure, isHtml, isObject, joinUrl, readBody, redirectNote, statusLabel, unexpectedStatusDetail, upstreamSaid, type ReadBody, type Upstream } from '../http-checks.ts';
import type { AuthHeader, JaegerApi } from './index.ts';

export interface ServicesFound {
  api: JaegerApi;
  services: string[];
}

/** 401/403 mean the same on every route: a proxy in front of Jaeger (Jaeger itself has no auth). */
export function accessDetail(upstream: Upstream, status: string, forbidden: boolean, authHeader: AuthHeader | undefined, body?: ReadBody): string {
  const said = upstreamSaid(body);
  if (forbidden) {
    return authHeader
      ? `Jaeger at ${upstream.origin} refused access (${status}): the ${authHeader.name} header was accepted but does not allow reading the query API. Check the permissions the proxy in front of Jaeger gives it.${said}`
      : `Jaeger at ${upstream.origin} refused access (${status}): the proxy in front of it may require an auth header, or allow only some addresses.${said}`;
  }
  return authHeader
    ? `Jaeger rejected the auth header (${status}): check the header name (${authHeader.name}) and its value, as the proxy in front of Jaeger expects them.${said}`
    : `Jaeger at ${upstream.origin} requires authentication (${status}): add the auth header the proxy in front of it expects (for example Authorization: Bearer …).${said}`;
}

function describeAnswer(body: ReadBody, url: URL, response: Response): string {
  const what = body.status === 200 ? (isHtml(body) ? 'a web page' : 'JSON that is not a service list') : statusLabel(body.status);
  return `${what}${redirectNote(url, response)}`;
}

export async function findServicesOverHttp(fetch: OutboundFetch, base: string, authHeader: AuthHeader | undefined, upstream: Upstream, signal?: AbortSignal): Promise<ServicesFound> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (authHeader) headers[authHeader.name] = authHeader.value;

  const get = async (path: string) => {
    const url = joinUrl(base, path);
    const response = await fetch(url, { headers, ...(signal ? { signal } : {}) });
    const body = await readBody(response);
    if (body.status === 401 || body.status === 403) throw new CheckFailure(accessDetail(upstream, statusLabel(body.status), body.status === 403, authHeader, body));
    if (body.status === 429 || body.status >= 500) throw new CheckFailure(unexpectedStatusDetail(upstream, body, response.headers, `/${path}`));
    return { url, response, body };
  };

  const v3 = await get('api/v3/services');
  const v3Json = isObject(v3.body.json) ? v3.body.json : undefined;
  // grpc-gateway leaves an empty list out: `{}` is "no services yet".
  if (v3.body.status === 200 && v3Json && (Array.isArray(v3Json.services) || Object.keys(v3Json).length === 0)) {
    return { api: 'api_v3', services: (Array.isArray(v3Json.services) ? v3Json.services : []).map(String) };
  }

  const v1 = await get('api/services');
  const v1Json = isObject(v1.body.json) ? v1.body.json : undefined;
  if (v1.body.status === 200 && v1Json && 'data' in v1Json && (Array.isArray(v1Json.data) || v1Json.data === null)) {
    return { api: 'api_v1', services: (Array.isArray(v1Json.data) ? v1Json.data : []).map(String) };
  }

  throw new CheckFailure(
    `${upstream.origin} is not a Jaeger query service: /api/v3/services answered ${describeAnswer(v3.body, v3.url, v3.response)} and /api/services ${describeAnswer(v1.body, v1.url, v1.response)}. Check the URL: it should be Jaeger's query address (the one its UI is on, usually port 16686, with the base path if Jaeger runs under one); for the gRPC port 16685, set protocol to "grpc".`,
  );
}
