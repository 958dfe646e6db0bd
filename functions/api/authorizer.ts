/**
 * API Gateway REQUEST authorizer: the bearer token decides the tenant; no body or query field
 * can. Tokens are looked up by their SHA-256 and the answer cached in memory briefly (API Gateway
 * also caches the policy per Authorization header). The local dev server calls `resolveTenant`.
 */
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { TenantStore } from '#platform/tenants.ts';
import { runtime } from '#platform/runtime.ts';
import { sha256Hex } from '#platform/keys.ts';

const CACHE_MS = 60_000;
const cache = new Map<string, { tenantId: string | undefined; until: number }>();

export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}

export async function resolveTenant(authorization: string | undefined): Promise<string | undefined> {
  const token = bearerToken(authorization);
  if (!token || token.length > 512) return undefined;
  const key = sha256Hex(token);
  const now = Date.now();
  const cached = cache.get(key);
  if (cached && cached.until > now) return cached.tenantId;
  const tenantId = await new TenantStore(runtime().table).resolveToken(token);
  if (cache.size > 10_000) cache.clear();
  cache.set(key, { tenantId, until: now + CACHE_MS });
  return tenantId;
}

/** Forgets cached lookups (tests that revoke tokens). */
export const clearAuthorizerCache = () => cache.clear();

export const handler = async (event: APIGatewayRequestAuthorizerEvent): Promise<APIGatewayAuthorizerResult> => {
  const header = Object.entries(event.headers ?? {}).find(([name]) => name.toLowerCase() === 'authorization')?.[1];
  const tenantId = await resolveTenant(header);
  // API Gateway answers 401 (as problem+json, see lib/api.ts gateway responses) for this exact message.
  if (!tenantId) throw new Error('Unauthorized');
  // The policy is cached per token and reused on every route, so it allows the whole API stage.
  const [arnPrefix, stage] = event.methodArn.split('/');
  return {
    principalId: tenantId,
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: `${arnPrefix}/${stage}/*` }],
    },
    context: { tenantId },
  };
};
