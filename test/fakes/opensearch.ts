/**
 * A fake OpenSearch cluster (with the security plugin) for tests and the README walkthrough,
 * following OpenSearch's REST API:
 *
 * - `GET /`: cluster information, `version.distribution: "opensearch"`.
 * - `GET /_cat/indices[/<patterns>]?format=json[&h=…]`: wildcard patterns that match nothing
 *   answer `[]`, a missing concrete index 404 `index_not_found_exception`.
 * - `GET /<patterns>/_mapping`.
 * - `GET|POST [/<patterns>]/_search` with `query_string`, a `range` on `@timestamp`, `bool`
 *   filters, `size`, `sort` and `terms` aggregations: log documents generated around now.
 *
 * Every route needs basic auth (`username`/`password`) or `Authorization: ApiKey <apiKey>`;
 * otherwise 401 `Unauthorized` with `WWW-Authenticate: Basic realm="OpenSearch Security"`.
 * Options: `mode` (401/403/404/429/500/503, 'slow'), `modePaths` to fail only some routes,
 * custom `indices`, and `impersonate`: 'elasticsearch', 'dashboards' (OpenSearch Dashboards),
 * 'nginx', 'spa'.
 */
import { createHash } from 'node:crypto';
import { html, NGINX_404, reply, SPA_PAGE, startHttpFake, type CommonFakeOptions, type FakeReply, type HttpFake, type RecordedRequest } from './http-fake.ts';

export interface FakeIndex {
  index: string;
  /** Documents the index reports in _cat/indices (searches generate up to 50 of them). */
  docs: number;
  health?: 'green' | 'yellow' | 'red';
  /** The service the generated documents come from. */
  services?: string[];
}

export interface OpenSearchFakeOptions extends CommonFakeOptions {
  username?: string;
  password?: string;
  apiKey?: string;
  version?: string;
  clusterName?: string;
  indices?: FakeIndex[];
  impersonate?: 'elasticsearch' | 'dashboards' | 'nginx' | 'spa';
}

export type OpenSearchFake = HttpFake<OpenSearchFakeOptions>;

export const DEFAULT_OPENSEARCH_USERNAME = 'opentrace';
export const DEFAULT_OPENSEARCH_PASSWORD = 'fake-password-123';
export const DEFAULT_OPENSEARCH_API_KEY = 'fake-opensearch-api-key-0123456789';

function day(offsetDays: number): string {
  return new Date(Date.now() - offsetDays * 86_400_000).toISOString().slice(0, 10).replaceAll('-', '.');
}

export function defaultIndices(): FakeIndex[] {
  return [
    { index: `logs-app-${day(1)}`, docs: 3412, health: 'green', services: ['checkout', 'payments'] },
    { index: `logs-app-${day(0)}`, docs: 1207, health: 'green', services: ['checkout', 'payments', 'frontend'] },
    { index: `logs-nginx-${day(0)}`, docs: 980, health: 'yellow', services: ['ingress'] },
    { index: 'metrics-2024', docs: 52, health: 'green', services: ['node-exporter'] },
    { index: '.opendistro-security', docs: 10, health: 'green', services: [] },
  ];
}

function osError(status: number, type: string, reason: string, extra: Record<string, unknown> = {}): FakeReply {
  return reply(status, { error: { root_cause: [{ type, reason, ...extra }], type, reason, ...extra }, status });
}

function errorReply(status: number, request: RecordedRequest, options: OpenSearchFakeOptions): FakeReply {
  switch (status) {
    case 401:
      return unauthorized(request, options);
    case 403:
      return osError(403, 'security_exception', `no permissions for [${request.path.startsWith('/_cat') ? 'indices:monitor/settings/get' : 'cluster:monitor/main'}] and User [name=${options.username ?? DEFAULT_OPENSEARCH_USERNAME}, backend_roles=[], requestedTenant=null]`);
    case 404:
      return reply(404, { error: `no handler found for uri [${request.path}] and method [${request.method}]` });
    case 429:
      return osError(429, 'rejected_execution_exception', 'rejected execution of coordinating operation [shard_detail=[logs-app][0][C], shard_coordinating_and_primary_bytes=0, shard_operation_bytes=98] OR [node_coordinating_and_primary_bytes=0, node_replica_bytes=0, node_all_bytes=0, node_operation_bytes=98]');
    case 502:
    case 503:
      return html(status, `<html><head><title>${status}</title></head><body><center><h1>${status} Service Temporarily Unavailable</h1></center></body></html>`);
    default:
      return osError(status, 'exception', 'java.lang.IllegalStateException: the shard is not available');
  }
}

function unauthorized(request: RecordedRequest, options: OpenSearchFakeOptions): FakeReply {
  const presented = request.headers.authorization;
  const text = options.echoCredentials && presented ? `Unauthorized: ${presented.replace(/^(Basic|ApiKey)\s+/i, '')}` : 'Unauthorized';
  return reply(401, text, { 'content-type': 'text/plain; charset=UTF-8', 'www-authenticate': 'Basic realm="OpenSearch Security"' });
}

function authenticated(request: RecordedRequest, options: OpenSearchFakeOptions): boolean {
  const header = request.headers.authorization ?? '';
  const basic = /^Basic\s+(.+)$/i.exec(header);
  if (basic) {
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    return decoded === `${options.username ?? DEFAULT_OPENSEARCH_USERNAME}:${options.password ?? DEFAULT_OPENSEARCH_PASSWORD}`;
  }
  const apiKey = /^ApiKey\s+(.+)$/i.exec(header);
  if (apiKey) return apiKey[1] === (options.apiKey ?? DEFAULT_OPENSEARCH_API_KEY);
  return false;
}

function wildcard(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

/** Resolves `a,b*,-c*` against the indices; a missing concrete name is an index_not_found. */
function resolve(patterns: string, indices: FakeIndex[]): { matched: FakeIndex[]; missing?: string } {
  const matched = new Set<FakeIndex>();
  for (const raw of patterns.split(',').filter(Boolean)) {
    if (raw === '_all' || raw === '*') {
      for (const index of indices) if (!index.index.startsWith('.')) matched.add(index);
      continue;
    }
    if (raw.startsWith('-')) {
      const exclude = wildcard(raw.slice(1));
      for (const index of [...matched]) if (exclude.test(index.index)) matched.delete(index);
      continue;
    }
    if (!raw.includes('*')) {
      const found = indices.find((index) => index.index === raw);
      if (!found) return { matched: [], missing: raw };
      matched.add(found);
      continue;
    }
    const re = wildcard(raw);
    for (const index of indices) if (re.test(index.index) && (raw.startsWith('.') || !index.index.startsWith('.'))) matched.add(index);
  }
  return { matched: [...matched].sort((a, b) => a.index.localeCompare(b.index)) };
}

function notFound(name: string): FakeReply {
  return osError(404, 'index_not_found_exception', `no such index [${name}]`, { index: name, 'resource.id': name, 'resource.type': 'index_or_alias', index_uuid: '_na_' });
}

function catRow(index: FakeIndex): Record<string, string> {
  const size = Math.max(1, Math.round(index.docs * 0.6));
  return {
    health: index.health ?? 'green',
    status: 'open',
    index: index.index,
    uuid: createHash('sha256').update(index.index).digest('base64url').slice(0, 22),
    pri: '1',
    rep: index.health === 'yellow' ? '1' : '0',
    'docs.count': String(index.docs),
    'docs.deleted': '0',
    'store.size': `${size}kb`,
    'pri.store.size': `${size}kb`,
  };
}

const MAPPING = {
  properties: {
    '@timestamp': { type: 'date' },
    message: { type: 'text' },
    log: { properties: { level: { type: 'keyword' } } },
    service: { properties: { name: { type: 'keyword' } } },
    trace: { properties: { id: { type: 'keyword' } } },
    host: { properties: { name: { type: 'keyword' } } },
  },
};

interface LogDoc {
  _index: string;
  _id: string;
  _source: { '@timestamp': string; message: string; log: { level: string }; service: { name: string }; trace: { id: string }; host: { name: string } };
}

const MESSAGES = [
  { level: 'info', text: 'GET /api/cart 200 in 41ms' },
  { level: 'warn', text: 'slow query on orders table took 1870ms' },
  { level: 'error', text: 'upstream request failed: timeout after 2000ms calling payments' },
  { level: 'error', text: 'connection refused: postgres:5432' },
];

function documents(index: FakeIndex): LogDoc[] {
  const services = index.services?.length ? index.services : ['app'];
  const count = Math.min(index.docs, 50);
  const dayMatch = /(\d{4})\.(\d{2})\.(\d{2})$/.exec(index.index);
  const end = dayMatch ? Math.min(Date.now(), Date.parse(`${dayMatch[1]}-${dayMatch[2]}-${dayMatch[3]}T23:59:59Z`)) : Date.now();
  const docs: LogDoc[] = [];
  for (let i = 0; i < count; i++) {
    const message = MESSAGES[i % MESSAGES.length]!;
    const service = services[i % services.length]!;
    docs.push({
      _index: index.index,
      _id: `${index.index}-${i}`,
      _source: {
        '@timestamp': new Date(end - i * 5 * 60_000).toISOString(),
        message: message.text,
        log: { level: message.level },
        service: { name: service },
        trace: { id: (i + 1).toString(16).padStart(32, '0') },
        host: { name: `${service}-7d9f8c-${i % 3}` },
      },
    });
  }
  return docs;
}

function field(doc: LogDoc, path: string): unknown {
  let value: unknown = doc._source;
  for (const part of path.replace(/\.keyword$/, '').split('.')) {
    if (value && typeof value === 'object' && part in value) value = (value as Record<string, unknown>)[part];
    else return undefined;
  }
  return value;
}

/** Enough query DSL for a fake: query_string (terms, field:value, AND), range, term(s), match, bool. */
function matches(doc: LogDoc, query: unknown): boolean {
  if (!query || typeof query !== 'object') return true;
  const q = query as Record<string, Record<string, unknown>>;
  if (q.match_all) return true;
  if (q.query_string) {
    const text = String(q.query_string.query ?? '*');
    if (text.trim() === '*') return true;
    const terms = text.split(/\s+AND\s+|\s+/).filter((t) => t && t !== 'AND');
    return terms.every((term) => {
      const fieldMatch = /^([\w.@]+):"?([^"]*)"?$/.exec(term);
      if (fieldMatch) return String(field(doc, fieldMatch[1]!) ?? '').toLowerCase() === fieldMatch[2]!.toLowerCase();
      return JSON.stringify(doc._source).toLowerCase().includes(term.replace(/"/g, '').toLowerCase());
    });
  }
  if (q.range) {
    return Object.entries(q.range).every(([name, bounds]) => {
      const value = Date.parse(String(field(doc, name)));
      const b = bounds as Record<string, string | number>;
      const at = (v: string | number | undefined) => (v === undefined ? undefined : typeof v === 'number' ? v : v.startsWith('now') ? Date.now() - nowOffset(v) : Date.parse(v));
      const gte = at(b.gte ?? b.gt);
      const lte = at(b.lte ?? b.lt);
      return (gte === undefined || value >= gte) && (lte === undefined || value <= lte);
    });
  }
  if (q.term || q.match) {
    return Object.entries(q.term ?? q.match ?? {}).every(([name, v]) => {
      const expected = typeof v === 'object' && v !== null ? (v as Record<string, unknown>).value ?? (v as Record<string, unknown>).query : v;
      return String(field(doc, name) ?? '').toLowerCase().includes(String(expected).toLowerCase());
    });
  }
  if (q.terms) return Object.entries(q.terms).every(([name, values]) => Array.isArray(values) && values.map(String).includes(String(field(doc, name))));
  if (q.bool) {
    const list = (v: unknown) => (Array.isArray(v) ? v : v ? [v] : []);
    const b = q.bool;
    return (
      list(b.must).every((c) => matches(doc, c)) &&
      list(b.filter).every((c) => matches(doc, c)) &&
      !list(b.must_not).some((c) => matches(doc, c)) &&
      (list(b.should).length === 0 || list(b.should).some((c) => matches(doc, c)))
    );
  }
  return true;
}

function nowOffset(expr: string): number {
  const match = /^now-(\d+)([smhd])/.exec(expr);
  if (!match) return 0;
  return Number(match[1]) * ({ s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as Record<string, number>)[match[2]!]!;
}

function search(indices: FakeIndex[], body: Record<string, unknown>): FakeReply {
  const all = indices.flatMap(documents).filter((doc) => matches(doc, body.query));
  all.sort((a, b) => b._source['@timestamp'].localeCompare(a._source['@timestamp']));
  const size = typeof body.size === 'number' ? body.size : 10;
  const from = typeof body.from === 'number' ? body.from : 0;
  const aggregations: Record<string, unknown> = {};
  const aggs = (body.aggs ?? body.aggregations) as Record<string, { terms?: { field: string; size?: number } }> | undefined;
  for (const [name, agg] of Object.entries(aggs ?? {})) {
    if (!agg.terms) continue;
    const counts = new Map<string, number>();
    for (const doc of all) {
      const value = field(doc, agg.terms.field);
      if (value !== undefined) counts.set(String(value), (counts.get(String(value)) ?? 0) + 1);
    }
    const buckets = [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, agg.terms.size ?? 10).map(([key, doc_count]) => ({ key, doc_count }));
    aggregations[name] = { doc_count_error_upper_bound: 0, sum_other_doc_count: 0, buckets };
  }
  return reply(200, {
    took: 3,
    timed_out: false,
    _shards: { total: indices.length, successful: indices.length, skipped: 0, failed: 0 },
    hits: { total: { value: all.length, relation: 'eq' }, max_score: null, hits: all.slice(from, from + size).map((doc) => ({ ...doc, _score: null, sort: [Date.parse(doc._source['@timestamp'])] })) },
    ...(Object.keys(aggregations).length ? { aggregations } : {}),
  });
}

function handle(request: RecordedRequest, options: OpenSearchFakeOptions): FakeReply {
  if (options.impersonate === 'nginx') return html(404, NGINX_404, { server: 'nginx' });
  if (options.impersonate === 'spa') return html(200, SPA_PAGE);
  if (options.impersonate === 'dashboards') {
    if (request.path === '/') return reply(302, '', { location: '/app/home', 'osd-name': 'opensearch-dashboards' });
    if (request.path.startsWith('/app/')) return html(200, '<!DOCTYPE html><html lang="en"><head><title>OpenSearch Dashboards</title></head><body></body></html>', { 'osd-name': 'opensearch-dashboards' });
    return reply(404, { statusCode: 404, error: 'Not Found', message: 'Not Found' }, { 'osd-name': 'opensearch-dashboards' });
  }
  if (!authenticated(request, options)) return unauthorized(request, options);

  const indices = options.indices ?? defaultIndices();
  if (request.path === '/') {
    if (options.impersonate === 'elasticsearch') {
      return reply(
        200,
        {
          name: 'es-node-1',
          cluster_name: 'docker-cluster',
          cluster_uuid: 'kV2YpQ1bTg2n0d1m7l0q9A',
          version: { number: '8.13.4', build_flavor: 'default', build_type: 'docker', build_hash: 'da95df118650b55a500dcc181889ac35c6d8da7c', build_date: '2024-05-06T22:04:45.107454559Z', build_snapshot: false, lucene_version: '9.10.0', minimum_wire_compatibility_version: '7.17.0', minimum_index_compatibility_version: '7.0.0' },
          tagline: 'You Know, for Search',
        },
        { 'x-elastic-product': 'Elasticsearch' },
      );
    }
    return reply(200, {
      name: 'opensearch-node1',
      cluster_name: options.clusterName ?? 'opentrace-fake',
      cluster_uuid: 'Zx2TQmVnQ4y3kYBv1sGZ0w',
      version: {
        distribution: 'opensearch',
        number: options.version ?? '2.17.1',
        build_type: 'tar',
        build_hash: '1893d20797e30110e5877170e44d42275ce5951e',
        build_date: '2024-09-26T21:59:52.691008096Z',
        build_snapshot: false,
        lucene_version: '9.11.1',
        minimum_wire_compatibility_version: '7.10.0',
        minimum_index_compatibility_version: '7.0.0',
      },
      tagline: 'The OpenSearch Project: https://opensearch.org/',
    });
  }

  const cat = /^\/_cat\/indices(?:\/(.+))?$/.exec(request.path);
  if (cat && request.method === 'GET') {
    const { matched, missing } = cat[1] ? resolve(cat[1], indices) : { matched: indices, missing: undefined };
    if (missing) return notFound(missing);
    const columns = request.query.get('h')?.split(',').filter(Boolean);
    const rows = matched.map(catRow).map((row) => (columns ? Object.fromEntries(columns.map((c) => [c, row[c] ?? null])) : row));
    if (request.query.get('format') === 'json') return reply(200, rows);
    return reply(200, rows.map((row) => Object.values(row).join(' ')).join('\n') + (rows.length ? '\n' : ''), { 'content-type': 'text/plain; charset=UTF-8' });
  }

  const mapping = /^\/([^_/][^/]*)\/_mapping$/.exec(request.path);
  if (mapping && request.method === 'GET') {
    const { matched, missing } = resolve(mapping[1]!, indices);
    if (missing) return notFound(missing);
    return reply(200, Object.fromEntries(matched.map((index) => [index.index, { mappings: MAPPING }])));
  }

  const searchRoute = /^(?:\/([^_/][^/]*))?\/_search$/.exec(request.path);
  if (searchRoute && (request.method === 'GET' || request.method === 'POST')) {
    let body: Record<string, unknown> = {};
    if (request.body.trim()) {
      try {
        body = JSON.parse(request.body) as Record<string, unknown>;
      } catch {
        return osError(400, 'parse_exception', 'request body is required');
      }
    }
    if (request.query.get('q')) body = { ...body, query: { query_string: { query: request.query.get('q') } } };
    if (request.query.get('size')) body = { ...body, size: Number(request.query.get('size')) };
    const { matched, missing } = searchRoute[1] ? resolve(searchRoute[1], indices) : { matched: indices.filter((i) => !i.index.startsWith('.')), missing: undefined };
    if (missing) return notFound(missing);
    return search(matched, body);
  }

  if (request.path === '/_cluster/health') return reply(200, { cluster_name: options.clusterName ?? 'opentrace-fake', status: 'green', number_of_nodes: 1, active_shards: indices.length });
  return reply(404, { error: `no handler found for uri [${request.path}] and method [${request.method}]` });
}

export async function startOpenSearchFake(options: OpenSearchFakeOptions = {}): Promise<OpenSearchFake> {
  return startHttpFake<OpenSearchFakeOptions>({ options: { ...options }, errorReply, handle });
}
