/**
 * Jaeger gRPC addresses (config.url with protocol "grpc"), parsed without loading gRPC itself (the
 * config schema needs this on every request; @grpc/grpc-js is loaded only for a gRPC check):
 *   grpcs://host[:port]   TLS (the form for the cloud)
 *   host[:port]           the same as grpcs:// (the guide's `jaeger-query:16685`)
 *   grpc://host[:port]    plaintext; allowed only where plain http is (the local stack)
 * The port defaults to 16685.
 */
import { isIP } from 'node:net';

export const DEFAULT_GRPC_PORT = 16685;

export interface GrpcTarget {
  /** Host name or IP address (IPv6 without brackets). */
  host: string;
  port: number;
  tls: boolean;
  /** How details name it: `grpcs://jaeger.example.com:16685`. */
  display: string;
}

const HOST_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** Parses a gRPC address; answers the target, or a sentence saying what is wrong with it. */
export function parseGrpcTarget(raw: string): GrpcTarget | string {
  const forms = 'write host:16685 or grpcs://host:16685 (TLS), or grpc://host:16685 (plaintext, local stack only)';
  const value = raw.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1]?.toLowerCase();
  if (scheme && scheme !== 'grpc' && scheme !== 'grpcs') return `a gRPC address cannot start with ${scheme}://: ${forms}`;
  let url: URL;
  try {
    url = new URL(scheme ? value : `grpcs://${value}`);
  } catch {
    return `url is not a valid gRPC address: ${forms}`;
  }
  if (url.username || url.password) return 'url must not contain a user name or password: use the authHeader credential';
  if ((url.pathname && url.pathname !== '/') || url.search || url.hash) return `a gRPC address has no path, query or fragment: ${forms}`;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!host || (!isIP(host) && !HOST_NAME.test(host))) return `url has no valid host name: ${forms}`;
  const port = url.port ? Number(url.port) : DEFAULT_GRPC_PORT;
  const tls = (scheme ?? 'grpcs') === 'grpcs';
  const shownHost = isIP(host) === 6 ? `[${host}]` : host;
  return { host, port, tls, display: `${tls ? 'grpcs' : 'grpc'}://${shownHost}:${port}` };
}
