/**
 * OpenSearch: log search and analysis over the index patterns the user names.
 *
 * The live check (docs/integrations/opensearch.md):
 *   1. `cluster`: GET {url}/ with the credentials. It must be OpenSearch
 *      (`version.distribution === "opensearch"`); Elasticsearch and OpenSearch Dashboards are
 *      told apart so the detail says what to change.
 *   2. `indices:<pattern>`, one per index pattern: GET {url}/_cat/indices/<pattern>?format=json.
 *      A pattern that matches no index fails its check, naming the pattern: the patterns are the
 *      user's own input, so an empty match is almost always a typo (connect with ?verify=false to
 *      keep a pattern for indices that do not exist yet).
 *
 * Auth: basic (username/password), or `Authorization: ApiKey <key>` (native API keys, OpenSearch
 * 3.7+).
 *
 * Plain ctx.fetch rather than @opensearch-project/opensearch: ctx.fetch is the outbound guard (DNS
 * checked at connect time, redirects re-checked, bounded time), while the client brings its own
 * HTTP transport (agent, retries, node sniffing) that would go around it. Two GETs need no client.
 */
import { z } from 'zod';
import type { Connector, VerifyContext } from '../types.ts';
import {
  CheckFailure,
  CheckList,
  baseOf,
  isHtml,
  isObject,
  joinUrl,
  mapConcurrent,
  readBody,
  redirectNote,
  rejectedDetail,
  requiredString,
  secretTokenSchema,
  serviceUrlSchema,
  statusLabel,
  unexpectedStatusDetail,
  upstreamSaid,
  type ReadBody,
  type Upstream,
} from '../http-checks.ts';

export interface OpenSearchConfig {
  url: string;
  indexPatterns: string[];
}

export type OpenSearchCredentials = { username: string; password: string } | { apiKey: string };

const indexPattern = requiredString('an index pattern')
  .min(1, 'an index pattern must not be empty')
  .max(255, 'an index pattern must be at most 255 characters')
  .refine((value) => !/\s/.test(value), 'an index pattern must not contain spaces')
  .refine((value) => !value.includes(','), 'give one index pattern per list entry, without commas, e.g. ["logs-*", "app-*"]')
  .refine((value) => !/[\\/?"<>|#]/.test(value), 'an index pattern must not contain \\ / ? " < > | or #')
  .refine((value) => value === value.toLowerCase(), 'index names are lower case: write the pattern in lower case')
  .refine((value) => !/^[_+-]/.test(value), 'an index pattern must not start with _, - or +');

export const openSearchConfigSchema = z
  .object({
    url: serviceUrlSchema('https://search.example.com:9200'),
    indexPatterns: z
      .array(indexPattern, { error: 'indexPatterns must be a list of index patterns, e.g. ["logs-*"]' })
      .min(1, 'indexPatterns needs at least one index pattern, e.g. ["logs-*"]')
      .max(50, 'indexPatterns can list at most 50 patterns')
      .refine((patterns) => new Set(patterns).size === patterns.length, 'indexPatterns lists the same pattern twice')
      .describe('Index patterns to query, e.g. ["logs-*"]'),
  })
  .describe("OpenSearch cluster URL (the REST API, usually port 9200, not OpenSearch Dashboards) and the index patterns to query.");

const credentialsShape = z
  .strictObject({
    username: requiredString('username')
      .min(1, 'username must not be empty')
      .max(1024, 'username must be at most 1024 characters')
      .refine((value) => !value.includes(':'), 'username must not contain ":" (basic auth cannot carry it)')
      .optional()
      .describe('Basic auth user name'),
    password: requiredString('password').min(1, 'password must not be empty').max(1024, 'password must be at most 1024 characters').optional().describe('Basic auth password'),
    apiKey: secretTokenSchema('apiKey').optional().describe('OpenSearch API key (OpenSearch 3.7+), sent as "Authorization: ApiKey <key>"'),
  })
  .superRefine((credentials, ctx) => {
    if (credentials.apiKey !== undefined) {
      if (credentials.username !== undefined || credentials.password !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['apiKey'], message: 'send either username and password, or apiKey, not both' });
      }
      return;
    }
    if (credentials.username === undefined) ctx.addIssue({ code: 'custom', path: ['username'], message: 'username is required (with password), unless you send apiKey' });
    if (credentials.password === undefined) ctx.addIssue({ code: 'custom', path: ['password'], message: 'password is required with username' });
  })
  .meta({ oneOf: [{ required: ['username', 'password'] }, { required: ['apiKey'] }] })
  .describe('Either username and password (basic auth), or apiKey.');

/** Zod infers one object with three optional fields; the refinement makes it exactly one of the two shapes. */
export const openSearchCredentialsSchema = credentialsShape as unknown as z.ZodType<OpenSearchCredentials>;

export function authorizationHeader(credentials: OpenSearchCredentials): string {
  if ('apiKey' in credentials) return `ApiKey ${credentials.apiKey}`;
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64')}`;
}

const ROLE_HINT =
  'map the user to a role with the cluster permissions cluster_composite_ops_ro and cluster_monitor, and the index permissions read and indices_monitor on your index patterns';

interface ClusterInfo {
  version: string;
  clusterName: string | undefined;
}

function catIndices(json: unknown): { index: string; docs: number }[] | undefined {
  if (!Array.isArray(json)) return undefined;
  return json.filter(isObject).map((row) => ({ index: String(row.index ?? ''), docs: Number(row['docs.count'] ?? 0) || 0 }));
}

function isIndexNotFound(body: ReadBody): boolean {
  return body.status === 404 && isObject(body.json) && isObject(body.json.error) && body.json.error.type === 'index_not_found_exception';
}

async function verifyOpenSearch(ctx: VerifyContext<OpenSearchConfig, OpenSearchCredentials>) {
  const base = baseOf(ctx.config.url);
  const upstream: Upstream = { product: 'OpenSearch', origin: base };
  const apiKey = 'apiKey' in ctx.credentials;
  const checks = new CheckList({
    upstream,
    secrets: apiKey ? [(ctx.credentials as { apiKey: string }).apiKey] : [(ctx.credentials as { password: string }).password, authorizationHeader(ctx.credentials).slice(6)],
    logger: ctx.logger,
  });
  const headers = { accept: 'application/json', authorization: authorizationHeader(ctx.credentials) };
  const rejected = (body: ReadBody) =>
    new CheckFailure(
      rejectedDetail(
        upstream,
        'the credentials',
        401,
        body,
        apiKey
          ? 'Check the API key, and that the cluster runs OpenSearch 3.7 or later (earlier versions have no API keys: use a username and password).'
          : 'Check the username and password (an internal user, or one from the security plugin’s authentication backend).',
      ),
    );

  const cluster = await checks.run('cluster', async () => {
    const url = joinUrl(base, '');
    const response = await ctx.fetch(url, { headers, signal: checks.signal });
    const body = await readBody(response, 256 * 1024);
    if (body.status === 401) throw rejected(body);
    if (body.status === 403) {
      throw new CheckFailure(`OpenSearch accepted the credentials but the user may not read the cluster information (403 Forbidden): ${ROLE_HINT}.${upstreamSaid(body)}`);
    }
    if (body.status === 429 || body.status >= 500) throw new CheckFailure(unexpectedStatusDetail(upstream, body, response.headers, '/'));
    const json = isObject(body.json) ? body.json : undefined;
    const version = json && isObject(json.version) ? json.version : undefined;
    if (body.status === 200 && version) {
      const number = typeof version.number === 'string' ? version.number : 'unknown version';
      if (version.distribution === 'opensearch') {
        const clusterName = typeof json!.cluster_name === 'string' ? json!.cluster_name : undefined;
        return { detail: `${base} is OpenSearch ${number}${clusterName ? ` (cluster "${clusterName}")` : ''}.`, value: { version: number, clusterName } satisfies ClusterInfo };
      }
      const elastic = response.headers.get('x-elastic-product') === 'Elasticsearch' || String(json!.tagline ?? '').includes('You Know, for Search') || 'build_flavor' in version;
      if (elastic) {
        throw new CheckFailure(`${base} is Elasticsearch ${number}, not OpenSearch: this integration needs an OpenSearch cluster. Check the URL, or connect an OpenSearch cluster.`);
      }
    }
    if (response.headers.has('osd-name') || /OpenSearch Dashboards/i.test(body.text)) {
      throw new CheckFailure(`${base} is OpenSearch Dashboards, not the OpenSearch API: use the cluster's REST endpoint instead (usually port 9200; on Amazon OpenSearch Service, the domain endpoint without /_dashboards).`);
    }
    const answered = body.status === 200 ? (isHtml(body) ? 'a web page' : 'something other than OpenSearch’s cluster information') : statusLabel(body.status);
    throw new CheckFailure(
      `${base} is not OpenSearch: GET / answered ${answered}${redirectNote(url, response)} (OpenSearch answers JSON with version.distribution "opensearch"). Check the URL: it should be the cluster's REST endpoint, usually on port 9200.`,
    );
  });
  if (!cluster.ok) return checks.result();

  // A few patterns at a time: quick for the user, gentle on the cluster. Checks keep the patterns' order.
  const outcomes = await mapConcurrent(ctx.config.indexPatterns, 4, async (pattern) => {
    const name = `indices:${pattern}`;
    const outcome = await checks.run(name, async () => {
      const url = joinUrl(base, `_cat/indices/${encodeURIComponent(pattern)}?format=json&h=index,health,status,docs.count&s=index`);
      const response = await ctx.fetch(url, { headers, signal: checks.signal });
      const body = await readBody(response);
      if (body.status === 401) throw rejected(body);
      if (body.status === 403) {
        throw new CheckFailure(`The user may not list the indices matching ${pattern} (403 Forbidden): ${ROLE_HINT}.${upstreamSaid(body)}`);
      }
      const noMatch = `No index matches ${pattern}. Check the pattern (index names are lower case; * is the wildcard, e.g. logs-*), and that the indices exist on this cluster.`;
      if (isIndexNotFound(body)) throw new CheckFailure(noMatch);
      if (body.status !== 200) throw new CheckFailure(unexpectedStatusDetail(upstream, body, response.headers, `/_cat/indices/${pattern}`));
      const indices = catIndices(body.json);
      if (!indices) throw new CheckFailure(`OpenSearch at ${base} answered /_cat/indices/${pattern} with something other than a list of indices${body.truncated ? ' (the answer was too large)' : ''}.`);
      if (indices.length === 0) throw new CheckFailure(noMatch);
      const docs = indices.reduce((sum, row) => sum + row.docs, 0);
      const names = indices.slice(0, 3).map((row) => row.index).join(', ') + (indices.length > 3 ? ', …' : '');
      return {
        detail: `${pattern} matches ${indices.length} ${indices.length === 1 ? 'index' : 'indices'} (${names}) with ${docs.toLocaleString('en-US')} documents.`,
        value: indices.length,
      };
    });
    return [pattern, outcome] as const;
  });
  const matched: Record<string, number> = {};
  for (const [pattern, outcome] of outcomes) if (outcome.ok) matched[pattern] = outcome.value;
  if (!checks.ok) return checks.result();

  return checks.result({
    opensearchVersion: cluster.value.version,
    ...(cluster.value.clusterName ? { clusterName: cluster.value.clusterName } : {}),
    matchedIndices: matched,
  });
}

export const openSearchConnector: Connector<OpenSearchConfig, OpenSearchCredentials> = {
  type: 'opensearch',
  title: 'OpenSearch',
  auth: 'api',
  provides: ['Log search and analysis'],
  configSchema: openSearchConfigSchema,
  credentialsSchema: openSearchCredentialsSchema,
  verify: verifyOpenSearch,
};
