import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { z } from 'zod';
import { openSearchConnector, type OpenSearchConfig, type OpenSearchCredentials } from '#connectors/opensearch/index.ts';
import type { VerifyContext } from '#connectors/types.ts';
import { OutboundBlockedError, type OutboundPolicy } from '#platform/outbound.ts';
import {
  DEFAULT_OPENSEARCH_API_KEY,
  DEFAULT_OPENSEARCH_PASSWORD,
  DEFAULT_OPENSEARCH_USERNAME,
  startOpenSearchFake,
  type OpenSearchFake,
} from '../fakes/opensearch.ts';
import { closedPort, loopbackPolicy, verifyContext } from '../support/verify-context.ts';

const policy = loopbackPolicy;

function ctx(config: OpenSearchConfig, credentials: OpenSearchCredentials, fetchPolicy: OutboundPolicy = policy): VerifyContext<OpenSearchConfig, OpenSearchCredentials> {
  return verifyContext(config, credentials, fetchPolicy);
}

const basic = { username: DEFAULT_OPENSEARCH_USERNAME, password: DEFAULT_OPENSEARCH_PASSWORD };
const apiKey = { apiKey: DEFAULT_OPENSEARCH_API_KEY };
let fake: OpenSearchFake;

beforeAll(async () => {
  fake = await startOpenSearchFake();
});
afterEach(() => {
  fake.set({ mode: 'normal', modePaths: undefined, impersonate: undefined, echoCredentials: false });
  fake.requests.length = 0;
});
afterAll(async () => {
  await fake.close();
});

describe('opensearch verify', () => {
  it('passes with basic auth and reports what each index pattern matches', async () => {
    const result = await openSearchConnector.verify(ctx({ url: fake.url, indexPatterns: ['logs-*', 'metrics-2024'] }, basic));
    expect(result.ok).toBe(true);
    expect(result.checks.map((c) => [c.name, c.ok])).toEqual([
      ['cluster', true],
      ['indices:logs-*', true],
      ['indices:metrics-2024', true],
    ]);
    expect(result.checks[0]!.detail).toBe(`${fake.url} is OpenSearch 2.17.1 (cluster "opentrace-fake").`);
    expect(result.checks[1]!.detail).toMatch(/^logs-\* matches 3 indices \(logs-app-.*\) with 5,599 documents\.$/);
    expect(result.discovered).toEqual({ opensearchVersion: '2.17.1', clusterName: 'opentrace-fake', matchedIndices: { 'logs-*': 3, 'metrics-2024': 1 } });
    const expected = `Basic ${Buffer.from(`${basic.username}:${basic.password}`).toString('base64')}`;
    expect(fake.requests.map((r) => r.headers.authorization)).toEqual([expected, expected, expected]);
    expect(fake.requests[1]!.url).toBe('/_cat/indices/logs-*?format=json&h=index,health,status,docs.count&s=index');
  });

  it('sends an API key as "Authorization: ApiKey <key>"', async () => {
    const result = await openSearchConnector.verify(ctx({ url: fake.url, indexPatterns: ['logs-*'] }, apiKey));
    expect(result.ok).toBe(true);
    expect(fake.requests.map((r) => r.headers.authorization)).toEqual([`ApiKey ${DEFAULT_OPENSEARCH_API_KEY}`, `ApiKey ${DEFAULT_OPENSEARCH_API_KEY}`]);
  });

  it('fails a pattern that matches no index, naming it, and still checks the others', async () => {
    const result = await openSearchConnector.verify(ctx({ url: fake.url, indexPatterns: ['logz-*', 'logs-app-*', 'missing-index'] }, basic));
    expect(result.ok).toBe(false);
    expect(result.checks.map((c) => [c.name, c.ok])).toEqual([
      ['cluster', true],
      ['indices:logz-*', false],
      ['indices:logs-app-*', true],
      ['indices:missing-index', false],
    ]);
    expect(result.checks[1]!.detail).toMatch(/^No index matches logz-\*\. Check the pattern/);
    expect(result.checks[3]!.detail).toMatch(/^No index matches missing-index\./);
    expect(result.discovered).toBeUndefined();
  });

  it.each([
    ['basic auth', { username: DEFAULT_OPENSEARCH_USERNAME, password: 'wrong-password' }, /Check the username and password/],
    ['an API key', { apiKey: 'wrong-api-key-value' }, /OpenSearch 3\.7 or later/],
  ])('says OpenSearch rejected the credentials (401) with %s', async (_label, credentials, hint) => {
    const result = await openSearchConnector.verify(ctx({ url: fake.url, indexPatterns: ['logs-*'] }, credentials));
    expect(result.ok).toBe(false);
    expect(result.checks).toHaveLength(1);
    expect(result.checks[0]!.detail).toMatch(/^OpenSearch rejected the credentials \(401\)\. /);
    expect(result.checks[0]!.detail).toMatch(hint);
  });

  it('says what permissions are missing on 403 for the cluster information', async () => {
    fake.set({ mode: 403 });
    const result = await openSearchConnector.verify(ctx({ url: fake.url, indexPatterns: ['logs-*'] }, basic));
    expect(result.checks[0]!.detail).toMatch(/may not read the cluster information \(403 Forbidden\): map the user to a role .*cluster:monitor\/main/);
  });

  it('says which pattern the user may not list on 403 for _cat/indices', async () => {
    fake.set({ mode: 403, modePaths: /^\/_cat\// });
    const result = await openSearchConnector.verify(ctx({ url: fake.url, indexPatterns: ['logs-*'] }, basic));
    expect(result.checks[1]!.detail).toMatch(/^The user may not list the indices matching logs-\* \(403 Forbidden\)/);
  });

  it('says an Elasticsearch cluster is Elasticsearch, not OpenSearch', async () => {
    fake.set({ impersonate: 'elasticsearch' });
    const result = await openSearchConnector.verify(ctx({ url: fake.url, indexPatterns: ['logs-*'] }, basic));
    expect(result.checks).toEqual([{ name: 'cluster', ok: false, detail: expect.stringMatching(new RegExp(`^${fake.url} is Elasticsearch 8\\.13\\.4, not OpenSearch`)) }]);
  });

  it('recognizes OpenSearch Dashboards given instead of the API', async () => {
    fake.set({ impersonate: 'dashboards' });
    const result = await openSearchConnector.verify(ctx({ url: fake.url, indexPatterns: ['logs-*'] }, basic));
    expect(result.checks[0]!.detail).toMatch(/is OpenSearch Dashboards, not the OpenSearch API: use the cluster's REST endpoint/);
  });

  it.each([
    ['an nginx 404 page', 'nginx' as const, /is not OpenSearch: GET \/ answered 404 Not Found/],
    ['a web app', 'spa' as const, /is not OpenSearch: GET \/ answered a web page/],
  ])('says a URL serving %s is not OpenSearch', async (_label, impersonate, detail) => {
    fake.set({ impersonate });
    const result = await openSearchConnector.verify(ctx({ url: fake.url, indexPatterns: ['logs-*'] }, basic));
    expect(result.checks[0]!.detail).toMatch(detail);
  });

  it('times out on a slow server', async () => {
    fake.set({ mode: 'slow', delayMs: 5000 });
    const result = await openSearchConnector.verify(ctx({ url: fake.url, indexPatterns: ['logs-*'] }, basic));
    expect(result.checks[0]!.detail).toMatch(/^Timed out: OpenSearch at http:\/\/127\.0\.0\.1:\d+ did not answer within 1 s\./);
  });

  it('says when the cluster is unreachable', async () => {
    const result = await openSearchConnector.verify(ctx({ url: `http://127.0.0.1:${await closedPort()}`, indexPatterns: ['logs-*'] }, basic));
    expect(result.checks[0]!.detail).toMatch(/^Could not reach OpenSearch at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  });

  it('reports an upstream 5xx with its reason', async () => {
    fake.set({ mode: 500 });
    const result = await openSearchConnector.verify(ctx({ url: fake.url, indexPatterns: ['logs-*'] }, basic));
    expect(result.checks[0]!.detail).toMatch(/failed with 500 Internal Server Error\. This is a server-side error.* It said: "java\.lang\.IllegalStateException: the shard is not available"\./);
  });

  it('reports rate limiting (429) with the Retry-After wait', async () => {
    fake.set({ mode: 429, modePaths: /^\/_cat\// });
    const result = await openSearchConnector.verify(ctx({ url: fake.url, indexPatterns: ['logs-*'] }, basic));
    expect(result.checks[1]!.detail).toMatch(/is rate-limiting requests \(429 Too Many Requests\): try again in 7 s\./);
  });

  it.each([
    ['a password', { username: DEFAULT_OPENSEARCH_USERNAME, password: 'Leaky-Password-42' }, 'Leaky-Password-42'],
    ['an API key', { apiKey: 'leaky-api-key-0123456789' }, 'leaky-api-key-0123456789'],
  ])('never puts %s in a detail, even when the upstream echoes it', async (_label, credentials, secret) => {
    fake.set({ echoCredentials: true });
    const result = await openSearchConnector.verify(ctx({ url: fake.url, indexPatterns: ['logs-*'] }, credentials));
    expect(result.checks[0]!.detail).toMatch(/It said: "Unauthorized: \[redacted\]"/);
    const text = JSON.stringify(result);
    expect(text).not.toContain(secret);
    if ('password' in credentials) expect(text).not.toContain(Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64'));
  });

  it('lets the outbound guard refuse a private URL before anything is contacted', async () => {
    const closed = { ...policy, allowPrivateNetworks: false };
    await expect(openSearchConnector.verify(ctx({ url: fake.url.replace('http:', 'https:'), indexPatterns: ['logs-*'] }, basic, closed))).rejects.toBeInstanceOf(OutboundBlockedError);
    expect(fake.requests).toHaveLength(0);
  });
});

describe('opensearch config and credentials', () => {
  const issues = (schema: z.ZodType, value: unknown) => schema.safeParse(value).error?.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
  const url = 'https://search.example.com:9200';

  it('accepts the documented shapes', () => {
    expect(openSearchConnector.configSchema.parse({ url, indexPatterns: ['logs-*'] })).toEqual({ url, indexPatterns: ['logs-*'] });
    expect(openSearchConnector.credentialsSchema.parse({ username: 'u', password: ' p ' })).toEqual({ username: 'u', password: ' p ' });
    expect(openSearchConnector.credentialsSchema.parse({ apiKey: 'k-1\n' })).toEqual({ apiKey: 'k-1' });
  });

  it.each([
    [{ url }, 'indexPatterns', 'indexPatterns must be a list of index patterns, e.g. ["logs-*"]'],
    [{ url, indexPatterns: 'logs-*' }, 'indexPatterns', 'indexPatterns must be a list of index patterns, e.g. ["logs-*"]'],
    [{ url, indexPatterns: [] }, 'indexPatterns', 'indexPatterns needs at least one index pattern, e.g. ["logs-*"]'],
    [{ url, indexPatterns: [''] }, 'indexPatterns.0', 'an index pattern must not be empty'],
    [{ url, indexPatterns: ['logs-*', 'logs-*,app-*'] }, 'indexPatterns.1', 'give one index pattern per list entry, without commas, e.g. ["logs-*", "app-*"]'],
    [{ url, indexPatterns: ['logs *'] }, 'indexPatterns.0', 'an index pattern must not contain spaces'],
    [{ url, indexPatterns: ['Logs-*'] }, 'indexPatterns.0', 'index names are lower case: write the pattern in lower case'],
    [{ url, indexPatterns: ['_all'] }, 'indexPatterns.0', 'an index pattern must not start with _, - or +'],
    [{ url, indexPatterns: ['logs-*', 'logs-*'] }, 'indexPatterns', 'indexPatterns lists the same pattern twice'],
    [{ url: 'search.example.com:9200', indexPatterns: ['logs-*'] }, 'url', 'url must be an http(s) URL such as https://search.example.com:9200'],
  ])('rejects config %j with a message on %s', (config, path, message) => {
    expect(issues(openSearchConnector.configSchema, config)).toContainEqual({ path, message });
  });

  it.each([
    [{}, 'username', 'username is required (with password), unless you send apiKey'],
    [{}, 'password', 'password is required with username'],
    [{ username: 'u' }, 'password', 'password is required with username'],
    [{ password: 'p' }, 'username', 'username is required (with password), unless you send apiKey'],
    [{ username: 'a:b', password: 'p' }, 'username', 'username must not contain ":" (basic auth cannot carry it)'],
    [{ username: 'u', password: 'p', apiKey: 'k' }, 'apiKey', 'send either username and password, or apiKey, not both'],
    [{ apiKey: 'has space' }, 'apiKey', 'apiKey must not contain spaces or line breaks'],
    [{ token: 'x' }, '', 'Unrecognized key: "token"'],
  ])('rejects credentials %j with a message on %s', (credentials, path, message) => {
    expect(issues(openSearchConnector.credentialsSchema, credentials)).toContainEqual({ path, message });
  });

  it('describes itself for the catalog, with both credential shapes', () => {
    expect(openSearchConnector).toMatchObject({ type: 'opensearch', title: 'OpenSearch', auth: 'api', provides: ['Log search and analysis'] });
    expect(z.toJSONSchema(openSearchConnector.configSchema, { io: 'input' })).toMatchObject({ required: ['url', 'indexPatterns'], properties: { indexPatterns: { type: 'array', minItems: 1 } } });
    expect(z.toJSONSchema(openSearchConnector.credentialsSchema, { io: 'input' })).toMatchObject({ oneOf: [{ required: ['username', 'password'] }, { required: ['apiKey'] }] });
  });
});
