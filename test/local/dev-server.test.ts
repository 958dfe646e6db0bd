/**
 * The dev server alone (no DynamoDB): routing, the authorizer step, the proxy event it builds,
 * how it writes a handler's result, and its own answers (404, 405, 401, 403, 413, 502, 504).
 * Test-only routes and a fake authorizer are injected; /v1/health is the real handler.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { APIGatewayAuthorizerResult } from 'aws-lambda';
import { startDevServer, type Authorizer, type DevServer } from '#local/dev-server.ts';
import { PortInUseError } from '#local/errors.ts';
import { finishSlowHandlers, occupyPort, rawRequest, TEST_ROUTES, testHandlerLoader, type EchoBody } from './support.ts';

const policy = (principalId: string, effect: 'Allow' | 'Deny', resource: string, context?: Record<string, string>): APIGatewayAuthorizerResult => ({
  principalId,
  policyDocument: { Version: '2012-10-17', Statement: [{ Effect: effect, Action: 'execute-api:Invoke', Resource: resource }] },
  ...(context ? { context } : {}),
});

let authorizerCalls = 0;
const fakeAuthorizer: Authorizer = async (event) => {
  authorizerCalls++;
  const header = Object.entries(event.headers ?? {}).find(([name]) => name.toLowerCase() === 'authorization')?.[1] ?? '';
  const token = /^Bearer (\S+)$/.exec(header)?.[1];
  if (token === 'good') return policy('acme', 'Allow', event.methodArn.replace(/\/[A-Z]+\/.*$/, '/*'), { tenantId: 'acme' });
  if (token === 'deny') return policy('acme', 'Deny', event.methodArn);
  if (token === 'crash') throw new Error('the token table is unreachable');
  throw new Error('Unauthorized');
};

let server: DevServer;
beforeAll(async () => {
  server = await startDevServer({ port: 0, routes: TEST_ROUTES, loadHandler: testHandlerLoader, authorize: fakeAuthorizer, timeoutMs: 200 });
});
afterAll(async () => {
  finishSlowHandlers();
  await server.close();
});

const get = (path: string, init: RequestInit = {}) => fetch(`${server.url}${path}`, init);

async function expectProblem(response: Response, status: number) {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toBe('application/problem+json');
  const problem = (await response.json()) as Record<string, unknown>;
  expect(problem).toMatchObject({ type: expect.any(String), title: expect.any(String), status, detail: expect.any(String) });
  return problem;
}

describe('dev server: routing and its own answers', () => {
  it('serves GET /v1/health from the real handler', async () => {
    const response = await get('/v1/health');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.headers.get('x-amzn-requestid')).toMatch(/^[0-9a-f-]{36}$/);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('answers 404 problem+json for an unknown path', async () => {
    const problem = await expectProblem(await get('/v1/nothing-here'), 404);
    expect(problem.detail).toBe('No route matches GET /v1/nothing-here.');
    expect(problem.requestId).toEqual(expect.any(String));
    await expectProblem(await get('/v1/health/extra'), 404);
    await expectProblem(await get('/'), 404);
  });

  it('answers 405 with Allow for a known path and the wrong method', async () => {
    const response = await get('/v1/health', { method: 'DELETE' });
    expect(response.headers.get('allow')).toBe('GET');
    await expectProblem(response, 405);
    const echo = await get('/v1/echo/x', { method: 'GET' });
    expect(echo.headers.get('allow')).toBe('POST, PUT');
  });

  it('prefers a literal segment over a parameter, and matches greedy parameters', async () => {
    expect(await (await get('/v1/public/items/search')).text()).toBe('search');
    const item = (await (await get('/v1/public/items/other')).json()) as EchoBody;
    expect(item.event.pathParameters).toEqual({ id: 'other' });
    const file = (await (await get('/v1/public/files/a/b%20c/d')).json()) as EchoBody;
    expect(file.event.resource).toBe('/v1/public/files/{path+}');
    expect(file.event.pathParameters).toEqual({ path: 'a/b%20c/d' });
  });
});

describe('dev server: the authorizer step', () => {
  it('answers 401 without running the authorizer when there is no Authorization header', async () => {
    const before = authorizerCalls;
    const response = await get('/v1/whoami');
    expect(response.headers.get('www-authenticate')).toBe('Bearer');
    const problem = await expectProblem(response, 401);
    expect(problem.detail).toMatch(/Authorization: Bearer <token>/);
    expect(authorizerCalls).toBe(before);
  });

  it('answers 401 when the authorizer says Unauthorized, 403 when its policy denies, 500 when it fails', async () => {
    await expectProblem(await get('/v1/whoami', { headers: { authorization: 'Bearer wrong' } }), 401);
    await expectProblem(await get('/v1/whoami', { headers: { authorization: 'Basic Zm9vOmJhcg==' } }), 401);
    await expectProblem(await get('/v1/whoami', { headers: { authorization: 'Bearer deny' } }), 403);
    await expectProblem(await get('/v1/whoami', { headers: { authorization: 'Bearer crash' } }), 500);
  });

  it('passes the authorizer context and principal to the handler', async () => {
    const response = await get('/v1/whoami', { headers: { authorization: 'Bearer good' } });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ tenantId: 'acme' });
  });

  it('runs no authorizer for a public route', async () => {
    const before = authorizerCalls;
    const echo = (await (await get('/v1/public/items/1', { headers: { authorization: 'Bearer good' } })).json()) as EchoBody;
    expect(echo.event.requestContext.authorizer).toBeUndefined();
    expect(authorizerCalls).toBe(before);
  });
});

describe('dev server: the proxy event', () => {
  it('builds an API Gateway REST proxy event', async () => {
    const response = await get('/v1/echo/github%3Arepository%3Aacme%2Fpayments?a=1&a=2&b=x%20y', {
      method: 'POST',
      headers: { authorization: 'Bearer good', 'content-type': 'application/json' },
      body: JSON.stringify({ hello: 'wörld' }),
    });
    expect(response.status).toBe(200);
    const { event, context } = (await response.json()) as EchoBody;
    expect(event).toMatchObject({
      resource: '/v1/echo/{id}',
      path: '/v1/echo/github%3Arepository%3Aacme%2Fpayments',
      httpMethod: 'POST',
      pathParameters: { id: 'github%3Arepository%3Aacme%2Fpayments' },
      queryStringParameters: { a: '2', b: 'x y' },
      multiValueQueryStringParameters: { a: ['1', '2'], b: ['x y'] },
      stageVariables: null,
      body: JSON.stringify({ hello: 'wörld' }),
      isBase64Encoded: false,
    });
    expect(event.headers['content-type']).toBe('application/json');
    expect(event.multiValueHeaders['content-type']).toEqual(['application/json']);
    expect(event.headers['X-Forwarded-Proto']).toBe('http');
    expect(event.requestContext).toMatchObject({
      requestId: response.headers.get('x-amzn-requestid'),
      resourcePath: '/v1/echo/{id}',
      httpMethod: 'POST',
      stage: 'local',
      path: '/local/v1/echo/github%3Arepository%3Aacme%2Fpayments',
      identity: { sourceIp: '127.0.0.1' },
      authorizer: { tenantId: 'acme', principalId: 'acme', integrationLatency: expect.any(Number) },
    });
    expect(context.functionName).toBe('opentrace-local-test-echo');
    expect(context.remainingMs).toBeGreaterThan(0);
    expect(context.remainingMs).toBeLessThanOrEqual(200);
  });

  it('keeps header names as sent, the last value in headers and all of them in multiValueHeaders', async () => {
    const response = await rawRequest(
      server.port,
      'GET /v1/public/items/1 HTTP/1.1\r\nHost: localhost\r\nX-Trace: one\r\nX-Trace: two\r\nConnection: close\r\n\r\n',
    );
    expect(response.status).toBe(200);
    const { event } = JSON.parse(response.body) as EchoBody;
    expect(event.headers['X-Trace']).toBe('two');
    expect(event.multiValueHeaders['X-Trace']).toEqual(['one', 'two']);
    expect(event.queryStringParameters).toBeNull();
    expect(event.body).toBeNull();
  });

  it('passes binary media types base64-encoded', async () => {
    const binaryServer = await startDevServer({ port: 0, routes: TEST_ROUTES, loadHandler: testHandlerLoader, authorize: fakeAuthorizer, binaryMediaTypes: ['application/octet-stream'] });
    try {
      const bytes = Buffer.from([0, 255, 1, 254]);
      const response = await fetch(`${binaryServer.url}/v1/echo/1`, {
        method: 'PUT',
        headers: { authorization: 'Bearer good', 'content-type': 'application/octet-stream' },
        body: bytes,
      });
      const { event } = (await response.json()) as EchoBody;
      expect(event.isBase64Encoded).toBe(true);
      expect(Buffer.from(event.body!, 'base64')).toEqual(bytes);
    } finally {
      await binaryServer.close();
    }
  });
});

describe('dev server: request bodies', () => {
  const limit = 256 * 1024;

  it('accepts a body of exactly 256 KiB', async () => {
    const response = await get('/v1/echo/1', { method: 'POST', headers: { authorization: 'Bearer good' }, body: 'x'.repeat(limit) });
    expect(response.status).toBe(200);
    expect(((await response.json()) as EchoBody).event.body).toHaveLength(limit);
  });

  it('answers 413 for a declared length over 256 KiB without waiting for the body', async () => {
    // The body is never sent: an answer proves the server did not wait to read it.
    const response = await rawRequest(
      server.port,
      `POST /v1/echo/1 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer good\r\nContent-Type: application/json\r\nContent-Length: ${10 * 1024 * 1024}\r\n\r\n{"partial":`,
    );
    expect(response.status).toBe(413);
    expect(response.headers).toMatch(/content-type: application\/problem\+json/i);
    expect(JSON.parse(response.body)).toMatchObject({ status: 413, title: 'Payload too large', type: expect.stringContaining('payload-too-large') });
  });

  it('answers 413 for a chunked body once it passes 256 KiB', async () => {
    const chunk = 'y'.repeat(64 * 1024);
    const chunks = Array.from({ length: 5 }, () => `${chunk.length.toString(16)}\r\n${chunk}\r\n`).join('');
    const response = await rawRequest(
      server.port,
      'POST /v1/echo/1 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer good\r\nTransfer-Encoding: chunked\r\n\r\n',
      Buffer.from(chunks),
    );
    expect(response.status).toBe(413);
  });

  it('answers 413 to fetch sending a large body', async () => {
    const response = await get('/v1/echo/1', { method: 'POST', headers: { authorization: 'Bearer good' }, body: 'z'.repeat(limit + 1) });
    await expectProblem(response, 413);
  });

  it('checks the token before the body, as API Gateway does', async () => {
    const response = await rawRequest(server.port, `POST /v1/echo/1 HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${limit * 4}\r\n\r\n`);
    expect(response.status).toBe(401);
  });
});

describe('dev server: handler results', () => {
  it('writes status, merged headers (multi-value wins) and a base64 body', async () => {
    const response = await get('/v1/public/cookies');
    expect(response.status).toBe(201);
    expect(response.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(response.headers.get('x-single')).toBe('one');
    expect(Buffer.from(await response.arrayBuffer())).toEqual(Buffer.from([0, 1, 2, 255]));
  });

  it('answers 502 when a handler throws or returns something that is not a proxy result', async () => {
    const thrown = await expectProblem(await get('/v1/public/throws'), 502);
    expect(JSON.stringify(thrown)).not.toContain('boom');
    await expectProblem(await get('/v1/public/invalid'), 502);
  });

  it('answers 504 when a handler outlives the integration timeout', async () => {
    await expectProblem(await get('/v1/public/slow'), 504);
    finishSlowHandlers();
  });

  it('answers 502 for a route whose handler module cannot be loaded', async () => {
    const broken = await startDevServer({ port: 0, routes: [{ method: 'GET', path: '/v1/broken', fn: 'no-such-function', public: true }] });
    try {
      await expectProblem(await fetch(`${broken.url}/v1/broken`), 502);
    } finally {
      await broken.close();
    }
  });
});

describe('dev server: start-up', () => {
  it('rejects with a clear message when the port is taken', async () => {
    const taken = await occupyPort();
    try {
      const error = await startDevServer({ port: taken.port }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PortInUseError);
      expect((error as Error).message).toBe(`port ${taken.port} is already in use: set PORT to another port`);
    } finally {
      await taken.close();
    }
  });
});
