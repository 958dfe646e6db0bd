/**
 * Jaeger: distributed traces through its query API, over HTTP (port 16686) or gRPC (16685).
 *
 * The live check is one check, `services` (docs/integrations/jaeger.md):
 *   - HTTP: GET {url}/api/v3/services (api_v3, Jaeger's stable API), falling back to the v1
 *     GET {url}/api/services when an older server does not serve /api/v3.
 *   - gRPC: jaeger.api_v3.QueryService/GetServices, falling back to
 *     jaeger.api_v2.QueryService/GetServices when api_v3 is UNIMPLEMENTED.
 * The optional auth header (for a proxy in front of Jaeger) goes on every request, as an HTTP
 * header or as gRPC metadata. The API that answered is kept (`discovered.api`) so later queries
 * go straight to it.
 */
import { z } from 'zod';
import { policyFromEnv, type OutboundPolicy } from '#platform/outbound.ts';
import type { Connector, VerifyContext } from '../types.ts';
import { CheckFailure, CheckList, baseOf, requiredString, serviceUrlSchema, type Upstream } from '../http-checks.ts';
import { parseGrpcTarget } from './address.ts';
import { findServicesOverHttp, type ServicesFound } from './http.ts';

export type JaegerApi = 'api_v3' | 'api_v1' | 'api_v2';

export interface AuthHeader {
  name: string;
  value: string;
}

export interface JaegerConfig {
  url: string;
  protocol: 'http' | 'grpc';
}

export interface JaegerCredentials {
  authHeader?: AuthHeader;
}

// Header names safe both as HTTP headers and as gRPC metadata keys (lower-cased on the wire).
const HEADER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const RESERVED_HEADERS = new Set(['host', 'content-length', 'content-type', 'connection', 'transfer-encoding', 'te', 'upgrade', 'keep-alive', 'trailer', 'expect', 'accept', 'accept-encoding', 'user-agent']);

const headerName = requiredString('authHeader.name')
  .min(1, 'authHeader.name must not be empty')
  .max(100, 'authHeader.name must be at most 100 characters')
  .regex(HEADER_NAME, 'authHeader.name must be an HTTP header name: letters, digits, "-", "_" and "." (e.g. Authorization or X-Api-Key)')
  .refine((name) => !RESERVED_HEADERS.has(name.toLowerCase()), 'authHeader.name cannot be a header OpenTrace sets itself (Host, Content-Type, Accept…)')
  .refine((name) => !/^(proxy-|grpc-)/i.test(name) && !/-bin$/i.test(name), 'authHeader.name cannot start with proxy- or grpc-, or end with -bin');

const headerValue = requiredString('authHeader.value')
  .trim()
  .min(1, 'authHeader.value must not be empty')
  .max(8192, 'authHeader.value must be at most 8192 characters')
  .regex(/^[\x20-\x7e\t]*$/, 'authHeader.value must be printable ASCII on one line');

export const jaegerConfigSchema = z
  .object({
    url: requiredString('url').min(1, 'url is required').max(2048, 'url must be at most 2048 characters').describe(
      'HTTP: http(s)://jaeger-query:16686 (with the base path if any). gRPC: host:16685 or grpcs://host:16685 (TLS), grpc://host:16685 (plaintext, local stack only).',
    ),
    protocol: z.enum(['http', 'grpc'], { error: 'protocol must be "http" (the query API, port 16686) or "grpc" (port 16685)' }).describe('http or grpc'),
  })
  .superRefine((config, ctx) => {
    if (config.protocol === 'http') {
      if (!/^https?:\/\//i.test(config.url) && typeof parseGrpcTarget(config.url) !== 'string') {
        ctx.addIssue({ code: 'custom', path: ['url'], message: `${config.url} is a gRPC address: set protocol to "grpc", or give the HTTP address such as http://jaeger-query:16686` });
        return;
      }
      const result = serviceUrlSchema('http://jaeger-query:16686').safeParse(config.url);
      for (const issue of result.error?.issues ?? []) ctx.addIssue({ code: 'custom', path: ['url'], message: issue.message });
      return;
    }
    const target = parseGrpcTarget(config.url);
    if (typeof target === 'string') {
      const hint = /^https?:\/\//i.test(config.url) ? ' (for an http(s):// address, set protocol to "http")' : '';
      ctx.addIssue({ code: 'custom', path: ['url'], message: `${target}${hint}` });
    }
  })
  .describe('Jaeger query service address and protocol.');

export const jaegerCredentialsSchema = z
  .strictObject({
    authHeader: z
      .strictObject({ name: headerName, value: headerValue }, { error: 'authHeader must be an object { name, value }' })
      .optional()
      .describe('Optional header for a proxy in front of Jaeger, e.g. { "name": "Authorization", "value": "Bearer …" }'),
  })
  .describe('Jaeger has no auth of its own; send a header only if a proxy in front of it needs one.');

function servicesDetail(found: ServicesFound, transport: 'HTTP' | 'gRPC'): string {
  const via =
    found.api === 'api_v3'
      ? `Jaeger answered over ${transport} (api_v3)`
      : found.api === 'api_v1'
        ? 'Jaeger answered through its older v1 HTTP API (this server does not serve /api/v3; upgrade when you can, the v1 routes are being removed)'
        : 'Jaeger answered over gRPC through its legacy api_v2 (this server does not serve api_v3; upgrade when you can)';
  if (found.services.length === 0) return `${via}, but it has no services yet: send traces to it, and OpenTrace sees them on the next sync.`;
  const sample = found.services.slice(0, 5).join(', ') + (found.services.length > 5 ? ', …' : '');
  return `${via}: ${found.services.length} service${found.services.length === 1 ? '' : 's'} (${sample}).`;
}

export interface JaegerConnectorOptions {
  /**
   * The outbound policy for gRPC channels (HTTP goes through ctx.fetch, which carries its own).
   * Default: policyFromEnv(), the same policy the API gives ctx.fetch. Tests pass their own.
   */
  grpcPolicy?: () => OutboundPolicy;
}

export function createJaegerConnector(options: JaegerConnectorOptions = {}): Connector<JaegerConfig, JaegerCredentials> {
  return {
    type: 'jaeger',
    title: 'Jaeger',
    auth: 'api',
    provides: ['Distributed tracing data'],
    configSchema: jaegerConfigSchema,
    credentialsSchema: jaegerCredentialsSchema,
    async verify(ctx: VerifyContext<JaegerConfig, JaegerCredentials>) {
      const authHeader = ctx.credentials.authHeader;
      const grpcTarget = ctx.config.protocol === 'grpc' ? parseGrpcTarget(ctx.config.url) : undefined;
      const origin = grpcTarget && typeof grpcTarget !== 'string' ? grpcTarget.display : baseOf(ctx.config.url);
      const upstream: Upstream = { product: 'Jaeger', origin };
      const checks = new CheckList({ upstream, secrets: [authHeader?.value], logger: ctx.logger });
      const found = await checks.run('services', async () => {
        let result: ServicesFound;
        if (ctx.config.protocol === 'grpc') {
          if (typeof grpcTarget !== 'object') throw new CheckFailure(`url is not a gRPC address: ${grpcTarget ?? 'missing'}.`);
          const { findServicesOverGrpc } = await import('./grpc.ts');
          result = await findServicesOverGrpc(grpcTarget, (options.grpcPolicy ?? policyFromEnv)(), authHeader, upstream, () => checks.remainingMs());
        } else {
          result = await findServicesOverHttp(ctx.fetch, baseOf(ctx.config.url), authHeader, upstream, checks.signal);
        }
        return { detail: servicesDetail(result, ctx.config.protocol === 'grpc' ? 'gRPC' : 'HTTP'), value: result };
      });
      if (!found.ok) return checks.result();
      return checks.result({ api: found.value.api, serviceCount: found.value.services.length });
    },
  };
}

export const jaegerConnector = createJaegerConnector();
