/** GET /v1/openapi.json: generated from the route table and its zod schemas, never hand-kept. */
import { z } from 'zod';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { ROUTES } from './routes.ts';

const problem = {
  description: 'RFC 9457 problem details',
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
};

const ERROR_RESPONSES: Record<string, string> = {
  '400': 'Malformed or invalid input (with errors[].path)',
  '401': 'Missing or unknown API token',
  '404': "Unknown, or another tenant's",
  '409': 'Conflict (a sync already running, a concurrent change)',
  '413': 'Body over 256 KiB',
  '422': 'Well formed, but rejected by the upstream live check',
  '429': 'Throttled',
  '502': 'Upstream failed',
  '504': 'Upstream timed out',
};

export function buildOpenApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of ROUTES) {
    const parameters: unknown[] = [...route.path.matchAll(/\{(\w+)\}/g)].map(([, name]) => ({ name, in: 'path', required: true, schema: { type: 'string' } }));
    if (route.query) {
      const schema = z.toJSONSchema(route.query, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, property] of Object.entries(schema.properties ?? {})) {
        parameters.push({ name, in: 'query', required: schema.required?.includes(name) ?? false, schema: property });
      }
    }
    const operation: Record<string, unknown> = {
      operationId: `${route.method.toLowerCase()}${route.path.replace(/[{}]/g, '').replace(/\/(\w)/g, (_, c: string) => c.toUpperCase()).replace(/[^A-Za-z0-9]/g, '')}`,
      summary: route.summary,
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(route.body
        ? { requestBody: { required: true, content: { 'application/json': { schema: z.toJSONSchema(route.body, { io: 'input', unrepresentable: 'any' }) } } } }
        : {}),
      ...(route.public ? { security: [] } : {}),
      responses: {
        [String(route.success.status)]: { description: route.success.description, content: { 'application/json': { schema: { type: 'object' } } } },
        ...Object.fromEntries(Object.entries(ERROR_RESPONSES).map(([status, description]) => [status, { ...problem, description }])),
      },
    };
    paths[route.path] = { ...(paths[route.path] ?? {}), [route.method.toLowerCase()]: operation };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'OpenTrace integrations API', version: '1.0.0', description: 'Connect tools, sync them into one knowledge graph, and query it.' },
    servers: [{ url: '/' }],
    security: [{ bearerAuth: [] }],
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'An OpenTrace API token' } },
      schemas: {
        Problem: {
          type: 'object',
          required: ['type', 'title', 'status', 'detail'],
          properties: {
            type: { type: 'string' },
            title: { type: 'string' },
            status: { type: 'integer' },
            detail: { type: 'string' },
            errors: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
          },
        },
      },
    },
    paths,
  };
}

let cached: string | undefined;

export const handler = async (): Promise<APIGatewayProxyResult> => {
  cached ??= JSON.stringify(buildOpenApiDocument());
  return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: cached };
};
