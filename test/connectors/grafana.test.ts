import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { z } from 'zod';
import { grafanaConnector, type GrafanaConfig, type GrafanaCredentials } from '#connectors/grafana/index.ts';
import type { VerifyContext } from '#connectors/types.ts';
import { OutboundBlockedError, type OutboundPolicy } from '#platform/outbound.ts';
import { DEFAULT_GRAFANA_TOKEN, startGrafanaFake, type GrafanaFake } from '../fakes/grafana.ts';
import { closedPort, loopbackPolicy, verifyContext } from '../support/verify-context.ts';

const policy = loopbackPolicy;

function ctx(config: GrafanaConfig, credentials: GrafanaCredentials, fetchPolicy: OutboundPolicy = policy): VerifyContext<GrafanaConfig, GrafanaCredentials> {
  return verifyContext(config, credentials, fetchPolicy);
}

let fake: GrafanaFake;
const token = DEFAULT_GRAFANA_TOKEN;

beforeAll(async () => {
  fake = await startGrafanaFake();
});
afterEach(() => {
  fake.set({ mode: 'normal', impersonate: undefined, datasources: undefined, database: 'ok', echoCredentials: false });
  fake.requests.length = 0;
});
afterAll(async () => {
  await fake.close();
});

describe('grafana verify', () => {
  it('passes against Grafana and reports its Loki and Prometheus/Mimir data sources', async () => {
    const result = await grafanaConnector.verify(ctx({ url: fake.url }, { token }));
    expect(result.ok).toBe(true);
    expect(result.checks.map((c) => [c.name, c.ok])).toEqual([
      ['health', true],
      ['datasources', true],
    ]);
    expect(result.checks[0]!.detail).toBe(`${fake.url} is Grafana 11.3.0 (database ok).`);
    expect(result.checks[1]!.detail).toMatch(/1 Loki data source \(Loki\) and 1 Prometheus\/Mimir data source \(Mimir\)/);
    expect(result.discovered).toEqual({
      datasources: [
        { uid: 'loki-main', name: 'Loki', type: 'loki' },
        { uid: 'mimir-prod', name: 'Mimir', type: 'prometheus' },
      ],
      grafanaVersion: '11.3.0',
    });
    // The health check is anonymous; the token goes only to the data-source listing.
    expect(fake.requests.map((r) => [r.path, r.headers.authorization])).toEqual([
      ['/api/health', undefined],
      ['/api/datasources', `Bearer ${token}`],
    ]);
  });

  it('accepts a URL with a trailing slash', async () => {
    const result = await grafanaConnector.verify(ctx({ url: `${fake.url}/` }, { token }));
    expect(result.ok).toBe(true);
    expect(fake.requests.map((r) => r.url)).toEqual(['/api/health', '/api/datasources']);
  });

  it('passes with a warning when there is no Loki or Prometheus data source', async () => {
    fake.set({ datasources: [{ id: 9, uid: 'tempo', name: 'Tempo', type: 'tempo', url: 'http://tempo:3200' }] });
    const result = await grafanaConnector.verify(ctx({ url: fake.url }, { token }));
    expect(result.ok).toBe(true);
    expect(result.checks[1]!.detail).toMatch(/no Loki or Prometheus\/Mimir data source .*add one/);
    expect(result.discovered).toMatchObject({ datasources: [] });
  });

  it('says the token was rejected (401)', async () => {
    const result = await grafanaConnector.verify(ctx({ url: fake.url }, { token: 'glsa_wrong_token_1234' }));
    expect(result.ok).toBe(false);
    expect(result.checks[1]).toMatchObject({ name: 'datasources', ok: false });
    expect(result.checks[1]!.detail).toMatch(/^Grafana rejected the token \(401\)\. /);
    expect(result.discovered).toBeUndefined();
  });

  it('says the token lacks the Viewer role (403)', async () => {
    fake.set({ mode: 403 });
    const result = await grafanaConnector.verify(ctx({ url: fake.url }, { token }));
    expect(result.ok).toBe(false);
    expect(result.checks[1]!.detail).toMatch(/refused to list data sources \(403 Forbidden\): the token lacks the Viewer role/);
    expect(result.checks[1]!.detail).toMatch(/Permissions needed: datasources:read/);
  });

  it.each([
    ['an nginx 404 page', 'nginx' as const, /is not a Grafana server: \/api\/health answered 404 Not Found/],
    ['a web app answering 200 HTML everywhere', 'spa' as const, /is not a Grafana server: \/api\/health answered a web page/],
    ['a Prometheus server', 'prometheus' as const, /is not a Grafana server: \/api\/health answered 404 Not Found/],
  ])('says a URL serving %s is not a Grafana server, and never sends it the token', async (_label, impersonate, detail) => {
    fake.set({ impersonate });
    const result = await grafanaConnector.verify(ctx({ url: fake.url }, { token }));
    expect(result.ok).toBe(false);
    expect(result.checks).toHaveLength(1);
    expect(result.checks[0]!.detail).toMatch(detail);
    expect(result.checks[0]!.detail.startsWith(`${fake.url} is not a Grafana server`)).toBe(true);
    expect(fake.requests.every((r) => r.headers.authorization === undefined)).toBe(true);
  });

  it("reports Grafana's failing database (503 on /api/health)", async () => {
    fake.set({ database: 'failing' });
    const result = await grafanaConnector.verify(ctx({ url: fake.url }, { token }));
    expect(result.checks[0]!.detail).toMatch(/reports its database as "failing" \(503 Service Unavailable\)/);
  });

  it('times out on a slow server', async () => {
    fake.set({ mode: 'slow', delayMs: 5000 });
    const result = await grafanaConnector.verify(ctx({ url: fake.url }, { token }));
    expect(result.ok).toBe(false);
    expect(result.checks[1]!.detail).toMatch(/^Timed out: Grafana at http:\/\/127\.0\.0\.1:\d+ did not answer within 1 s\./);
  });

  it('says when the server is unreachable', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const result = await grafanaConnector.verify(ctx({ url }, { token }));
    expect(result.checks).toEqual([{ name: 'health', ok: false, detail: expect.stringMatching(/^Could not reach Grafana at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\): nothing accepts connections on that port/) }]);
  });

  it('reports an upstream 5xx as a server-side error', async () => {
    fake.set({ mode: 500 });
    const result = await grafanaConnector.verify(ctx({ url: fake.url }, { token }));
    expect(result.checks[1]!.detail).toMatch(/failed with 500 Internal Server Error\. This is a server-side error, not a problem with your settings/);
  });

  it('reports a proxy 503 in front of Grafana', async () => {
    fake.set({ mode: 503 });
    const result = await grafanaConnector.verify(ctx({ url: fake.url }, { token }));
    expect(result.checks[1]!.detail).toMatch(/503 Service Unavailable \(a proxy or load balancer in front of it may be reporting that it is down\)/);
  });

  it('reports rate limiting (429) with the Retry-After wait', async () => {
    fake.set({ mode: 429, retryAfterSeconds: 30 });
    const result = await grafanaConnector.verify(ctx({ url: fake.url }, { token }));
    expect(result.checks[1]!.detail).toMatch(/is rate-limiting requests \(429 Too Many Requests\): try again in 30 s\./);
  });

  it('never puts the token in a detail, even when the upstream echoes it', async () => {
    const secret = 'glsa_leaky_token_0123456789';
    fake.set({ echoCredentials: true });
    const result = await grafanaConnector.verify(ctx({ url: fake.url }, { token: secret }));
    expect(result.checks[1]!.detail).toMatch(/It said: "Invalid API key: \[redacted\]"/);
    expect(JSON.stringify(result)).not.toContain(secret);
  });

  it('lets the outbound guard refuse a private URL before anything is contacted', async () => {
    const closed = { ...policy, allowPrivateNetworks: false };
    await expect(grafanaConnector.verify(ctx({ url: fake.url.replace('http:', 'https:') }, { token }, closed))).rejects.toBeInstanceOf(OutboundBlockedError);
    expect(fake.requests).toHaveLength(0);
  });
});

describe('grafana config and credentials', () => {
  const issues = (schema: z.ZodType, value: unknown) => schema.safeParse(value).error?.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));

  it('accepts the documented shapes', () => {
    expect(grafanaConnector.configSchema.parse({ url: 'https://your-org.grafana.net' })).toEqual({ url: 'https://your-org.grafana.net' });
    expect(grafanaConnector.credentialsSchema.parse({ token: ' glsa_abc\n' })).toEqual({ token: 'glsa_abc' });
  });

  it.each([
    [{}, 'url', 'url must be an http(s) URL such as https://your-org.grafana.net'],
    [{ url: 'your-org.grafana.net' }, 'url', 'url must be an http(s) URL such as https://your-org.grafana.net'],
    [{ url: 'ftp://grafana.example.com' }, 'url', 'url must be an http(s) URL such as https://your-org.grafana.net'],
    [{ url: 'https://admin:pw@grafana.example.com' }, 'url', 'url must not contain a user name or password: put credentials in the credentials fields'],
    [{ url: 'https://grafana.example.com/?orgId=1' }, 'url', 'url must not have a query string or fragment: give the base URL only'],
  ])('rejects config %j with a message on %s', (config, path, message) => {
    expect(issues(grafanaConnector.configSchema, config)).toEqual([{ path, message }]);
  });

  it.each([
    [{}, 'token', 'token is required'],
    [{ token: 42 }, 'token', 'token must be a string'],
    [{ token: '   ' }, 'token', 'token must not be empty'],
    [{ token: 'glsa abc' }, 'token', 'token must not contain spaces or line breaks'],
  ])('rejects credentials %j with a message on %s', (credentials, path, message) => {
    expect(issues(grafanaConnector.credentialsSchema, credentials)).toContainEqual({ path, message });
  });

  it('rejects unknown credential fields rather than silently dropping them', () => {
    expect(issues(grafanaConnector.credentialsSchema, { token: 'glsa_x', apiKey: 'y' })).toEqual([{ path: '', message: 'Unrecognized key: "apiKey"' }]);
  });

  it('describes itself for the catalog', () => {
    expect(grafanaConnector).toMatchObject({ type: 'grafana', title: 'Grafana', auth: 'api-key', provides: ['Logs (Loki)', 'Metrics (Mimir/Prometheus)'] });
    expect(z.toJSONSchema(grafanaConnector.configSchema, { io: 'input' })).toMatchObject({ type: 'object', required: ['url'], properties: { url: { type: 'string', format: 'uri' } } });
    expect(() => z.toJSONSchema(grafanaConnector.credentialsSchema, { io: 'input' })).not.toThrow();
  });
});
