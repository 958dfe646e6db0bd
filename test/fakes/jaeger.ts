/**
 * A fake Jaeger query service for tests and the README walkthrough: the HTTP API on one port and,
 * when asked, the gRPC API on another, serving the same generated traces (recent, so any "last
 * hour" search finds them).
 *
 * HTTP, api_v3 (Jaeger's HTTP gateway; answers are OTLP JSON):
 *   GET /api/v3/services                 { services: [...] }
 *   GET /api/v3/operations?service=      { operations: [{ name, spanKind }] }
 *   GET /api/v3/traces?query.service_name=&query.start_time_min=&query.start_time_max=
 *       (RFC 3339, both required → else 400; camelCase names accepted too; no match → 404)
 *                                        { result: { resourceSpans: [...] } }
 *   GET /api/v3/traces/{traceId}         { result: { resourceSpans: [...] } }, unknown → 404
 *   GET /api/v3/dependencies             { dependencies: [{ parent, child, callCount }] }
 * HTTP, v1 (internal, what older servers and the UI use):
 *   GET /api/services, /api/services/{service}/operations, /api/operations?service=,
 *   GET /api/traces/{traceId}, GET /api/dependencies?endTs=&lookback=
 * gRPC: jaeger.api_v3.QueryService (GetServices, GetOperations, FindTraces, GetTrace,
 *   GetDependencies), or with `grpc: 'v2-only'` only jaeger.api_v2.QueryService/GetServices.
 *
 * Options: `authHeader` required on every request (HTTP header or gRPC metadata), `mode`
 * (401/403/404/429/500/503 or 'slow', gRPC mapped to UNAUTHENTICATED/PERMISSION_DENIED/
 * UNIMPLEMENTED/RESOURCE_EXHAUSTED/INTERNAL/UNAVAILABLE), `apis: 'v1-only'` (an older server:
 * /api/v3/* answers the UI's index page, or 404 with `v3Missing: 'not-found'`), `services`, and
 * `impersonate` ('nginx', 'spa').
 */
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { jaegerGrpcServices } from '../../functions/connectors/jaeger/grpc.ts';
import { html, NGINX_404, reply, SPA_PAGE, startHttpFake, type CommonFakeOptions, type FakeReply, type HttpFake, type RecordedRequest } from './http-fake.ts';

export interface JaegerFakeOptions extends CommonFakeOptions {
  /** A header every request must carry (as a proxy in front of Jaeger would demand). */
  authHeader?: { name: string; value: string };
  /** 'v3+v1' (default, a current server), 'v1-only' (an older one without api_v3). */
  apis?: 'v3+v1' | 'v1-only';
  /** How a v1-only server answers /api/v3/*: its UI's index page (default) or 404. */
  v3Missing?: 'ui-page' | 'not-found';
  services?: string[];
  impersonate?: 'nginx' | 'spa';
  /** Also serve gRPC: 'v3' (api_v3) or 'v2-only' (legacy api_v2 only). */
  grpc?: 'v3' | 'v2-only';
  /** Fixed gRPC port (the start-fakes script); default a free one. */
  grpcPort?: number;
}

export interface JaegerFake extends HttpFake<JaegerFakeOptions> {
  /** `grpc://127.0.0.1:<port>` when gRPC is served. */
  grpcUrl?: string;
  /** The ids of the traces it serves (generated at start, a few minutes old). */
  traceIds: string[];
}

const JAEGER_UI = '<!doctype html><html lang="en"><head><title>Jaeger UI</title><base href="/" data-inject-target="BASE_URL"/></head><body><div id="jaeger-ui-root"></div></body></html>';

// ---------------------------------------------------------------------------------------------
// Generated traces

interface FakeSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  service: string;
  name: string;
  kind: 'server' | 'client' | 'internal';
  startNs: bigint;
  durationNs: bigint;
  error?: string;
  attributes: Record<string, string | number>;
}

const DEFAULT_SERVICES = ['frontend', 'checkout', 'payments', 'redis'];

const OPERATIONS: Record<string, { name: string; spanKind: string }[]> = {
  frontend: [
    { name: 'GET /dispatch', spanKind: 'server' },
    { name: 'POST /checkout', spanKind: 'client' },
  ],
  checkout: [
    { name: 'POST /checkout', spanKind: 'server' },
    { name: 'charge', spanKind: 'client' },
  ],
  payments: [
    { name: 'charge', spanKind: 'server' },
    { name: 'HGET', spanKind: 'client' },
  ],
  redis: [{ name: 'HGET', spanKind: 'server' }],
};

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

function makeTraces(): FakeSpan[][] {
  const now = BigInt(Date.now()) * 1_000_000n;
  const traces: FakeSpan[][] = [];
  for (let i = 0; i < 3; i++) {
    const traceId = hex(16);
    const start = now - BigInt((i + 1) * 5 * 60) * 1_000_000_000n;
    const ms = (n: number) => BigInt(n) * 1_000_000n;
    const failed = i === 1;
    const root: FakeSpan = { traceId, spanId: hex(8), service: 'frontend', name: 'GET /dispatch', kind: 'server', startNs: start, durationNs: ms(failed ? 2150 : 320), attributes: { 'http.method': 'GET', 'http.status_code': failed ? 504 : 200 } };
    const call: FakeSpan = { traceId, spanId: hex(8), parentSpanId: root.spanId, service: 'frontend', name: 'POST /checkout', kind: 'client', startNs: start + ms(5), durationNs: ms(failed ? 2120 : 300), attributes: { 'http.method': 'POST' } };
    const checkout: FakeSpan = { traceId, spanId: hex(8), parentSpanId: call.spanId, service: 'checkout', name: 'POST /checkout', kind: 'server', startNs: start + ms(8), durationNs: ms(failed ? 2110 : 290), attributes: { 'http.route': '/checkout' } };
    const charge: FakeSpan = { traceId, spanId: hex(8), parentSpanId: checkout.spanId, service: 'checkout', name: 'charge', kind: 'client', startNs: start + ms(20), durationNs: ms(failed ? 2000 : 240), attributes: { 'rpc.system': 'grpc' } };
    const payments: FakeSpan = {
      traceId,
      spanId: hex(8),
      parentSpanId: charge.spanId,
      service: 'payments',
      name: 'charge',
      kind: 'server',
      startNs: start + ms(24),
      durationNs: ms(failed ? 1990 : 230),
      attributes: { 'payment.provider': 'acmepay' },
      ...(failed ? { error: 'upstream request failed: timeout after 2s' } : {}),
    };
    const redis: FakeSpan = { traceId, spanId: hex(8), parentSpanId: payments.spanId, service: 'redis', name: 'HGET', kind: 'server', startNs: start + ms(30), durationNs: ms(3), attributes: { 'db.system': 'redis' } };
    traces.push([root, call, checkout, charge, payments, redis]);
  }
  return traces;
}

const KIND_NUMBER = { internal: 1, server: 2, client: 3 } as const;

function otlpAttributes(attributes: Record<string, string | number>) {
  return Object.entries(attributes).map(([key, value]) => ({ key, value: typeof value === 'number' ? { intValue: String(value) } : { stringValue: value } }));
}

/** OTLP JSON (TracesData), grouped by service like Jaeger's api_v3. */
function otlpJson(spans: FakeSpan[]) {
  const byService = new Map<string, FakeSpan[]>();
  for (const span of spans) byService.set(span.service, [...(byService.get(span.service) ?? []), span]);
  return {
    resourceSpans: [...byService.entries()].map(([service, list]) => ({
      resource: { attributes: otlpAttributes({ 'service.name': service, 'host.name': `${service}-7d9f8c` }) },
      scopeSpans: [
        {
          scope: { name: 'fake-instrumentation', version: '1.0.0' },
          spans: list.map((span) => ({
            traceId: span.traceId,
            spanId: span.spanId,
            ...(span.parentSpanId ? { parentSpanId: span.parentSpanId } : {}),
            name: span.name,
            kind: KIND_NUMBER[span.kind],
            startTimeUnixNano: String(span.startNs),
            endTimeUnixNano: String(span.startNs + span.durationNs),
            attributes: otlpAttributes(span.attributes),
            status: span.error ? { code: 2, message: span.error } : {},
          })),
        },
      ],
    })),
  };
}

/** The same, as protobuf-ready objects for gRPC (bytes ids, enum names). */
function otlpProto(spans: FakeSpan[]) {
  const json = otlpJson(spans);
  const kindName = ['SPAN_KIND_UNSPECIFIED', 'SPAN_KIND_INTERNAL', 'SPAN_KIND_SERVER', 'SPAN_KIND_CLIENT'];
  return {
    resourceSpans: json.resourceSpans.map((rs) => ({
      resource: rs.resource,
      scopeSpans: rs.scopeSpans.map((ss) => ({
        scope: ss.scope,
        spans: ss.spans.map((span) => ({
          ...span,
          traceId: Buffer.from(span.traceId, 'hex'),
          spanId: Buffer.from(span.spanId, 'hex'),
          parentSpanId: span.parentSpanId ? Buffer.from(span.parentSpanId, 'hex') : Buffer.alloc(0),
          kind: kindName[span.kind],
          status: 'code' in span.status ? { code: 'STATUS_CODE_ERROR', message: span.status.message } : {},
        })),
      })),
    })),
  };
}

/** Jaeger's v1 JSON trace (what /api/traces/{id} answers). */
function v1Trace(spans: FakeSpan[]) {
  const services = [...new Set(spans.map((s) => s.service))];
  const processId = (service: string) => `p${services.indexOf(service) + 1}`;
  return {
    traceID: spans[0]!.traceId,
    spans: spans.map((span) => ({
      traceID: span.traceId,
      spanID: span.spanId,
      operationName: span.name,
      references: span.parentSpanId ? [{ refType: 'CHILD_OF', traceID: span.traceId, spanID: span.parentSpanId }] : [],
      startTime: Number(span.startNs / 1000n),
      duration: Number(span.durationNs / 1000n),
      tags: [
        { key: 'span.kind', type: 'string', value: span.kind },
        ...Object.entries(span.attributes).map(([key, value]) => ({ key, type: typeof value === 'number' ? 'int64' : 'string', value })),
        ...(span.error ? [{ key: 'error', type: 'bool', value: true }, { key: 'otel.status_description', type: 'string', value: span.error }] : []),
      ],
      logs: [],
      processID: processId(span.service),
      warnings: null,
      flags: 1,
    })),
    processes: Object.fromEntries(services.map((service) => [processId(service), { serviceName: service, tags: [{ key: 'hostname', type: 'string', value: `${service}-7d9f8c` }] }])),
    warnings: null,
  };
}

function dependencies(traces: FakeSpan[][]): { parent: string; child: string; callCount: number }[] {
  const counts = new Map<string, number>();
  for (const spans of traces) {
    for (const span of spans) {
      const parent = spans.find((s) => s.spanId === span.parentSpanId);
      if (parent && parent.service !== span.service) counts.set(`${parent.service}>${span.service}`, (counts.get(`${parent.service}>${span.service}`) ?? 0) + 1);
    }
  }
  return [...counts.entries()].map(([key, count]) => {
    const [parent, child] = key.split('>') as [string, string];
    return { parent, child, callCount: count * 14 };
  });
}

// ---------------------------------------------------------------------------------------------
// HTTP

const v1Envelope = (data: unknown, errors: unknown = null) => ({ data, total: Array.isArray(data) ? data.length : 0, limit: 0, offset: 0, errors });
const v3Error = (status: number, message: string) => reply(status, { error: { httpCode: status, message } });

function param(query: URLSearchParams, ...names: string[]): string | null {
  for (const name of names) if (query.get(name) !== null) return query.get(name);
  return null;
}

/** Go's time.ParseDuration for the units Jaeger accepts. Answers nanoseconds. */
function goDuration(value: string): bigint | undefined {
  const match = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)$/.exec(value);
  if (!match) return undefined;
  const unit: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  return BigInt(Math.round(Number(match[1]) * unit[match[2]!]!));
}

function errorReply(status: number, request: RecordedRequest): FakeReply {
  if (status === 401) return reply(401, 'Unauthorized\n', { 'content-type': 'text/plain; charset=utf-8', 'www-authenticate': 'Bearer realm="jaeger"' });
  if (status === 403) return reply(403, 'Forbidden\n', { 'content-type': 'text/plain; charset=utf-8' });
  if (status === 404) return reply(404, '404 page not found\n', { 'content-type': 'text/plain; charset=utf-8' });
  if (status === 429) return reply(429, 'Too Many Requests\n', { 'content-type': 'text/plain; charset=utf-8' });
  if (status === 502 || status === 503) return html(status, `<html><body><h1>${status}</h1>no healthy upstream</body></html>`);
  if (request.path.startsWith('/api/v3/')) return v3Error(status, 'failed to query storage: context deadline exceeded');
  return reply(status, v1Envelope(null, [{ code: status, msg: 'failed to query storage: context deadline exceeded' }]));
}

function authorized(headerValue: string | string[] | undefined, options: JaegerFakeOptions): boolean {
  if (!options.authHeader) return true;
  return headerValue === options.authHeader.value;
}

function handleHttp(request: RecordedRequest, options: JaegerFakeOptions, traces: FakeSpan[][]): FakeReply {
  if (options.impersonate === 'nginx') return html(404, NGINX_404, { server: 'nginx' });
  if (options.impersonate === 'spa') return html(200, SPA_PAGE);
  if (options.authHeader && !authorized(request.headers[options.authHeader.name.toLowerCase()], options)) {
    const presented = request.headers[options.authHeader.name.toLowerCase()];
    return reply(401, options.echoCredentials && presented ? `Unauthorized: ${String(presented)}\n` : 'Unauthorized\n', { 'content-type': 'text/plain; charset=utf-8' });
  }
  const services = options.services ?? DEFAULT_SERVICES;
  const q = request.query;
  const path = request.path;

  if (path.startsWith('/api/v3/') && options.apis === 'v1-only') {
    return options.v3Missing === 'not-found' ? reply(404, '404 page not found\n', { 'content-type': 'text/plain; charset=utf-8' }) : html(200, JAEGER_UI);
  }
  if (path === '/api/v3/services') return reply(200, services.length ? { services } : {});
  if (path === '/api/v3/operations') {
    const service = q.get('service');
    if (!service) return v3Error(400, 'service name is required');
    const kind = q.get('span_kind') ?? q.get('spanKind');
    return reply(200, { operations: (OPERATIONS[service] ?? []).filter((op) => !kind || op.spanKind === kind) });
  }
  if (path === '/api/v3/traces') {
    const service = param(q, 'query.service_name', 'query.serviceName');
    const min = param(q, 'query.start_time_min', 'query.startTimeMin');
    const max = param(q, 'query.start_time_max', 'query.startTimeMax');
    if (!min || !max) return v3Error(400, 'query.start_time_min and query.start_time_max are required');
    const minMs = Date.parse(min);
    const maxMs = Date.parse(max);
    if (Number.isNaN(minMs) || !/^\d{4}-\d{2}-\d{2}T/.test(min)) return v3Error(400, `malformed parameter query.start_time_min: cannot parse "${min}" as RFC 3339`);
    if (Number.isNaN(maxMs) || !/^\d{4}-\d{2}-\d{2}T/.test(max)) return v3Error(400, `malformed parameter query.start_time_max: cannot parse "${max}" as RFC 3339`);
    if (!service) return v3Error(400, 'query.service_name is required');
    const operation = param(q, 'query.operation_name', 'query.operationName');
    const durationMin = param(q, 'query.duration_min', 'query.durationMin');
    const durationMax = param(q, 'query.duration_max', 'query.durationMax');
    const minNs = durationMin ? goDuration(durationMin) : undefined;
    const maxNs = durationMax ? goDuration(durationMax) : undefined;
    if (durationMin && minNs === undefined) return v3Error(400, `malformed parameter query.duration_min: time: invalid duration "${durationMin}"`);
    if (durationMax && maxNs === undefined) return v3Error(400, `malformed parameter query.duration_max: time: invalid duration "${durationMax}"`);
    const limit = Number(param(q, 'query.num_traces', 'query.search_depth', 'query.searchDepth') ?? 20) || 20;
    const matching = traces
      .filter((spans) =>
        spans.some((span) => {
          const startMs = Number(span.startNs / 1_000_000n);
          return (
            span.service === service &&
            (!operation || span.name === operation) &&
            startMs >= minMs &&
            startMs < maxMs &&
            (minNs === undefined || span.durationNs >= minNs) &&
            (maxNs === undefined || span.durationNs <= maxNs)
          );
        }),
      )
      .slice(0, limit);
    if (matching.length === 0) return v3Error(404, 'trace not found');
    return reply(200, { result: otlpJson(matching.flat()) });
  }
  const v3Trace = /^\/api\/v3\/traces\/([^/]+)$/.exec(path);
  if (v3Trace) {
    if (!/^[0-9a-f]{1,32}$/i.test(v3Trace[1]!)) return v3Error(400, `malformed parameter trace_id: TraceID cannot be longer than 32 hex characters: ${v3Trace[1]}`);
    const spans = traces.find((t) => t[0]!.traceId === v3Trace[1]!.toLowerCase().padStart(32, '0'));
    return spans ? reply(200, { result: otlpJson(spans) }) : v3Error(404, 'trace not found');
  }
  if (path === '/api/v3/dependencies') return reply(200, { dependencies: dependencies(traces).map((d) => ({ ...d, callCount: String(d.callCount) })) });

  if (path === '/api/services') return reply(200, v1Envelope(services.length ? services : null));
  const v1Ops = /^\/api\/services\/([^/]+)\/operations$/.exec(path);
  if (v1Ops) return reply(200, v1Envelope((OPERATIONS[v1Ops[1]!] ?? []).map((op) => op.name)));
  if (path === '/api/operations') return reply(200, v1Envelope((OPERATIONS[q.get('service') ?? ''] ?? []).map((op) => ({ name: op.name, spanKind: op.spanKind }))));
  const v1TraceRoute = /^\/api\/traces\/([^/]+)$/.exec(path);
  if (v1TraceRoute) {
    const spans = traces.find((t) => t[0]!.traceId === v1TraceRoute[1]!.toLowerCase().padStart(32, '0'));
    return spans ? reply(200, v1Envelope([v1Trace(spans)])) : reply(404, v1Envelope(null, [{ code: 404, msg: 'trace not found' }]));
  }
  if (path === '/api/dependencies') {
    if (!q.get('endTs')) return reply(400, v1Envelope(null, [{ code: 400, msg: 'unable to parse param \'endTs\': strconv.ParseInt: parsing "": invalid syntax' }]));
    return reply(200, v1Envelope(dependencies(traces)));
  }
  if (path.startsWith('/api/')) return reply(404, '404 page not found\n', { 'content-type': 'text/plain; charset=utf-8' });
  return html(200, JAEGER_UI);
}

// ---------------------------------------------------------------------------------------------
// gRPC

type Callback = (error: Partial<grpc.StatusObject> | null, value?: unknown) => void;

const GRPC_FOR_MODE: Record<number, grpc.status> = {
  401: grpc.status.UNAUTHENTICATED,
  403: grpc.status.PERMISSION_DENIED,
  404: grpc.status.UNIMPLEMENTED,
  429: grpc.status.RESOURCE_EXHAUSTED,
  500: grpc.status.INTERNAL,
  502: grpc.status.UNAVAILABLE,
  503: grpc.status.UNAVAILABLE,
};

async function startGrpc(options: JaegerFakeOptions, traces: FakeSpan[][], requests: RecordedRequest[]) {
  const server = new grpc.Server();
  const timers = new Set<NodeJS.Timeout>();
  const { v3, v2 } = jaegerGrpcServices();

  /** Records the call, applies mode and auth; answers an error to send, or undefined to go on. */
  const gate = async (method: string, metadata: grpc.Metadata): Promise<Partial<grpc.StatusObject> | undefined> => {
    const headers = Object.fromEntries(Object.entries(metadata.getMap()).map(([key, value]) => [key, String(value)]));
    requests.push({ method: 'GRPC', url: method, path: method, query: new URLSearchParams(), headers, body: '' });
    const mode = options.mode ?? 'normal';
    if (mode === 'slow') {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          timers.delete(timer);
          resolve();
        }, options.delayMs ?? 5000);
        timers.add(timer);
      });
    }
    if (typeof mode === 'number') return { code: GRPC_FOR_MODE[mode] ?? grpc.status.INTERNAL, details: mode === 500 ? 'failed to query storage: context deadline exceeded' : grpc.status[GRPC_FOR_MODE[mode] ?? 13] };
    if (options.authHeader && headers[options.authHeader.name.toLowerCase()] !== options.authHeader.value) {
      const presented = headers[options.authHeader.name.toLowerCase()];
      return { code: grpc.status.UNAUTHENTICATED, details: options.echoCredentials && presented ? `invalid credentials: ${presented}` : 'missing or invalid credentials' };
    }
    return undefined;
  };
  const unary =
    (method: string, answer: (request: Record<string, unknown>) => unknown) =>
    (call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, callback: Callback) => {
      void gate(method, call.metadata).then((error) => (error ? callback(error) : callback(null, answer(call.request))));
    };
  const stream =
    (method: string, answer: (request: Record<string, unknown>) => unknown[] | Partial<grpc.StatusObject>) =>
    (call: grpc.ServerWritableStream<Record<string, unknown>, unknown>) => {
      void gate(method, call.metadata).then((error) => {
        const result = error ?? answer(call.request);
        if (!Array.isArray(result)) return call.destroy(Object.assign(new Error(result.details ?? 'error'), result) as Error);
        for (const chunk of result) call.write(chunk);
        call.end();
      });
    };
  const services = () => options.services ?? DEFAULT_SERVICES;
  const tsMs = (ts: unknown) => (ts && typeof ts === 'object' ? Number((ts as { seconds?: string }).seconds ?? 0) * 1000 + Math.floor(Number((ts as { nanos?: number }).nanos ?? 0) / 1e6) : undefined);

  if (options.grpc === 'v2-only') {
    server.addService(v2.service, { GetServices: unary('/jaeger.api_v2.QueryService/GetServices', () => ({ services: services() })) });
  } else {
    server.addService(v3.service, {
      GetServices: unary('/jaeger.api_v3.QueryService/GetServices', () => ({ services: services() })),
      GetOperations: unary('/jaeger.api_v3.QueryService/GetOperations', (request) => ({
        operations: (OPERATIONS[String(request.service)] ?? []).filter((op) => !request.spanKind || op.spanKind === request.spanKind).map((op) => ({ name: op.name, spanKind: op.spanKind })),
      })),
      GetTrace: stream('/jaeger.api_v3.QueryService/GetTrace', (request) => {
        const spans = traces.find((t) => t[0]!.traceId === String(request.traceId).toLowerCase().padStart(32, '0'));
        return spans ? [otlpProto(spans)] : { code: grpc.status.NOT_FOUND, details: 'trace not found' };
      }),
      FindTraces: stream('/jaeger.api_v3.QueryService/FindTraces', (request) => {
        const query = (request.query ?? {}) as Record<string, unknown>;
        const min = tsMs(query.startTimeMin);
        const max = tsMs(query.startTimeMax);
        if (!min || !max) return { code: grpc.status.INVALID_ARGUMENT, details: 'start time min and max are required parameters' };
        const matching = traces.filter((spans) => spans.some((span) => span.service === query.serviceName && (!query.operationName || span.name === query.operationName) && Number(span.startNs / 1_000_000n) >= min && Number(span.startNs / 1_000_000n) < max));
        return matching.length ? [otlpProto(matching.flat())] : [];
      }),
      GetDependencies: unary('/jaeger.api_v3.QueryService/GetDependencies', () => ({ dependencies: dependencies(traces).map((d) => ({ ...d, callCount: String(d.callCount) })) })),
    });
  }
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${options.grpcPort ?? 0}`, grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return {
    url: `grpc://127.0.0.1:${port}`,
    close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      server.forceShutdown();
    },
  };
}

export async function startJaegerFake(options: JaegerFakeOptions = {}): Promise<JaegerFake> {
  const shared: JaegerFakeOptions = { ...options };
  const traces = makeTraces();
  const http = await startHttpFake<JaegerFakeOptions>({ options: shared, errorReply: (status, request) => errorReply(status, request), handle: (request, current) => handleHttp(request, current, traces) });
  const rpc = shared.grpc ? await startGrpc(shared, traces, http.requests) : undefined;
  return {
    ...http,
    ...(rpc ? { grpcUrl: rpc.url } : {}),
    traceIds: traces.map((spans) => spans[0]!.traceId),
    async close() {
      rpc?.close();
      await http.close();
    },
  };
}

