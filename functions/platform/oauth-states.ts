/**
 * OAuth `state`: 256 random bits, bound to the tenant, the integration type and the return URL,
 * single-use (consumed by a conditional delete) and valid for 10 minutes. The state string the
 * provider carries is `<tenantId>.<nonce>`; only the nonce's hash is stored.
 */
import { DeleteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { TableRef } from './dynamo.ts';
import { ttlEpochSeconds } from './dynamo.ts';
import { keys, sha256Hex } from './keys.ts';
import { randomToken } from './ids.ts';
import { TENANT_ID_PATTERN } from './tenants.ts';

export const OAUTH_STATE_TTL_MS = 10 * 60 * 1000;

export interface OAuthStateData {
  type: string;
  returnUrl?: string;
  /** PKCE code verifier; kept server-side, never sent to the browser. */
  codeVerifier?: string;
  /** Provider-specific extras (GitLab base URL, Slack channels). */
  extra?: Record<string, unknown>;
}

export interface ConsumedOAuthState extends OAuthStateData {
  tenantId: string;
  createdAt: string;
}

export class OAuthStateStore {
  readonly #table: TableRef;
  readonly #now: () => Date;

  constructor(table: TableRef, now: () => Date = () => new Date()) {
    this.#table = table;
    this.#now = now;
  }

  async create(tenantId: string, data: OAuthStateData): Promise<{ state: string; expiresAt: string }> {
    const nonce = randomToken(32);
    const now = this.#now();
    const expiresAt = new Date(now.getTime() + OAUTH_STATE_TTL_MS);
    await this.#table.client.send(
      new PutCommand({
        TableName: this.#table.tableName,
        Item: {
          ...keys.oauthState(tenantId, sha256Hex(nonce)),
          kind: 'oauth-state',
          ...data,
          tenantId,
          createdAt: now.toISOString(),
          expiresAt: expiresAt.toISOString(),
          ttl: ttlEpochSeconds(expiresAt),
        },
        ConditionExpression: 'attribute_not_exists(PK)',
      }),
    );
    return { state: `${tenantId}.${nonce}`, expiresAt: expiresAt.toISOString() };
  }

  /**
   * Consumes a state exactly once. Undefined for a malformed, unknown, reused or expired state,
   * or one issued for another integration type: the caller answers 400 for all of them alike.
   */
  async consume(state: string, type: string): Promise<ConsumedOAuthState | undefined> {
    const dot = state.indexOf('.');
    if (dot < 0 || state.length > 200) return undefined;
    const tenantId = state.slice(0, dot);
    const nonce = state.slice(dot + 1);
    if (!TENANT_ID_PATTERN.test(tenantId) || !/^[A-Za-z0-9_-]{43}$/.test(nonce)) return undefined;
    let Attributes: Record<string, unknown> | undefined;
    try {
      ({ Attributes } = await this.#table.client.send(
        new DeleteCommand({
          TableName: this.#table.tableName,
          Key: keys.oauthState(tenantId, sha256Hex(nonce)),
          ConditionExpression: 'attribute_exists(PK)',
          ReturnValues: 'ALL_OLD',
        }),
      ));
    } catch (error) {
      if ((error as Error).name === 'ConditionalCheckFailedException') return undefined;
      throw error;
    }
    if (!Attributes) return undefined;
    if (String(Attributes.expiresAt) <= this.#now().toISOString() || Attributes.type !== type) return undefined;
    const consumed: ConsumedOAuthState = { tenantId, type: String(Attributes.type), createdAt: String(Attributes.createdAt) };
    if (typeof Attributes.returnUrl === 'string') consumed.returnUrl = Attributes.returnUrl;
    if (typeof Attributes.codeVerifier === 'string') consumed.codeVerifier = Attributes.codeVerifier;
    if (Attributes.extra && typeof Attributes.extra === 'object') consumed.extra = Attributes.extra as Record<string, unknown>;
    return consumed;
  }
}
