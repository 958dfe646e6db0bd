import type { APIGatewayProxyResult } from 'aws-lambda';

/** GET /v1/health: no auth, no dependencies; says the API is up. */
export const handler = async (): Promise<APIGatewayProxyResult> => ({
  statusCode: 200,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ status: 'ok' }),
});
