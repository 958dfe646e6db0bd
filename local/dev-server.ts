/**
 * The local API Gateway: a node:http server that serves the routes of functions/api/routes.ts the
 * way the deployed REST API does (lib/api.ts), calling the same handlers in-process:
 *
 * - Protected routes run the token authorizer (functions/api/authorizer.ts, a REQUEST authorizer)
 *   first. No Authorization header → 401 without running it, as API Gateway's identity source
 *   does; a thrown "Unauthorized" → 401; a policy that does not allow the method → 403; its
 *   context (tenantId) and principalId land in `requestContext.authorizer`.
 * - Each request becomes a Lambda proxy event (payload format 1.0): `path` and `pathParameters`
 *   keep the request's percent-encoding (the handlers decode), query values are decoded, the
 *   single-value maps hold the last value and the multi-value maps all of them; bodies are text
 *   unless the content type is one of `binaryMediaTypes` (then base64).
 * - Bodies over 256 KiB are refused with 413 before they are read (the deployed handlers refuse
 *   them too, in platform/http.ts).
 * - A handler that throws or answers something malformed is a 502; one slower than the
 *   integration timeout (29 s) a 504.
 *
 * Answers of the gateway itself are problem+json shaped like lib/api.ts's gateway responses
 * (`type: about:blank`, with `requestId`). One deliberate difference: a known path with the wrong
 * method is a 405 here, where API Gateway answers 404 (MISSING_AUTHENTICATION_TOKEN).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { APIGatewayAuthorizerResult, APIGatewayProxyEvent, APIGatewayProxyResult, APIGatewayRequestAuthorizerEvent, Context } from 'aws-lambda';
import { ROUTES, type RouteDefinition } from '#api/routes.ts';
import { PayloadTooLargeError } from '#platform/errors.ts';
import { problemBody } from '#platform/http.ts';
import { LocalStackError, PortInUseError, errnoCode } from './errors.ts';

export const MAX_BODY_BYTES = 256 * 1024;
/** API Gateway's integration timeout for REST APIs. */
export const INTEGRATION_TIMEOUT_MS = 29_000;
const ACCOUNT_ID = '000000000000';
const API_ID = 'local';

/** What the dev server needs of a route. */
export type DevRoute = Pick<RouteDefinition, 'method' | 'path' | 'fn' | 'public'>;
export type ProxyHandler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult | undefined | void>;
export type HandlerLoader = (fn: string) => Promise<ProxyHandler>;
/** A REQUEST authorizer: answers a policy and context, or throws Error('Unauthorized') for a 401. */
export type Authorizer = (event: APIGatewayRequestAuthorizerEvent, context: Context) => Promise<APIGatewayAuthorizerResult>;

export interface DevServerOptions {
  /** Default 3000; 0 picks a free port. */
  port?: number;
  host?: string;
  routes?: readonly DevRoute[];
  loadHandler?: HandlerLoader;
  /** Default: the handler of functions/api/authorizer.ts. */
  authorize?: Authorizer;
  maxBodyBytes?: number;
  timeoutMs?: number;
  /** Content types passed base64-encoded, as the REST API's binaryMediaTypes. Default none. */
  binaryMediaTypes?: readonly string[];
  stage?: string;
  /** One line per request (method, path without query, status, time); default silent. */
  log?: (line: string) => void;
}

export interface DevServer {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

/** Loads `functions/api/<fn>.ts` and answers its `handler`. */
export async function loadApiHandler(fn: string): Promise<ProxyHandler> {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(fn)) throw new Error(`invalid handler name "${fn}"`);
  const module = (await import(`#api/${fn}.ts`)) as { handler?: unknown };
  if (typeof module.handler !== 'function') throw new Error(`functions/api/${fn}.ts does not export a handler function`);
  return module.handler as ProxyHandler;
}

/** The deployed token authorizer, loaded on first use. */
export const apiAuthorizer: Authorizer = async (event, context) => {
  const module = (await import('#api/authorizer.ts')) as { handler: Authorizer };
  return module.handler(event, context);
};

export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 3000;
  const config: RequestConfig = {
    routes: compileRoutes(options.routes ?? ROUTES),
    loadHandler: cachedLoader(options.loadHandler ?? loadApiHandler),
    authorize: options.authorize ?? apiAuthorizer,
    maxBodyBytes: options.maxBodyBytes ?? MAX_BODY_BYTES,
    timeoutMs: options.timeoutMs ?? INTEGRATION_TIMEOUT_MS,
    binaryMediaTypes: options.binaryMediaTypes ?? [],
    stage: options.stage ?? 'local',
    log: options.log ?? (() => undefined),
  };

  const server = createServer((req, res) => {
    const requestId = randomUUID();
    handleRequest(config, req, res, requestId).catch((error: unknown) => {
      config.log(`dev server error: ${(error as Error)?.stack ?? String(error)}`);
      if (!res.headersSent) gatewayProblem(req, res, requestId, 500, 'Internal Server Error', 'The local API gateway failed to handle this request.');
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: unknown) => {
      const code = errnoCode(error);
      if (code === 'EADDRINUSE') reject(new PortInUseError(port));
      else if (code === 'EACCES') reject(new LocalStackError(`cannot listen on port ${port}: permission denied; set PORT to a port above 1023`));
      else reject(error);
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });

  const actualPort = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}`,
    port: actualPort,
    server,
    close: () =>
      (closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeIdleConnections();
      })),
  };
}

// --- routing ------------------------------------------------------------------------------

interface CompiledRoute {
  route: DevRoute;
  /** A literal segment, `{name}`, or `{name+}` (greedy, last only). */
  segments: { literal?: string; param?: string; greedy?: boolean }[];
}

function compileRoutes(routes: readonly DevRoute[]): CompiledRoute[] {
  return routes.map((route) => ({
    route,
    segments: route.path
      .split('/')
      .slice(1)
      .map((segment) => {
        const param = /^\{([A-Za-z0-9_]+)(\+?)\}$/.exec(segment);
        return param ? { param: param[1]!, greedy: param[2] === '+' } : { literal: segment };
      }),
  }));
}

/**
 * Matches the raw (still percent-encoded) path segments; parameter values stay encoded, as API
 * Gateway passes them. The score ranks specificity left to right: literal > `{param}` > `{param+}`.
 */
function matchRoute(route: CompiledRoute, segments: string[]): { params: Record<string, string>; score: number[] } | undefined {
  const params: Record<string, string> = {};
  const score: number[] = [];
  for (let i = 0; i < route.segments.length; i++) {
    const segment = route.segments[i]!;
    if (segment.greedy) {
      const rest = segments.slice(i);
      if (rest.length === 0 || rest.every((part) => part === '')) return undefined;
      params[segment.param!] = rest.join('/');
      score.push(0);
      return { params, score };
    }
    const value = segments[i];
    if (value === undefined) return undefined;
    if (segment.literal !== undefined) {
      if (value !== segment.literal) return undefined;
      score.push(2);
    } else {
      if (value === '') return undefined;
      params[segment.param!] = value;
      score.push(1);
    }
  }
  return segments.length === route.segments.length ? { params, score } : undefined;
}

function compareScores(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const diff = (a[i] ?? -1) - (b[i] ?? -1);
    if (diff !== 0) return diff;
  }
  return 0;
}

/** The routes of the most specific resource matching the path (one per method). */
function resolveResource(routes: CompiledRoute[], rawPath: string): { route: DevRoute; params: Record<string, string> }[] {
  const segments = rawPath.split('/').slice(1);
  let best: { resource: string; score: number[] } | undefined;
  const found: { route: DevRoute; params: Record<string, string> }[] = [];
  for (const compiled of routes) {
    const match = matchRoute(compiled, segments);
    if (!match) continue;
    found.push({ route: compiled.route, params: match.params });
    if (!best || compareScores(match.score, best.score) > 0) best = { resource: compiled.route.path, score: match.score };
  }
  return best ? found.filter((match) => match.route.path === best.resource) : [];
}

// --- one request --------------------------------------------------------------------------

interface RequestConfig {
  routes: CompiledRoute[];
  loadHandler: HandlerLoader;
  authorize: Authorizer;
  maxBodyBytes: number;
  timeoutMs: number;
  binaryMediaTypes: readonly string[];
  stage: string;
  log: (line: string) => void;
}

/** The request as API Gateway sees it before the integration: everything but the body. */
interface RequestParts {
  requestId: string;
  rawPath: string;
  route: DevRoute;
  pathParameters: Record<string, string>;
  headers: Record<string, string>;
  multiValueHeaders: Record<string, string[]>;
  queryStringParameters: Record<string, string> | null;
  multiValueQueryStringParameters: Record<string, string[]> | null;
  requestContext: APIGatewayProxyEvent['requestContext'];
}

async function handleRequest(config: RequestConfig, req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
  const started = Date.now();
  res.setHeader('x-amzn-RequestId', requestId);
  res.on('finish', () => config.log(`${req.method} ${pathForLog(req.url)} → ${res.statusCode} (${Date.now() - started} ms)`));

  const rawUrl = req.url ?? '/';
  const queryAt = rawUrl.indexOf('?');
  const rawPath = (queryAt === -1 ? rawUrl : rawUrl.slice(0, queryAt)).split('#')[0]!;
  const rawQuery = queryAt === -1 ? '' : rawUrl.slice(queryAt + 1).split('#')[0]!;

  const matches = rawPath.startsWith('/') ? resolveResource(config.routes, rawPath) : [];
  if (matches.length === 0) return gatewayProblem(req, res, requestId, 404, 'Not Found', `No route matches ${req.method} ${rawPath}.`);
  const match = matches.find((candidate) => candidate.route.method === req.method);
  if (!match) {
    const allowed = [...new Set(matches.map((candidate) => candidate.route.method))].join(', ');
    res.setHeader('allow', allowed);
    return gatewayProblem(req, res, requestId, 405, 'Method Not Allowed', `${rawPath} accepts ${allowed}, not ${req.method}.`);
  }

  const parts = requestParts(config, req, requestId, rawPath, rawQuery, match.route, match.params);

  // Like API Gateway, the authorizer runs before the body matters.
  if (!match.route.public) {
    const denied = await authorize(config, req, parts);
    if (denied) {
      if (denied.status === 401) res.setHeader('www-authenticate', 'Bearer');
      return gatewayProblem(req, res, requestId, denied.status, denied.title, denied.detail);
    }
  }

  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > config.maxBodyBytes) return tooLarge(config, req, res, requestId, rawPath);
  const body = await readBody(req, config.maxBodyBytes);
  if (body === 'too-large') return tooLarge(config, req, res, requestId, rawPath);

  const event = buildEvent(config, req, parts, body);
  writeResult(res, await invoke(config, match.route.fn, event));
}

/** The path only: query strings can carry OAuth codes and other things that must not reach a log. */
const pathForLog = (url: string | undefined) => (url ?? '/').split('?')[0];

function requestParts(
  config: RequestConfig,
  req: IncomingMessage,
  requestId: string,
  rawPath: string,
  rawQuery: string,
  route: DevRoute,
  pathParameters: Record<string, string>,
): RequestParts {
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) addValue(headers, multiValueHeaders, raw[i]!, raw[i + 1]!);
  const sourceIp = (req.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
  if (!hasHeader(headers, 'x-forwarded-for')) addValue(headers, multiValueHeaders, 'X-Forwarded-For', sourceIp);
  if (!hasHeader(headers, 'x-forwarded-proto')) addValue(headers, multiValueHeaders, 'X-Forwarded-Proto', 'http');
  if (!hasHeader(headers, 'x-forwarded-port')) addValue(headers, multiValueHeaders, 'X-Forwarded-Port', String(req.socket.localPort ?? ''));

  let queryStringParameters: Record<string, string> | null = null;
  let multiValueQueryStringParameters: Record<string, string[]> | null = null;
  if (rawQuery) {
    queryStringParameters = {};
    multiValueQueryStringParameters = {};
    for (const [name, value] of new URLSearchParams(rawQuery)) addValue(queryStringParameters, multiValueQueryStringParameters, name, value);
  }

  const now = new Date();
  const requestContext = {
    accountId: ACCOUNT_ID,
    apiId: API_ID,
    domainName: req.headers.host ?? 'localhost',
    domainPrefix: API_ID,
    extendedRequestId: requestId,
    httpMethod: req.method ?? 'GET',
    identity: {
      accessKey: null,
      accountId: null,
      apiKey: null,
      apiKeyId: null,
      caller: null,
      clientCert: null,
      cognitoAuthenticationProvider: null,
      cognitoAuthenticationType: null,
      cognitoIdentityId: null,
      cognitoIdentityPoolId: null,
      principalOrgId: null,
      sourceIp,
      user: null,
      userAgent: req.headers['user-agent'] ?? null,
      userArn: null,
    },
    path: `/${config.stage}${rawPath}`,
    protocol: `HTTP/${req.httpVersion}`,
    requestId,
    requestTime: formatRequestTime(now),
    requestTimeEpoch: now.getTime(),
    resourceId: API_ID,
    resourcePath: route.path,
    stage: config.stage,
  } as APIGatewayProxyEvent['requestContext'];

  return { requestId, rawPath, route, pathParameters, headers, multiValueHeaders, queryStringParameters, multiValueQueryStringParameters, requestContext };
}

function addValue(single: Record<string, string>, multi: Record<string, string[]>, name: string, value: string): void {
  single[name] = value; // API Gateway: the last value wins in the single-value map
  (multi[name] ??= []).push(value);
}

const hasHeader = (headers: Record<string, string>, name: string) => Object.keys(headers).some((key) => key.toLowerCase() === name);

/** API Gateway's `requestTime`: 09/Apr/2015:12:34:56 +0000. */
function formatRequestTime(date: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(date.getUTCDate())}/${months[date.getUTCMonth()]}/${date.getUTCFullYear()}:${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`;
}

const methodArn = (config: RequestConfig, method: string, resourcePath: string) =>
  `arn:aws:execute-api:${process.env.AWS_REGION || 'us-east-1'}:${ACCOUNT_ID}:${API_ID}/${config.stage}/${method}${resourcePath}`;

/**
 * Runs the authorizer as API Gateway does; answers why the request is refused, or undefined and
 * sets `requestContext.authorizer`.
 */
async function authorize(config: RequestConfig, req: IncomingMessage, parts: RequestParts): Promise<{ status: number; title: string; detail: string } | undefined> {
  const unauthorized = { status: 401, title: 'Unauthorized', detail: 'A valid API token is required: send "Authorization: Bearer <token>".' };
  // The identity source is the Authorization header: without it API Gateway answers 401 at once.
  if (!req.headers.authorization) return unauthorized;

  const arn = methodArn(config, req.method ?? 'GET', parts.route.path);
  const event: APIGatewayRequestAuthorizerEvent = {
    type: 'REQUEST',
    methodArn: arn,
    resource: parts.route.path,
    path: parts.rawPath,
    httpMethod: req.method ?? 'GET',
    headers: parts.headers,
    multiValueHeaders: parts.multiValueHeaders,
    pathParameters: Object.keys(parts.pathParameters).length > 0 ? parts.pathParameters : null,
    queryStringParameters: parts.queryStringParameters,
    multiValueQueryStringParameters: parts.multiValueQueryStringParameters,
    stageVariables: null,
    requestContext: { ...parts.requestContext, authorizer: undefined },
  };
  const started = Date.now();
  let result: APIGatewayAuthorizerResult;
  try {
    result = await config.authorize(event, lambdaContext('authorizer', Date.now() + 5000));
  } catch (error) {
    if ((error as Error)?.message === 'Unauthorized') return unauthorized;
    config.log(`authorizer failed: ${(error as Error)?.stack ?? String(error)}`);
    return { status: 500, title: 'Internal Server Error', detail: 'The authorizer failed; see the local stack output.' };
  }
  if (!policyAllows(result, arn)) return { status: 403, title: 'Forbidden', detail: 'User is not authorized to access this resource' };
  parts.requestContext.authorizer = { ...(result.context ?? {}), principalId: result.principalId, integrationLatency: Date.now() - started };
  return undefined;
}

/** IAM-style evaluation of the authorizer's policy for this method: an explicit Deny wins, else an Allow is needed. */
function policyAllows(result: APIGatewayAuthorizerResult | undefined, arn: string): boolean {
  const statements = result?.policyDocument?.Statement ?? [];
  const matches = (statement: (typeof statements)[number]) => {
    const actions = ([] as string[]).concat((statement as { Action?: string | string[] }).Action ?? []);
    const resources = ([] as string[]).concat((statement as { Resource?: string | string[] }).Resource ?? []);
    return actions.some((action) => globMatches(action, 'execute-api:Invoke')) && resources.some((resource) => globMatches(resource, arn));
  };
  if (statements.some((statement) => statement.Effect === 'Deny' && matches(statement))) return false;
  return statements.some((statement) => statement.Effect === 'Allow' && matches(statement));
}

function globMatches(pattern: string, value: string): boolean {
  const regex = new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return regex.test(value);
}

function tooLarge(config: RequestConfig, req: IncomingMessage, res: ServerResponse, requestId: string, rawPath: string): void {
  // Shaped like the handlers' own 413 (platform/http.ts), which is where the cloud refuses it.
  const error = new PayloadTooLargeError(`The request body is over the limit of ${config.maxBodyBytes} bytes (${Math.round(config.maxBodyBytes / 1024)} KiB).`);
  closeAfterAnswer(req, res);
  send(res, error.status, { 'content-type': 'application/problem+json', 'x-request-id': requestId }, JSON.stringify(problemBody(error, rawPath)));
}

/** An answer of the gateway itself, shaped like lib/api.ts's gateway responses. */
function gatewayProblem(req: IncomingMessage, res: ServerResponse, requestId: string, status: number, title: string, detail: string): void {
  closeAfterAnswer(req, res);
  send(res, status, { 'content-type': 'application/problem+json' }, JSON.stringify({ type: 'about:blank', title, status, detail, requestId }));
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: string): void {
  res.writeHead(status, { ...headers, 'content-length': String(Buffer.byteLength(body)) });
  res.end(body);
}

/**
 * For an answer given before the request body was read to its end: the connection closes after
 * the answer, so the rest of the upload is never read into memory (node discards what is already
 * in flight for at most a second, which lets the client read the answer, then the socket drops).
 */
function closeAfterAnswer(req: IncomingMessage, res: ServerResponse): void {
  const noBody = req.headers['transfer-encoding'] === undefined && (req.headers['content-length'] ?? '0') === '0';
  if (req.complete || noBody) return;
  res.setHeader('connection', 'close');
  res.once('finish', () => setTimeout(() => req.socket.destroy(), 1000).unref());
}

/** Reads the body up to `max` bytes; stops reading at the first byte over. */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | 'too-large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        cleanup();
        req.pause();
        resolve('too-large');
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

// --- the Lambda proxy event and the handler call ------------------------------------------

function buildEvent(config: RequestConfig, req: IncomingMessage, parts: RequestParts, body: Buffer): APIGatewayProxyEvent {
  const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const isBase64Encoded = body.length > 0 && config.binaryMediaTypes.some((type) => mediaTypeMatches(type, contentType));
  return {
    resource: parts.route.path,
    path: parts.rawPath,
    httpMethod: req.method ?? 'GET',
    headers: parts.headers,
    multiValueHeaders: parts.multiValueHeaders,
    queryStringParameters: parts.queryStringParameters,
    multiValueQueryStringParameters: parts.multiValueQueryStringParameters,
    pathParameters: Object.keys(parts.pathParameters).length > 0 ? parts.pathParameters : null,
    stageVariables: null,
    body: body.length === 0 ? null : body.toString(isBase64Encoded ? 'base64' : 'utf8'),
    isBase64Encoded,
    requestContext: parts.requestContext,
  };
}

function mediaTypeMatches(pattern: string, contentType: string): boolean {
  const [type, subtype] = pattern.toLowerCase().split('/');
  const [actualType, actualSubtype] = contentType.split('/');
  return (type === '*' || type === actualType) && (subtype === '*' || subtype === actualSubtype);
}

function lambdaContext(fn: string, deadline: number): Context {
  const functionName = `opentrace-local-${fn}`;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${process.env.AWS_REGION || 'us-east-1'}:${ACCOUNT_ID}:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

type InvokeOutcome = { kind: 'result'; result: APIGatewayProxyResult } | { kind: 'error'; status: 502 | 504; detail: string };

async function invoke(config: RequestConfig, fn: string, event: APIGatewayProxyEvent): Promise<InvokeOutcome> {
  const deadline = Date.now() + config.timeoutMs;
  let timer: NodeJS.Timeout | undefined;
  try {
    const handler = await config.loadHandler(fn);
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), config.timeoutMs);
    });
    const outcome = await Promise.race([handler(event, lambdaContext(fn, deadline)), timedOut]);
    if (outcome === 'timeout') {
      config.log(`handler ${fn} did not answer within ${config.timeoutMs} ms`);
      return { kind: 'error', status: 504, detail: `The ${fn} function did not answer within ${config.timeoutMs / 1000} s.` };
    }
    const problem = invalidResult(outcome);
    if (problem) {
      config.log(`handler ${fn} returned an invalid proxy result: ${problem}`);
      return { kind: 'error', status: 502, detail: `The ${fn} function returned an invalid response.` };
    }
    return { kind: 'result', result: outcome as APIGatewayProxyResult };
  } catch (error) {
    config.log(`handler ${fn} failed: ${(error as Error)?.stack ?? String(error)}`);
    return { kind: 'error', status: 502, detail: `The ${fn} function failed; see the local stack output.` };
  } finally {
    clearTimeout(timer);
  }
}

function invalidResult(result: unknown): string | undefined {
  if (!result || typeof result !== 'object') return 'not an object';
  const { statusCode, body } = result as Partial<APIGatewayProxyResult>;
  if (!Number.isInteger(statusCode) || statusCode! < 100 || statusCode! > 599) return 'statusCode is not an HTTP status';
  if (body !== undefined && body !== null && typeof body !== 'string') return 'body is not a string';
  return undefined;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'upgrade', 'trailer', 'te']);

function writeResult(res: ServerResponse, outcome: InvokeOutcome): void {
  if (outcome.kind === 'error') {
    const title = outcome.status === 504 ? 'Gateway Timeout' : 'Bad Gateway';
    send(res, outcome.status, { 'content-type': 'application/problem+json' }, JSON.stringify({ type: 'about:blank', title, status: outcome.status, detail: outcome.detail, requestId: res.getHeader('x-amzn-RequestId') }));
    return;
  }
  const { result } = outcome;
  // API Gateway merges the two maps; a name in multiValueHeaders wins over the same name in headers.
  const merged = new Map<string, { name: string; values: string[] }>();
  for (const [name, values] of Object.entries(result.multiValueHeaders ?? {})) merged.set(name.toLowerCase(), { name, values: values.map(String) });
  for (const [name, value] of Object.entries(result.headers ?? {})) {
    if (!merged.has(name.toLowerCase())) merged.set(name.toLowerCase(), { name, values: [String(value)] });
  }
  for (const [lower, { name, values }] of merged) {
    if (!HOP_BY_HOP.has(lower)) res.setHeader(name, values.length === 1 ? values[0]! : values);
  }
  const body = Buffer.from(result.body ?? '', result.isBase64Encoded ? 'base64' : 'utf8');
  res.setHeader('content-length', body.length);
  res.statusCode = result.statusCode;
  res.end(body);
}

function cachedLoader(load: HandlerLoader): HandlerLoader {
  const cache = new Map<string, Promise<ProxyHandler>>();
  return (fn) => {
    let handler = cache.get(fn);
    if (!handler) {
      handler = load(fn);
      cache.set(fn, handler);
      handler.catch(() => cache.delete(fn)); // a fixed file loads on the next request
    }
    return handler;
  };
}
