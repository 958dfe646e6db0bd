/**
 * The HTTP edge every API function shares: parse → validate → call the domain → respond, with
 * one error handler that turns every failure into RFC 9457 problem+json. Handlers stay thin:
 * they get a parsed `ApiRequest` and return an `ApiResponse`; they never build error bodies.
 */
import middy from '@middy/core';
import type { MiddlewareObj } from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import type { z } from 'zod';
import { AppError, NotFoundError, PayloadTooLargeError, UnauthorizedError, ValidationError, type FieldError } from './errors.ts';
import { logger, metrics, tracer } from './observability.ts';

export const MAX_BODY_BYTES = 256 * 1024;

export interface ApiRequest {
  method: string;
  /** The route as declared (`/v1/connections/{id}`). */
  resource: string;
  path: string;
  params: Record<string, string>;
  query: Record<string, string>;
  headers: Record<string, string>;
  /** Parsed JSON body; undefined when there was none. */
  body: unknown;
  /** Set by the authorizer on every non-public route. */
  tenantId?: string;
  requestId: string;
}

export interface ApiResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export type Operation = (request: ApiRequest) => Promise<ApiResponse>;
/** Operations of one function, keyed `"<METHOD> <resource>"` as in functions/api/routes.ts. */
export type Operations = Record<string, Operation>;

export const json = (status: number, body: unknown, headers: Record<string, string> = {}): ApiResponse => ({ status, body, headers });

export function problemBody(error: AppError, instance?: string) {
  return {
    type: `https://docs.opentrace.dev/problems/${error.code}`,
    title: error.title,
    status: error.status,
    detail: error.message,
    ...(instance ? { instance } : {}),
    ...(error.errors ? { errors: error.errors } : {}),
  };
}

function problemResult(error: AppError, requestId: string, path?: string): APIGatewayProxyResult {
  const headers: Record<string, string> = { 'content-type': 'application/problem+json', 'x-request-id': requestId };
  if ('retryAfterSeconds' in error && typeof error.retryAfterSeconds === 'number') headers['retry-after'] = String(error.retryAfterSeconds);
  return { statusCode: error.status, headers, body: JSON.stringify(problemBody(error, path)) };
}

/** Zod issues as `{ path, message }` with a `body.` / `query.` prefix so a client can point at the field. */
export function fieldErrors(issues: readonly z.core.$ZodIssue[], prefix: string): FieldError[] {
  return issues.map((issue) => ({
    path: [prefix, ...issue.path.map(String)].filter(Boolean).join('.'),
    message: issue.message,
  }));
}

export function parseWith<T>(schema: z.ZodType<T>, value: unknown, where: 'body' | 'query' | 'params'): T {
  const result = schema.safeParse(value ?? (where === 'body' ? undefined : {}));
  if (!result.success) {
    throw new ValidationError(`The request ${where === 'params' ? 'path' : where} is invalid.`, fieldErrors(result.error.issues, where));
  }
  return result.data;
}

export function requireTenant(request: ApiRequest): string {
  if (!request.tenantId) throw new UnauthorizedError();
  return request.tenantId;
}

function lowerCaseHeaders(headers: APIGatewayProxyEvent['headers'] | null): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) if (value !== undefined) out[name.toLowerCase()] = value;
  return out;
}

/** Turns the API Gateway event into an ApiRequest: body size limit, JSON parsing, tenant from the authorizer. */
export function toApiRequest(event: APIGatewayProxyEvent): ApiRequest {
  const headers = lowerCaseHeaders(event.headers);
  const raw = event.body ? (event.isBase64Encoded ? Buffer.from(event.body, 'base64') : Buffer.from(event.body, 'utf8')) : undefined;
  if (raw && raw.length > MAX_BODY_BYTES) {
    throw new PayloadTooLargeError(`The request body is ${raw.length} bytes; the limit is ${MAX_BODY_BYTES} bytes (256 KiB).`);
  }
  let body: unknown;
  if (raw && raw.length > 0) {
    const contentType = headers['content-type'] ?? 'application/json';
    if (!/^application\/(.+\+)?json\b/i.test(contentType)) {
      throw new ValidationError(`Send the body as JSON with "content-type: application/json" (got "${contentType}").`, [
        { path: 'body', message: 'must be JSON' },
      ]);
    }
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new ValidationError('The request body is not valid JSON.', [{ path: 'body', message: 'invalid JSON' }]);
    }
  }
  const tenantId = (event.requestContext?.authorizer as { tenantId?: unknown } | null | undefined)?.tenantId;
  return {
    method: event.httpMethod,
    resource: event.resource,
    path: event.path,
    params: Object.fromEntries(Object.entries(event.pathParameters ?? {}).map(([k, v]) => [k, decodeURIComponent(v ?? '')])),
    query: Object.fromEntries(Object.entries(event.queryStringParameters ?? {}).filter(([, v]) => v !== undefined)) as Record<string, string>,
    headers,
    body,
    ...(typeof tenantId === 'string' && tenantId ? { tenantId } : {}),
    requestId: event.requestContext?.requestId ?? 'local',
  };
}

/**
 * The one error handler: an AppError becomes its problem+json; anything else is logged (without
 * the request body) and becomes a generic 500 that says nothing about internals.
 */
const problemJson = (): MiddlewareObj<APIGatewayProxyEvent, APIGatewayProxyResult> => ({
  onError: async (request) => {
    const requestId = request.event.requestContext?.requestId ?? 'local';
    const error = request.error;
    metrics.addMetric(error instanceof AppError && error.status < 500 ? 'ApiRequestRejected' : 'ApiRequestFailed', MetricUnit.Count, 1);
    if (error instanceof AppError) {
      if (error.status >= 500) logger.warn('upstream failure', { status: error.status, detail: error.message });
      request.response = problemResult(error, requestId, request.event.path);
      return;
    }
    logger.error('unhandled error', { errorName: (error as Error | null)?.name, resource: request.event.resource, method: request.event.httpMethod });
    request.response = problemResult(new AppError(500, 'internal', 'Internal error', `Something went wrong on our side (request ${requestId}).`), requestId);
  },
});

/** Wraps a function's operations into a Lambda handler for API Gateway (REST, proxy integration). */
export function apiHandler(operations: Operations) {
  const dispatch = async (event: APIGatewayProxyEvent, _context: Context): Promise<APIGatewayProxyResult> => {
    const operation = operations[`${event.httpMethod} ${event.resource}`];
    if (!operation) throw new NotFoundError(`No route for ${event.httpMethod} ${event.path}.`);
    const request = toApiRequest(event);
    if (request.tenantId) logger.appendKeys({ tenantId: request.tenantId });
    const response = await operation(request);
    metrics.addMetric('ApiRequest', MetricUnit.Count, 1);
    const headers = { 'x-request-id': request.requestId, ...(response.headers ?? {}) };
    if (response.body === undefined) return { statusCode: response.status, headers, body: '' };
    return { statusCode: response.status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(response.body) };
  };
  return middy<APIGatewayProxyEvent, APIGatewayProxyResult>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(captureLambdaHandler(tracer))
    .use(logMetrics(metrics))
    .use(problemJson())
    .handler(dispatch);
}
