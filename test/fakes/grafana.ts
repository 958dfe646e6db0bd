/**
 * A fake Grafana for tests and the README walkthrough, following Grafana's documented HTTP API:
 *
 * - `GET /api/health` (anonymous): `{ commit, database, version }`; 503 when the database fails.
 * - `GET /api/datasources`, `GET /api/datasources/uid/{uid}` (service-account bearer token).
 * - The data-source proxy, so later live-query code has something to talk to:
 *   Loki  `/api/datasources/proxy/uid/{uid}/loki/api/v1/query_range|query|labels|label/{name}/values`
 *   Prometheus/Mimir `/api/datasources/proxy/uid/{uid}/api/v1/query|query_range|labels|series|label/{name}/values`
 *   Answers are generated over the asked time range, so any window has plausible data.
 *
 * Options: the expected `token`, `mode` (401/403/404/429/500/503 on every authenticated route,
 * 'slow'), `database: 'failing'`, custom `datasources`, and `impersonate` to be the wrong kind of
 * server ('nginx' 404 pages, 'spa' a web app answering 200 HTML everywhere, 'prometheus').
 */
import { randomUUID } from 'node:crypto';
import {
  bearerToken,
  html,
  NGINX_404,
  reply,
  SPA_PAGE,
  startHttpFake,
  type CommonFakeOptions,
  type FakeReply,
  type HttpFake,
  type RecordedRequest,
} from './http-fake.ts';

export interface FakeGrafanaDatasource {
  id: number;
  uid: string;
  name: string;
  type: string;
  url: string;
  isDefault?: boolean;
}

export interface GrafanaFakeOptions extends CommonFakeOptions {
  /** The service-account token the fake accepts (default `glsa_fake_viewer_token`). */
  token?: string;
  version?: string;
  database?: 'ok' | 'failing';
  datasources?: FakeGrafanaDatasource[];
  impersonate?: 'nginx' | 'spa' | 'prometheus';
}

export type GrafanaFake = HttpFake<GrafanaFakeOptions>;

export const DEFAULT_GRAFANA_TOKEN = 'glsa_fake_viewer_token';

export const DEFAULT_GRAFANA_DATASOURCES: FakeGrafanaDatasource[] = [
  { id: 1, uid: 'loki-main', name: 'Loki', type: 'loki', url: 'http://loki:3100', isDefault: false },
  { id: 2, uid: 'mimir-prod', name: 'Mimir', type: 'prometheus', url: 'http://mimir:9009/prometheus', isDefault: true },
  { id: 3, uid: 'tempo', name: 'Tempo', type: 'tempo', url: 'http://tempo:3200', isDefault: false },
];

const SERVICES = ['checkout', 'payments', 'frontend'];

function grafanaError(status: number): FakeReply {
  switch (status) {
    case 401:
      return reply(401, { extra: null, message: 'Invalid API key', messageId: 'api-key.invalid', statusCode: 401, traceID: '' });
    case 403:
      return reply(403, { accessErrorId: 'ACE0123456789', message: "You'll need additional permissions to perform this action. Permissions needed: datasources:read", title: 'Access denied' });
    case 404:
      return reply(404, { message: 'Not found' });
    case 429:
      return reply(429, { message: 'Too many requests' });
    case 502:
    case 503:
      return html(status, `<html><body><h1>${status} Service Unavailable</h1>upstream connect error</body></html>`);
    default:
      return reply(status, { message: 'Internal Server Error', traceID: '' });
  }
}

function datasourceView(ds: FakeGrafanaDatasource) {
  const typeName: Record<string, string> = { loki: 'Loki', prometheus: 'Prometheus', tempo: 'Tempo' };
  return {
    id: ds.id,
    uid: ds.uid,
    orgId: 1,
    name: ds.name,
    type: ds.type,
    typeName: typeName[ds.type] ?? ds.type,
    typeLogoUrl: `public/app/plugins/datasource/${ds.type}/img/${ds.type}_icon.svg`,
    access: 'proxy',
    url: ds.url,
    user: '',
    database: '',
    basicAuth: false,
    isDefault: ds.isDefault ?? false,
    jsonData: {},
    readOnly: false,
  };
}

/** Loki/Prometheus time parameters: RFC 3339, Unix seconds (float) or Unix nanoseconds. Answers milliseconds. */
function parseTime(value: string | null, fallback: number): number {
  if (!value) return fallback;
  if (/^\d{16,}$/.test(value)) return Number(BigInt(value) / 1_000_000n);
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const parsed = Date.parse(value);
  return Number.isNaN(parsed) ? fallback : parsed;
}

/** Prometheus durations (`15s`, `1m`) or seconds. Answers seconds. */
function parseStep(value: string | null): number {
  if (!value) return 60;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value);
  if (!match) return 60;
  const factor: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };
  return Math.max(1, Number(match[1]) * (factor[match[2] ?? 's'] ?? 1));
}

/** `{service_name="checkout", level="error"} |= "timeout"` → label matchers and a line filter (enough LogQL for a fake). */
function parseLogQl(query: string): { labels: Record<string, string>; contains?: string } {
  const labels: Record<string, string> = {};
  const selector = /\{([^}]*)\}/.exec(query)?.[1] ?? '';
  for (const match of selector.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"([^"]*)"/g)) labels[match[1]!] = match[2]!;
  const contains = /\|=\s*"([^"]*)"/.exec(query)?.[1];
  return contains === undefined ? { labels } : { labels, contains };
}

const LOG_TEMPLATES: { level: string; text: (service: string) => string }[] = [
  { level: 'info', text: (s) => `msg="request served" service=${s} route=/api/${s} status=200 duration_ms=42` },
  { level: 'warn', text: (s) => `msg="slow upstream" service=${s} upstream=postgres duration_ms=1870` },
  { level: 'error', text: (s) => `msg="upstream request failed: timeout after 2s" service=${s} upstream=${s === 'checkout' ? 'payments' : 'postgres'}` },
];

function lokiStreams(query: string, startMs: number, endMs: number, limit: number) {
  const { labels, contains } = parseLogQl(query);
  const result: { stream: Record<string, string>; values: [string, string][] }[] = [];
  for (const service of SERVICES) {
    for (const template of LOG_TEMPLATES) {
      const stream = { service_name: service, level: template.level, namespace: 'prod', job: `prod/${service}` };
      if (Object.entries(labels).some(([name, value]) => (stream as Record<string, string>)[name] !== value)) continue;
      const line = `level=${template.level} ${template.text(service)}`;
      if (contains !== undefined && !line.includes(contains)) continue;
      const count = 5;
      const values: [string, string][] = [];
      for (let i = 0; i < count; i++) {
        const at = endMs - ((endMs - startMs) * (i + 0.5)) / count;
        values.push([`${BigInt(Math.floor(at)) * 1_000_000n}`, `${line} trace_id=${(i + 1).toString(16).padStart(32, 'a')}`]);
      }
      result.push({ stream, values });
    }
  }
  let remaining = limit;
  return result
    .map((entry) => {
      const values = entry.values.slice(0, Math.max(0, remaining));
      remaining -= values.length;
      return { ...entry, values };
    })
    .filter((entry) => entry.values.length > 0);
}

const METRICS: Record<string, { labels: Record<string, string>; base: number }[]> = {
  up: SERVICES.map((service) => ({ labels: { job: service, instance: `${service}:8080` }, base: 1 })),
  http_requests_total: SERVICES.flatMap((service) => [
    { labels: { job: service, service, code: '200' }, base: 1200 },
    { labels: { job: service, service, code: '500' }, base: 7 },
  ]),
  process_cpu_seconds_total: SERVICES.map((service) => ({ labels: { job: service, service }, base: 35 })),
  http_request_duration_seconds_bucket: SERVICES.map((service) => ({ labels: { job: service, service, le: '0.5' }, base: 900 })),
};

function metricName(expr: string): string {
  const names = Object.keys(METRICS);
  return names.find((name) => new RegExp(`\\b${name}\\b`).test(expr)) ?? 'up';
}

function promSeries(expr: string) {
  const name = metricName(expr);
  return (METRICS[name] ?? []).map((series) => ({ metric: { __name__: name, ...series.labels }, base: series.base }));
}

function valueAt(base: number, seconds: number): string {
  if (base === 1) return '1';
  return (base + (Math.sin(seconds / 300) + 1) * base * 0.05).toFixed(3);
}

function lokiProxy(rest: string, request: RecordedRequest): FakeReply {
  const now = Date.now();
  const q = request.query;
  if (rest === 'loki/api/v1/query_range' || rest === 'loki/api/v1/query') {
    const query = q.get('query');
    if (!query) return reply(400, { status: 'error', errorType: 'bad_data', error: 'query must not be empty' });
    const end = parseTime(q.get('end') ?? q.get('time'), now);
    const start = parseTime(q.get('start'), end - 3_600_000);
    const limit = Number(q.get('limit') ?? 100);
    return reply(200, { status: 'success', data: { resultType: 'streams', result: lokiStreams(query, start, end, limit), stats: { summary: { execTime: 0.004 } } } });
  }
  if (rest === 'loki/api/v1/labels') return reply(200, { status: 'success', data: ['job', 'level', 'namespace', 'service_name'] });
  const labelValues = /^loki\/api\/v1\/label\/([^/]+)\/values$/.exec(rest);
  if (labelValues) {
    const values: Record<string, string[]> = { service_name: SERVICES, level: ['error', 'info', 'warn'], namespace: ['prod'], job: SERVICES.map((s) => `prod/${s}`) };
    return reply(200, { status: 'success', data: values[labelValues[1]!] ?? [] });
  }
  return reply(404, { message: 'Not found' });
}

function prometheusProxy(rest: string, request: RecordedRequest): FakeReply {
  const q = request.query;
  const nowSeconds = Date.now() / 1000;
  if (rest === 'api/v1/query') {
    const query = q.get('query');
    if (!query) return reply(400, { status: 'error', errorType: 'bad_data', error: 'invalid parameter "query": unknown position: parse error: no expression found in input' });
    const at = parseTime(q.get('time'), nowSeconds * 1000) / 1000;
    return reply(200, { status: 'success', data: { resultType: 'vector', result: promSeries(query).map((s) => ({ metric: s.metric, value: [at, valueAt(s.base, at)] })) } });
  }
  if (rest === 'api/v1/query_range') {
    const query = q.get('query');
    if (!query) return reply(400, { status: 'error', errorType: 'bad_data', error: 'invalid parameter "query": no expression found in input' });
    const end = parseTime(q.get('end'), nowSeconds * 1000) / 1000;
    const start = parseTime(q.get('start'), (end - 3600) * 1000) / 1000;
    const step = parseStep(q.get('step'));
    if ((end - start) / step > 11_000) return reply(400, { status: 'error', errorType: 'bad_data', error: 'exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)' });
    const result = promSeries(query).map((s) => {
      const values: [number, string][] = [];
      for (let t = start; t <= end; t += step) values.push([Math.round(t * 1000) / 1000, valueAt(s.base, t)]);
      return { metric: s.metric, values };
    });
    return reply(200, { status: 'success', data: { resultType: 'matrix', result } });
  }
  if (rest === 'api/v1/labels') return reply(200, { status: 'success', data: ['__name__', 'code', 'instance', 'job', 'le', 'service'] });
  if (rest === 'api/v1/series') return reply(200, { status: 'success', data: Object.values(METRICS).flat().map((s) => s.labels) });
  const labelValues = /^api\/v1\/label\/([^/]+)\/values$/.exec(rest);
  if (labelValues) {
    const name = labelValues[1]!;
    if (name === '__name__') return reply(200, { status: 'success', data: Object.keys(METRICS).sort() });
    const values = new Set<string>();
    for (const series of Object.values(METRICS).flat()) if (series.labels[name] !== undefined) values.add(series.labels[name]);
    return reply(200, { status: 'success', data: [...values].sort() });
  }
  return reply(404, { status: 'error', errorType: 'not_found', error: 'not found' });
}

function handle(request: RecordedRequest, options: GrafanaFakeOptions): FakeReply {
  if (options.impersonate === 'nginx') return html(404, NGINX_404, { server: 'nginx' });
  if (options.impersonate === 'spa') return html(200, SPA_PAGE);
  if (options.impersonate === 'prometheus') return reply(404, '404 page not found\n', { 'content-type': 'text/plain; charset=utf-8' });

  const version = options.version ?? '11.3.0';
  if (request.path === '/api/health') {
    const database = options.database ?? 'ok';
    return reply(database === 'ok' ? 200 : 503, { commit: 'd9455ff7db', database, version });
  }
  if (request.path === '/' || request.path === '/login') return html(200, '<!DOCTYPE html><html lang="en"><head><title>Grafana</title></head><body></body></html>');
  if (!request.path.startsWith('/api/')) return html(404, '<!DOCTYPE html><html><head><title>Grafana</title></head><body>Page not found</body></html>');

  const token = bearerToken(request);
  if (token === undefined) return reply(401, { message: 'Unauthorized', messageId: 'auth.unauthorized', statusCode: 401, traceID: '' });
  if (token !== (options.token ?? DEFAULT_GRAFANA_TOKEN)) {
    const failure = grafanaError(401);
    if (options.echoCredentials) failure.body = { ...(failure.body as object), message: `Invalid API key: ${token}` };
    return failure;
  }

  const datasources = options.datasources ?? DEFAULT_GRAFANA_DATASOURCES;
  if (request.path === '/api/datasources' && request.method === 'GET') return reply(200, datasources.map(datasourceView));
  const byUid = /^\/api\/datasources\/uid\/([^/]+)$/.exec(request.path);
  if (byUid) {
    const ds = datasources.find((d) => d.uid === byUid[1]);
    return ds ? reply(200, datasourceView(ds)) : reply(404, { message: 'Data source not found' });
  }
  const proxy = /^\/api\/datasources\/proxy\/uid\/([^/]+)\/(.*)$/.exec(request.path);
  if (proxy) {
    const ds = datasources.find((d) => d.uid === proxy[1]);
    if (!ds) return reply(404, { message: 'Unable to find datasource' });
    if (ds.type === 'loki') return lokiProxy(proxy[2]!, request);
    if (ds.type === 'prometheus') return prometheusProxy(proxy[2]!, request);
    return reply(404, { message: 'Not found' });
  }
  if (request.path === '/api/user') return reply(200, { id: 2, uid: randomUUID(), login: 'sa-1-opentrace', name: 'opentrace', isGrafanaAdmin: false });
  return reply(404, { message: 'Not found' });
}

export async function startGrafanaFake(options: GrafanaFakeOptions = {}): Promise<GrafanaFake> {
  return startHttpFake<GrafanaFakeOptions>({
    options: { ...options },
    isUnguarded: (request) => request.path === '/api/health' || !request.path.startsWith('/api/'),
    errorReply: (status) => grafanaError(status),
    handle,
  });
}
