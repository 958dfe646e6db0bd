/** GET /v1/integrations and GET /v1/integrations/{type}: what can be connected, and how. */
import { z } from 'zod';
import { allConnectors } from '#connectors/registry.ts';
import type { Connector } from '#connectors/types.ts';
import { apiHandler, json, parseWith, requireTenant, type Operations } from '#platform/http.ts';
import { NotFoundError } from '#platform/errors.ts';
import { runtime } from '#platform/runtime.ts';
import { TenantStore } from '#platform/tenants.ts';
import { integrationTypeParams } from './schemas.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function entry(connector: Connector<any, any>) {
  return {
    type: connector.type,
    title: connector.title,
    auth: connector.auth,
    provides: connector.provides,
    configSchema: z.toJSONSchema(connector.configSchema, { io: 'input', unrepresentable: 'any' }),
  };
}

export const operations: Operations = {
  'GET /v1/integrations': async (request) => {
    requireTenant(request);
    return json(200, { items: allConnectors().map(entry) });
  },
  'GET /v1/integrations/{type}': async (request) => {
    const tenantId = requireTenant(request);
    const { type } = parseWith(integrationTypeParams, request.params, 'params');
    const connector = allConnectors().find((c) => c.type === type);
    if (!connector) throw new NotFoundError(`There is no integration "${type}". GET /v1/integrations lists them.`);
    const body: Record<string, unknown> = entry(connector);
    if (connector.setup) {
      const tenant = await new TenantStore(runtime().table).ensureTenant(tenantId);
      body.setup = connector.setup({ tenantId, externalId: tenant.externalId });
    }
    return json(200, body);
  },
};

export const handler = apiHandler(operations);
