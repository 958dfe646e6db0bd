import { beforeAll, describe, expect, it } from '@jest/globals';
import { TenantStore } from '#platform/tenants.ts';
import { createTestTable } from '../support/dynamo.ts';
import type { TableRef } from '#platform/dynamo.ts';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { keys, sha256Hex } from '#platform/keys.ts';

let table: TableRef;
let tenants: TenantStore;
beforeAll(async () => {
  table = await createTestTable();
  tenants = new TenantStore(table);
});

describe('TenantStore', () => {
  it('resolves a created token to its tenant and stores only the token hash', async () => {
    const token = await tenants.createToken('acme');
    expect(await tenants.resolveToken(token)).toBe('acme');
    const { Item } = await table.client.send(new GetCommand({ TableName: table.tableName, Key: keys.apiToken(sha256Hex(token)) }));
    expect(JSON.stringify(Item)).not.toContain(token);
  });

  it('does not resolve an unknown token', async () => {
    expect(await tenants.resolveToken('ot_not-a-real-token')).toBeUndefined();
  });

  it('refuses to register one token for two tenants', async () => {
    await tenants.registerToken('acme', 'shared-dev-token');
    await tenants.registerToken('acme', 'shared-dev-token');
    await expect(tenants.registerToken('globex', 'shared-dev-token')).rejects.toThrow(/another tenant/);
    expect(await tenants.resolveToken('shared-dev-token')).toBe('acme');
  });

  it('gives each tenant a stable external id', async () => {
    const first = await tenants.ensureTenant('initech');
    const again = await tenants.ensureTenant('initech');
    expect(again.externalId).toBe(first.externalId);
    expect((await tenants.ensureTenant('umbrella')).externalId).not.toBe(first.externalId);
  });

  it('rejects tenant ids that could break key prefixes', async () => {
    await expect(tenants.ensureTenant('acme#evil')).rejects.toThrow(/invalid tenant id/);
  });
});
