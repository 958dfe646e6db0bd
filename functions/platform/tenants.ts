/**
 * Tenants and their API tokens. A token is stored only as its SHA-256; the plain token is shown
 * once, when created, and never again.
 */
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { TableRef } from './dynamo.ts';
import { keys, sha256Hex } from './keys.ts';
import { randomToken } from './ids.ts';

export const TENANT_ID_PATTERN = /^[a-z0-9][a-z0-9-]{1,62}$/;

export interface Tenant {
  tenantId: string;
  /** Per-tenant ExternalId for the AWS AssumeRole trust policy (confused-deputy defence). */
  externalId: string;
  createdAt: string;
}

export class TenantStore {
  readonly #table: TableRef;

  constructor(table: TableRef) {
    this.#table = table;
  }

  async ensureTenant(tenantId: string, now = new Date()): Promise<Tenant> {
    assertTenantId(tenantId);
    const tenant: Tenant = { tenantId, externalId: `opentrace-${randomToken(18)}`, createdAt: now.toISOString() };
    try {
      await this.#table.client.send(
        new PutCommand({
          TableName: this.#table.tableName,
          Item: { ...keys.tenant(tenantId), kind: 'tenant', ...tenant },
          ConditionExpression: 'attribute_not_exists(PK)',
        }),
      );
      return tenant;
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const existing = await this.getTenant(tenantId);
      if (!existing) throw error;
      return existing;
    }
  }

  async getTenant(tenantId: string): Promise<Tenant | undefined> {
    const { Item } = await this.#table.client.send(new GetCommand({ TableName: this.#table.tableName, Key: keys.tenant(tenantId) }));
    return Item ? { tenantId: Item.tenantId, externalId: Item.externalId, createdAt: Item.createdAt } : undefined;
  }

  /** Creates a new random API token for the tenant; the only time the plain token exists is this return value. */
  async createToken(tenantId: string, label = 'api', now = new Date()): Promise<string> {
    const token = `ot_${randomToken(32)}`;
    await this.registerToken(tenantId, token, label, now);
    return token;
  }

  /**
   * Stores a token chosen elsewhere (the local stack's OPENTRACE_DEV_TOKENS). Registering the same
   * token again for the same tenant is a no-op; for a different tenant it is refused.
   */
  async registerToken(tenantId: string, token: string, label = 'api', now = new Date()): Promise<void> {
    await this.ensureTenant(tenantId, now);
    if (token.length < 4) throw new Error('an API token must be at least 4 characters');
    try {
      await this.#table.client.send(
        new PutCommand({
          TableName: this.#table.tableName,
          Item: { ...keys.apiToken(sha256Hex(token)), kind: 'api-token', tenantId, label, createdAt: now.toISOString() },
          ConditionExpression: 'attribute_not_exists(PK) OR tenantId = :tenantId',
          ExpressionAttributeValues: { ':tenantId': tenantId },
        }),
      );
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) throw new Error('that token is already registered to another tenant', { cause: error });
      throw error;
    }
  }

  /** The tenant a token belongs to, or undefined. */
  async resolveToken(token: string): Promise<string | undefined> {
    if (!token) return undefined;
    const { Item } = await this.#table.client.send(
      new GetCommand({ TableName: this.#table.tableName, Key: keys.apiToken(sha256Hex(token)), ProjectionExpression: 'tenantId' }),
    );
    return typeof Item?.tenantId === 'string' ? Item.tenantId : undefined;
  }
}

export function assertTenantId(tenantId: string): void {
  if (!TENANT_ID_PATTERN.test(tenantId)) {
    throw new Error(`invalid tenant id "${tenantId}": use 2-63 lower-case letters, digits and dashes`);
  }
}
