/**
 * Jaeger's gRPC query API (port 16685): `jaeger.api_v3.QueryService`, and the legacy
 * `jaeger.api_v2.QueryService` as a fallback for servers that answer UNIMPLEMENTED to api_v3.
 *
 * Address forms: ./address.ts. This module (and @grpc/grpc-js with it, ~80 ms to load) is
 * imported only when a gRPC connection is checked, not by every function that lists connectors.
 *
 * Outbound safety holds as for HTTP (functions/platform/outbound.ts): the host is resolved with
 * the same `guardedLookup`, the URL-level rules come from `checkUrl`, and the channel is opened to
 * the checked IP address itself (TLS still verifies the certificate against the host name), so a
 * name cannot resolve to a public address for the check and a private one for the connection.
 * No HTTP proxy from the environment is used, and every call has a deadline.
 */
import type { LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { checkUrl, guardedLookup, OutboundBlockedError, type OutboundPolicy } from '#platform/outbound.ts';
import type { GrpcTarget } from './address.ts';
import { CheckFailure, rateLimitedDetail, timeoutDetail, unreachableDetail, type Upstream } from '../http-checks.ts';
import { accessDetail, type ServicesFound } from './http.ts';
import type { AuthHeader } from './index.ts';

/** The .proto files (Jaeger api_v3/api_v2 and the OTLP trace messages they use). Lambda bundles must ship this folder. */
export const JAEGER_PROTO_DIR = fileURLToPath(new URL('./proto/', import.meta.url));
export const JAEGER_PROTO_FILES = ['jaeger/api_v3/query_service.proto', 'jaeger/api_v2/query.proto'];

type ServiceClient = grpc.ServiceClientConstructor;
interface JaegerServices {
  v3: ServiceClient;
  v2: ServiceClient;
}

let services: JaegerServices | undefined;

/** The loaded service definitions (client constructors; `.service` is the server-side definition, for the fakes). */
export function jaegerGrpcServices(): JaegerServices {
  if (!services) {
    const definition = protoLoader.loadSync(JAEGER_PROTO_FILES, { includeDirs: [JAEGER_PROTO_DIR], keepCase: false, longs: String, enums: String, defaults: true, oneofs: true });
    const root = grpc.loadPackageDefinition(definition) as unknown as { jaeger: { api_v3: { QueryService: ServiceClient }; api_v2: { QueryService: ServiceClient } } };
    services = { v3: root.jaeger.api_v3.QueryService, v2: root.jaeger.api_v2.QueryService };
  }
  return services;
}

function resolveChecked(host: string, allowPrivateNetworks: boolean): Promise<LookupAddress> {
  const lookup = guardedLookup(allowPrivateNetworks);
  return new Promise((resolve, reject) => {
    lookup(host, { all: true }, (error, addresses) => {
      if (error) return reject(error);
      const first = (addresses as LookupAddress[])[0];
      if (!first) return reject(Object.assign(new Error(`${host} has no addresses`), { code: 'ENOTFOUND' }));
      resolve(first);
    });
  });
}

export interface JaegerGrpcChannel {
  target: GrpcTarget;
  /** The checked address the channel connects to. */
  address: string;
  call<Response>(api: 'v3' | 'v2', method: string, request: object, metadata: grpc.Metadata, timeoutMs: number): Promise<Response>;
  close(): void;
}

/**
 * Checks the target against the outbound policy, resolves it with the guarded lookup and opens
 * clients to the checked address. Throws OutboundBlockedError (nothing contacted) or the DNS
 * error (with its `code`, e.g. ENOTFOUND).
 */
export async function openJaegerGrpc(target: GrpcTarget, policy: OutboundPolicy): Promise<JaegerGrpcChannel> {
  if (!target.tls && !policy.allowPrivateNetworks) {
    throw new OutboundBlockedError(`${target.display} must use TLS: write grpcs://${target.display.replace(/^grpc:\/\//, '')} (plaintext grpc:// is allowed on the local stack only)`);
  }
  const host = isIP(target.host) === 6 ? `[${target.host}]` : target.host;
  checkUrl(`${target.tls ? 'https' : 'http'}://${host}:${target.port}/`, policy);
  const resolved = await resolveChecked(target.host, policy.allowPrivateNetworks);
  const channelTarget = resolved.family === 6 ? `ipv6:[${resolved.address}]:${target.port}` : `ipv4:${resolved.address}:${target.port}`;
  const options: grpc.ChannelOptions = {
    'grpc.enable_http_proxy': 0,
    'grpc.enable_retries': 0,
    'grpc.service_config_disable_resolution': 1,
    'grpc.max_receive_message_length': 32 * 1024 * 1024,
    'grpc.default_authority': `${host}:${target.port}`,
    // TLS verifies the certificate against the name the user gave, not the address we dialled.
    ...(target.tls && !isIP(target.host) ? { 'grpc.ssl_target_name_override': target.host } : {}),
  };
  const credentials = target.tls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure();
  const { v3, v2 } = jaegerGrpcServices();
  const clients = { v3: new v3(channelTarget, credentials, options), v2: new v2(channelTarget, credentials, options) };
  return {
    target,
    address: resolved.address,
    call<Response>(api: 'v3' | 'v2', method: string, request: object, metadata: grpc.Metadata, timeoutMs: number): Promise<Response> {
      const client = clients[api] as unknown as Record<string, (req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: (error: grpc.ServiceError | null, response: Response) => void) => void>;
      const fn = client[method];
      if (!fn) return Promise.reject(new Error(`jaeger.api_${api}.QueryService has no method ${method}`));
      return new Promise((resolve, reject) => {
        fn.call(client, request, metadata, { deadline: new Date(Date.now() + timeoutMs) }, (error, response) => (error ? reject(error) : resolve(response)));
      });
    },
    close() {
      clients.v3.close();
      clients.v2.close();
    },
  };
}

/** gRPC metadata carrying the optional auth header (names are lower-cased, as gRPC requires). */
export function authMetadata(authHeader: { name: string; value: string } | undefined): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (authHeader) metadata.set(authHeader.name.toLowerCase(), authHeader.value);
  return metadata;
}

export function isServiceError(error: unknown): error is grpc.ServiceError {
  return error instanceof Error && typeof (error as Partial<grpc.ServiceError>).code === 'number' && 'details' in error;
}

export function grpcStatusName(code: number): string {
  return (grpc.status as unknown as Record<number, string>)[code] ?? `status ${code}`;
}

// ---------------------------------------------------------------------------------------------
// The services check over gRPC

/** What a failed gRPC call means, as a sentence. UNIMPLEMENTED is handled by the caller (fallback). */
export function describeGrpcError(upstream: Upstream, error: unknown, timeoutMs: number, authHeader: AuthHeader | undefined): string {
  if (!isServiceError(error)) return `The gRPC call to Jaeger at ${upstream.origin} failed unexpectedly (${(error as Error)?.message ?? String(error)}).`;
  const name = grpcStatusName(error.code);
  const details = error.details ?? '';
  switch (error.code) {
    case grpc.status.DEADLINE_EXCEEDED:
      return timeoutDetail(upstream, Math.round(timeoutMs / 1000));
    case grpc.status.UNAUTHENTICATED:
      return accessDetail(upstream, name, false, authHeader);
    case grpc.status.PERMISSION_DENIED:
      return accessDetail(upstream, name, true, authHeader);
    case grpc.status.RESOURCE_EXHAUSTED:
      return rateLimitedDetail(upstream, undefined).replace('(429 Too Many Requests)', '(RESOURCE_EXHAUSTED)');
    case grpc.status.UNAVAILABLE: {
      if (/wrong version number|WRONG_VERSION_NUMBER|packet length too long/i.test(details)) {
        return `The TLS handshake with ${upstream.origin} failed: the server does not speak TLS on that port. If it serves plaintext gRPC, write grpc://… (allowed on the local stack only); otherwise check the port (Jaeger's gRPC query API listens on 16685).`;
      }
      if (/certificate|self[- ]signed|unable to verify|altnames/i.test(details)) {
        return `Could not reach Jaeger at ${upstream.origin}: its TLS certificate is not trusted (${/Error: ([^.]*)/.exec(details)?.[1] ?? 'certificate error'}). OpenTrace needs a certificate from a public certificate authority that matches the host name.`;
      }
      if (/Protocol error/i.test(details)) {
        return `${upstream.origin} answered, but not as a gRPC server (it speaks HTTP/1). Check the port: Jaeger's gRPC query API listens on 16685; for its HTTP API (16686) set protocol to "http".`;
      }
      const status = /Received HTTP status code (\d+)/.exec(details)?.[1];
      if (status && Number(status) >= 500) {
        return `Jaeger at ${upstream.origin} failed with HTTP ${status} (a proxy or load balancer in front of it may be reporting that it is down). This is a server-side error, not a problem with your settings: try again later.`;
      }
      const code = /\b(E[A-Z]{3,}|ERR_[A-Z_]+)\b/.exec(details)?.[1];
      return unreachableDetail(upstream, code);
    }
    case grpc.status.INTERNAL:
    case grpc.status.UNKNOWN:
    case grpc.status.DATA_LOSS:
      return `Jaeger at ${upstream.origin} failed with ${name}. This is a server-side error, not a problem with your settings: try again later, and check Jaeger's logs if it persists.${details ? ` It said: "${details.replace(/\s+/g, ' ').slice(0, 200)}".` : ''}`;
    default:
      return `Jaeger at ${upstream.origin} answered ${name}, which OpenTrace did not expect.${details ? ` It said: "${details.replace(/\s+/g, ' ').slice(0, 200)}".` : ''}`;
  }
}

/** `remainingMs`: what is left of the verify's overall budget; each call's deadline is the smaller of it and the policy's total time. */
export async function findServicesOverGrpc(target: GrpcTarget, policy: OutboundPolicy, authHeader: AuthHeader | undefined, upstream: Upstream, remainingMs: () => number = () => policy.totalTimeoutMs): Promise<ServicesFound> {
  let channel;
  try {
    channel = await openJaegerGrpc(target, policy);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code && code !== 'EBLOCKED') throw new CheckFailure(unreachableDetail(upstream, code));
    throw error;
  }
  const metadata = authMetadata(authHeader);
  let timeoutMs = Math.min(policy.totalTimeoutMs, remainingMs());
  try {
    try {
      const answer = await channel.call<{ services?: string[] }>('v3', 'GetServices', {}, metadata, timeoutMs);
      return { api: 'api_v3', services: answer.services ?? [] };
    } catch (error) {
      if (!isServiceError(error) || error.code !== grpc.status.UNIMPLEMENTED) throw new CheckFailure(describeGrpcError(upstream, error, timeoutMs, authHeader));
    }
    timeoutMs = Math.min(policy.totalTimeoutMs, remainingMs());
    try {
      const answer = await channel.call<{ services?: string[] }>('v2', 'GetServices', {}, metadata, timeoutMs);
      return { api: 'api_v2', services: answer.services ?? [] };
    } catch (error) {
      if (!isServiceError(error) || error.code !== grpc.status.UNIMPLEMENTED) throw new CheckFailure(describeGrpcError(upstream, error, timeoutMs, authHeader));
      const http = /Received HTTP status code (\d+)/.exec(error.details ?? '')?.[1];
      throw new CheckFailure(
        `${upstream.origin} is not a Jaeger query service: ${http ? `it answered gRPC calls with HTTP ${http}` : 'it speaks gRPC but serves neither jaeger.api_v3.QueryService nor jaeger.api_v2.QueryService'}. Check the port: Jaeger's gRPC query API listens on 16685 (4317 is the OTLP collector, 16686 the HTTP API).`,
      );
    }
  } finally {
    channel.close();
  }
}
