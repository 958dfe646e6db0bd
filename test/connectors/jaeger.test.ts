import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { z } from 'zod';
import { createJaegerConnector, jaegerConnector, type JaegerConfig, type JaegerCredentials } from '#connectors/jaeger/index.ts';
import { parseGrpcTarget } from '#connectors/jaeger/address.ts';
import type { VerifyContext } from '#connectors/types.ts';
import { OutboundBlockedError, type OutboundPolicy } from '#platform/outbound.ts';
import { startJaegerFake, type JaegerFake } from '../fakes/jaeger.ts';
import { closedPort, loopbackPolicy, verifyContext } from '../support/verify-context.ts';

const policy = loopbackPolicy;
const closedPolicy: OutboundPolicy = { ...policy, allowPrivateNetworks: false };
/** The connector with the tests' outbound policy for gRPC (HTTP gets it through ctx.fetch). */
const connector = createJaegerConnector({ grpcPolicy: () => policy });

function ctx(config: JaegerConfig, credentials: JaegerCredentials = {}, fetchPolicy: OutboundPolicy = policy): VerifyContext<JaegerConfig, JaegerCredentials> {
  return verifyContext(config, credentials, fetchPolicy);
}

const apiKey = { name: 'X-Api-Key', value: 'jaeger-proxy-key-0123456789' };
let fake: JaegerFake;
let v2Fake: JaegerFake;

beforeAll(async () => {
  fake = await startJaegerFake({ grpc: 'v3' });
  v2Fake = await startJaegerFake({ grpc: 'v2-only' });
});
afterEach(() => {
  for (const f of [fake, v2Fake]) {
    f.set({ mode: 'normal', apis: 'v3+v1', v3Missing: undefined, authHeader: undefined, impersonate: undefined, services: undefined, echoCredentials: false });
    f.requests.length = 0;
  }
});
afterAll(async () => {
  await fake.close();
  await v2Fake.close();
});

describe('jaeger verify over HTTP', () => {
  it('lists services through api_v3', async () => {
    const result = await connector.verify(ctx({ url: fake.url, protocol: 'http' }));
    expect(result).toEqual({
      ok: true,
      checks: [{ name: 'services', ok: true, detail: 'Jaeger answered over HTTP (api_v3): 4 services (frontend, checkout, payments, redis).' }],
      discovered: { api: 'api_v3', serviceCount: 4 },
    });
    expect(fake.requests.map((r) => r.path)).toEqual(['/api/v3/services']);
  });

  it('sends the optional auth header', async () => {
    fake.set({ authHeader: apiKey });
    const result = await connector.verify(ctx({ url: fake.url, protocol: 'http' }, { authHeader: apiKey }));
    expect(result.ok).toBe(true);
    expect(fake.requests[0]!.headers['x-api-key']).toBe(apiKey.value);
  });

  it.each([
    ['a v1-only server answering its UI page for /api/v3', 'ui-page' as const],
    ['a v1-only server answering 404 for /api/v3', 'not-found' as const],
  ])('falls back to the v1 /api/services on %s', async (_label, v3Missing) => {
    fake.set({ apis: 'v1-only', v3Missing });
    const result = await connector.verify(ctx({ url: fake.url, protocol: 'http' }));
    expect(result.ok).toBe(true);
    expect(result.checks[0]!.detail).toMatch(/^Jaeger answered through its older v1 HTTP API .*: 4 services \(frontend, checkout, payments, redis\)\.$/);
    expect(result.discovered).toEqual({ api: 'api_v1', serviceCount: 4 });
    expect(fake.requests.map((r) => r.path)).toEqual(['/api/v3/services', '/api/services']);
  });

  it('passes with a note when Jaeger has no services yet', async () => {
    fake.set({ services: [] });
    const result = await connector.verify(ctx({ url: fake.url, protocol: 'http' }));
    expect(result.ok).toBe(true);
    expect(result.checks[0]!.detail).toBe('Jaeger answered over HTTP (api_v3), but it has no services yet: send traces to it, and OpenTrace sees them on the next sync.');
  });

  it('says the auth header was rejected (401)', async () => {
    fake.set({ authHeader: apiKey });
    const result = await connector.verify(ctx({ url: fake.url, protocol: 'http' }, { authHeader: { name: 'X-Api-Key', value: 'wrong-key-value' } }));
    expect(result.ok).toBe(false);
    expect(result.checks[0]!.detail).toMatch(/^Jaeger rejected the auth header \(401 Unauthorized\): check the header name \(X-Api-Key\) and its value/);
  });

  it('says authentication is required when no auth header was given (401)', async () => {
    fake.set({ authHeader: apiKey });
    const result = await connector.verify(ctx({ url: fake.url, protocol: 'http' }));
    expect(result.checks[0]!.detail).toMatch(/requires authentication \(401 Unauthorized\): add the auth header/);
  });

  it('says access was refused (403)', async () => {
    fake.set({ mode: 403 });
    const result = await connector.verify(ctx({ url: fake.url, protocol: 'http' }, { authHeader: apiKey }));
    expect(result.checks[0]!.detail).toMatch(/refused access \(403 Forbidden\): the X-Api-Key header was accepted but does not allow reading the query API/);
  });

  it.each([
    ['an nginx 404 page', 'nginx' as const, /answered 404 Not Found and \/api\/services 404 Not Found\./],
    ['a web app', 'spa' as const, /answered a web page and \/api\/services a web page\./],
  ])('says a URL serving %s is not a Jaeger query service', async (_label, impersonate, detail) => {
    fake.set({ impersonate });
    const result = await connector.verify(ctx({ url: fake.url, protocol: 'http' }));
    expect(result.checks[0]!.detail.startsWith(`${fake.url} is not a Jaeger query service: /api/v3/services answered`)).toBe(true);
    expect(result.checks[0]!.detail).toMatch(detail);
  });

  it('times out on a slow server', async () => {
    fake.set({ mode: 'slow', delayMs: 5000 });
    const result = await connector.verify(ctx({ url: fake.url, protocol: 'http' }));
    expect(result.checks[0]!.detail).toMatch(/^Timed out: Jaeger at http:\/\/127\.0\.0\.1:\d+ did not answer within 1 s\./);
  });

  it('says when the server is unreachable', async () => {
    const result = await connector.verify(ctx({ url: `http://127.0.0.1:${await closedPort()}`, protocol: 'http' }));
    expect(result.checks[0]!.detail).toMatch(/^Could not reach Jaeger at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  });

  it('reports an upstream 5xx with its reason', async () => {
    fake.set({ mode: 500 });
    const result = await connector.verify(ctx({ url: fake.url, protocol: 'http' }));
    expect(result.checks[0]!.detail).toMatch(/failed with 500 Internal Server Error\. This is a server-side error.* It said: "failed to query storage: context deadline exceeded"\./);
  });

  it('reports rate limiting (429) with the Retry-After wait', async () => {
    fake.set({ mode: 429 });
    const result = await connector.verify(ctx({ url: fake.url, protocol: 'http' }));
    expect(result.checks[0]!.detail).toMatch(/is rate-limiting requests \(429 Too Many Requests\): try again in 7 s\./);
  });

  it('never puts the auth header value in a detail, even when the upstream echoes it', async () => {
    const leaky = { name: 'Authorization', value: 'Bearer leaky-jaeger-token-42' };
    fake.set({ authHeader: { name: 'Authorization', value: 'Bearer right' }, echoCredentials: true });
    const result = await connector.verify(ctx({ url: fake.url, protocol: 'http' }, { authHeader: leaky }));
    expect(result.checks[0]!.detail).toMatch(/It said: "Unauthorized: \[redacted\]"/);
    expect(JSON.stringify(result)).not.toContain('leaky-jaeger-token-42');
  });

  it('lets the outbound guard refuse a private URL before anything is contacted', async () => {
    await expect(connector.verify(ctx({ url: fake.url.replace('http:', 'https:'), protocol: 'http' }, {}, closedPolicy))).rejects.toBeInstanceOf(OutboundBlockedError);
    expect(fake.requests).toHaveLength(0);
  });
});

describe('jaeger verify over gRPC', () => {
  it('lists services through jaeger.api_v3.QueryService/GetServices, with the auth header as metadata', async () => {
    fake.set({ authHeader: { name: 'Authorization', value: 'Bearer grpc-token' } });
    const result = await connector.verify(ctx({ url: fake.grpcUrl!, protocol: 'grpc' }, { authHeader: { name: 'Authorization', value: 'Bearer grpc-token' } }));
    expect(result).toEqual({
      ok: true,
      checks: [{ name: 'services', ok: true, detail: 'Jaeger answered over gRPC (api_v3): 4 services (frontend, checkout, payments, redis).' }],
      discovered: { api: 'api_v3', serviceCount: 4 },
    });
    expect(fake.requests.map((r) => [r.path, r.headers.authorization])).toEqual([['/jaeger.api_v3.QueryService/GetServices', 'Bearer grpc-token']]);
  });

  it('falls back to jaeger.api_v2 when api_v3 is UNIMPLEMENTED', async () => {
    const result = await connector.verify(ctx({ url: v2Fake.grpcUrl!, protocol: 'grpc' }));
    expect(result.ok).toBe(true);
    expect(result.checks[0]!.detail).toMatch(/^Jaeger answered over gRPC through its legacy api_v2 .*: 4 services/);
    expect(result.discovered).toEqual({ api: 'api_v2', serviceCount: 4 });
    expect(v2Fake.requests.map((r) => r.path)).toEqual(['/jaeger.api_v2.QueryService/GetServices']);
  });

  it('says the auth header was rejected (UNAUTHENTICATED)', async () => {
    fake.set({ authHeader: { name: 'Authorization', value: 'Bearer grpc-token' } });
    const result = await connector.verify(ctx({ url: fake.grpcUrl!, protocol: 'grpc' }, { authHeader: { name: 'Authorization', value: 'Bearer nope' } }));
    expect(result.checks[0]!.detail).toMatch(/^Jaeger rejected the auth header \(UNAUTHENTICATED\): check the header name \(Authorization\)/);
  });

  it('says access was refused (PERMISSION_DENIED)', async () => {
    fake.set({ mode: 403 });
    const result = await connector.verify(ctx({ url: fake.grpcUrl!, protocol: 'grpc' }));
    expect(result.checks[0]!.detail).toMatch(/refused access \(PERMISSION_DENIED\)/);
  });

  it('times out on a slow server (deadline)', async () => {
    fake.set({ mode: 'slow', delayMs: 5000 });
    const result = await connector.verify(ctx({ url: fake.grpcUrl!, protocol: 'grpc' }));
    expect(result.checks[0]!.detail).toMatch(/^Timed out: Jaeger at grpc:\/\/127\.0\.0\.1:\d+ did not answer within 1 s\./);
  });

  it('says when the server is unreachable', async () => {
    const result = await connector.verify(ctx({ url: `grpc://127.0.0.1:${await closedPort()}`, protocol: 'grpc' }));
    expect(result.checks[0]!.detail).toMatch(/^Could not reach Jaeger at grpc:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\): nothing accepts connections on that port/);
  });

  it('reports INTERNAL as a server-side error, and RESOURCE_EXHAUSTED as rate limiting', async () => {
    fake.set({ mode: 500 });
    const internal = await connector.verify(ctx({ url: fake.grpcUrl!, protocol: 'grpc' }));
    expect(internal.checks[0]!.detail).toMatch(/failed with INTERNAL\. This is a server-side error.* It said: "failed to query storage: context deadline exceeded"\./);
    fake.set({ mode: 429 });
    const limited = await connector.verify(ctx({ url: fake.grpcUrl!, protocol: 'grpc' }));
    expect(limited.checks[0]!.detail).toMatch(/is rate-limiting requests \(RESOURCE_EXHAUSTED\): try again in a minute\./);
  });

  it("says when the port speaks HTTP/1, not gRPC (Jaeger's HTTP port given as gRPC)", async () => {
    const result = await connector.verify(ctx({ url: fake.url.replace('http:', 'grpc:'), protocol: 'grpc' }));
    expect(result.checks[0]!.detail).toMatch(/answered, but not as a gRPC server \(it speaks HTTP\/1\)/);
  });

  it('says when TLS (host:port, grpcs://) meets a plaintext server', async () => {
    const result = await connector.verify(ctx({ url: fake.grpcUrl!.replace('grpc://', ''), protocol: 'grpc' }));
    expect(result.checks[0]!.detail).toMatch(/^The TLS handshake with grpcs:\/\/127\.0\.0\.1:\d+ failed: the server does not speak TLS on that port/);
  });

  it('never puts the auth header value in a detail, even when the upstream echoes it', async () => {
    fake.set({ authHeader: { name: 'Authorization', value: 'Bearer right' }, echoCredentials: true });
    const result = await connector.verify(ctx({ url: fake.grpcUrl!, protocol: 'grpc' }, { authHeader: { name: 'Authorization', value: 'Bearer leaky-grpc-token-42' } }));
    expect(result.ok).toBe(false);
    expect(JSON.stringify(result)).not.toContain('leaky-grpc-token-42');
  });

  describe('outbound safety', () => {
    const guarded = createJaegerConnector({ grpcPolicy: () => closedPolicy });

    it('refuses plaintext grpc:// in the cloud', async () => {
      await expect(guarded.verify(ctx({ url: fake.grpcUrl!, protocol: 'grpc' }))).rejects.toThrow(/must use TLS: write grpcs:\/\//);
      expect(fake.requests).toHaveLength(0);
    });

    it('refuses a loopback address, and a name resolving to one, without connecting', async () => {
      const port = fake.grpcUrl!.split(':').pop();
      await expect(guarded.verify(ctx({ url: `grpcs://127.0.0.1:${port}`, protocol: 'grpc' }))).rejects.toBeInstanceOf(OutboundBlockedError);
      await expect(guarded.verify(ctx({ url: `localhost:${port}`, protocol: 'grpc' }))).rejects.toThrow(/resolves to a blocked address/);
      await expect(guarded.verify(ctx({ url: 'grpcs://169.254.169.254:16685', protocol: 'grpc' }))).rejects.toThrow(/metadata/);
      expect(fake.requests).toHaveLength(0);
    });

    it('uses the outbound policy from the environment by default (private networks off)', async () => {
      const saved = process.env.OPENTRACE_ALLOW_PRIVATE_NETWORKS;
      delete process.env.OPENTRACE_ALLOW_PRIVATE_NETWORKS;
      try {
        await expect(jaegerConnector.verify(ctx({ url: fake.grpcUrl!, protocol: 'grpc' }))).rejects.toBeInstanceOf(OutboundBlockedError);
      } finally {
        if (saved !== undefined) process.env.OPENTRACE_ALLOW_PRIVATE_NETWORKS = saved;
      }
    });
  });
});

describe('jaeger gRPC addresses', () => {
  it.each([
    ['jaeger-query:16685', { host: 'jaeger-query', port: 16685, tls: true, display: 'grpcs://jaeger-query:16685' }],
    ['jaeger.example.com', { host: 'jaeger.example.com', port: 16685, tls: true, display: 'grpcs://jaeger.example.com:16685' }],
    ['grpcs://jaeger.example.com:443', { host: 'jaeger.example.com', port: 443, tls: true, display: 'grpcs://jaeger.example.com:443' }],
    ['grpc://127.0.0.1:3103', { host: '127.0.0.1', port: 3103, tls: false, display: 'grpc://127.0.0.1:3103' }],
    ['grpc://[::1]:16685', { host: '::1', port: 16685, tls: false, display: 'grpc://[::1]:16685' }],
  ])('parses %s', (raw, target) => {
    expect(parseGrpcTarget(raw)).toEqual(target);
  });

  it.each([
    ['http://jaeger:16685', /cannot start with http:\/\//],
    ['grpc://jaeger:16685/api', /has no path, query or fragment/],
    ['grpc://user:pw@jaeger:16685', /must not contain a user name or password/],
    ['grpc://jae_ger:16685', /no valid host name/],
  ])('rejects %s', (raw, message) => {
    expect(parseGrpcTarget(raw)).toMatch(message);
  });
});

describe('jaeger config and credentials', () => {
  const issues = (schema: z.ZodType, value: unknown) => schema.safeParse(value).error?.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));

  it('accepts the documented shapes', () => {
    expect(jaegerConnector.configSchema.parse({ url: 'http://jaeger-query:16686', protocol: 'http' })).toEqual({ url: 'http://jaeger-query:16686', protocol: 'http' });
    expect(jaegerConnector.configSchema.parse({ url: 'jaeger-query:16685', protocol: 'grpc' })).toEqual({ url: 'jaeger-query:16685', protocol: 'grpc' });
    expect(jaegerConnector.credentialsSchema.parse({})).toEqual({});
    expect(jaegerConnector.credentialsSchema.parse({ authHeader: { name: 'Authorization', value: 'Bearer abc ' } })).toEqual({ authHeader: { name: 'Authorization', value: 'Bearer abc' } });
  });

  it.each([
    [{ url: 'http://jaeger-query:16686' }, 'protocol', 'protocol must be "http" (the query API, port 16686) or "grpc" (port 16685)'],
    [{ url: 'http://jaeger-query:16686', protocol: 'thrift' }, 'protocol', 'protocol must be "http" (the query API, port 16686) or "grpc" (port 16685)'],
    [{ protocol: 'http' }, 'url', 'url is required'],
    [{ url: 'jaeger-query:16685', protocol: 'http' }, 'url', 'jaeger-query:16685 is a gRPC address: set protocol to "grpc", or give the HTTP address such as http://jaeger-query:16686'],
    [{ url: 'https://admin:pw@jaeger.example.com', protocol: 'http' }, 'url', 'url must not contain a user name or password: put credentials in the credentials fields'],
    [
      { url: 'https://jaeger.example.com:16685', protocol: 'grpc' },
      'url',
      'a gRPC address cannot start with https://: write host:16685 or grpcs://host:16685 (TLS), or grpc://host:16685 (plaintext, local stack only) (for an http(s):// address, set protocol to "http")',
    ],
  ])('rejects config %j with a message on %s', (config, path, message) => {
    expect(issues(jaegerConnector.configSchema, config)).toContainEqual({ path, message });
  });

  it.each([
    [{ authHeader: { value: 'x' } }, 'authHeader.name', 'authHeader.name is required'],
    [{ authHeader: { name: 'X-Api-Key' } }, 'authHeader.value', 'authHeader.value is required'],
    [{ authHeader: { name: 'X Api Key', value: 'x' } }, 'authHeader.name', 'authHeader.name must be an HTTP header name: letters, digits, "-", "_" and "." (e.g. Authorization or X-Api-Key)'],
    [{ authHeader: { name: 'Host', value: 'x' } }, 'authHeader.name', 'authHeader.name cannot be a header OpenTrace sets itself (Host, Content-Type, Accept…)'],
    [{ authHeader: { name: 'grpc-timeout', value: 'x' } }, 'authHeader.name', 'authHeader.name cannot start with proxy- or grpc-, or end with -bin'],
    [{ authHeader: { name: 'X-Api-Key', value: 'a\nb' } }, 'authHeader.value', 'authHeader.value must be printable ASCII on one line'],
    [{ authHeader: { name: 'X-Api-Key', value: '' } }, 'authHeader.value', 'authHeader.value must not be empty'],
    [{ authHeader: 'Bearer x' }, 'authHeader', 'authHeader must be an object { name, value }'],
    [{ token: 'x' }, '', 'Unrecognized key: "token"'],
  ])('rejects credentials %j with a message on %s', (credentials, path, message) => {
    expect(issues(jaegerConnector.credentialsSchema, credentials)).toContainEqual({ path, message });
  });

  it('describes itself for the catalog', () => {
    expect(jaegerConnector).toMatchObject({ type: 'jaeger', title: 'Jaeger', auth: 'api', provides: ['Distributed tracing data'] });
    expect(z.toJSONSchema(jaegerConnector.configSchema, { io: 'input' })).toMatchObject({ required: ['url', 'protocol'], properties: { protocol: { enum: ['http', 'grpc'] } } });
    expect(() => z.toJSONSchema(jaegerConnector.credentialsSchema, { io: 'input' })).not.toThrow();
  });
});
