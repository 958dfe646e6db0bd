/**
 * Self-hosted OAuth instances (GitLab self-managed): a tenant registers its instance's base URL
 * and the OAuth application it created there. The record (base URL, client id) is one table item
 * per tenant, provider and host (keys.oauthInstance); the client secret goes to the secret store
 * only, under `oauthapp-<provider>-<host>`.
 */
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { TableRef } from '#platform/dynamo.ts';
import { keys } from '#platform/keys.ts';

export interface OAuthInstance {
  provider: string;
  /** `host[:port]`, lower case: the record's key. */
  host: string;
  /** The instance's base URL as registered (a path is kept: GitLab under a relative URL root). */
  baseUrl: string;
  clientId: string;
  /** The client secret's name in the secret store. */
  secretName: string;
  createdAt: string;
  updatedAt: string;
}

/** `https://GitLab.Acme.dev/gitlab/` → `https://gitlab.acme.dev/gitlab`: no trailing slash, no query or fragment. */
export function normalizeBaseUrl(raw: string): string {
  const url = new URL(raw);
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

export function instanceHost(baseUrl: string): string {
  return new URL(baseUrl).host.toLowerCase();
}

export function instanceSecretName(provider: string, host: string): string {
  return `oauthapp-${provider}-${host.replace(/[^a-z0-9.-]/g, '_')}`.slice(0, 128);
}

export class OAuthInstanceStore {
  readonly #table: TableRef;

  constructor(table: TableRef) {
    this.#table = table;
  }

  async put(tenantId: string, instance: OAuthInstance): Promise<void> {
    await this.#table.client.send(
      new PutCommand({
        TableName: this.#table.tableName,
        Item: { ...keys.oauthInstance(tenantId, instance.provider, instance.host), kind: 'oauth-instance', tenantId, ...instance },
      }),
    );
  }

  async get(tenantId: string, provider: string, host: string): Promise<OAuthInstance | undefined> {
    const { Item } = await this.#table.client.send(
      new GetCommand({ TableName: this.#table.tableName, Key: keys.oauthInstance(tenantId, provider, host), ConsistentRead: true }),
    );
    if (!Item) return undefined;
    return {
      provider: String(Item.provider),
      host: String(Item.host),
      baseUrl: String(Item.baseUrl),
      clientId: String(Item.clientId),
      secretName: String(Item.secretName),
      createdAt: String(Item.createdAt),
      updatedAt: String(Item.updatedAt),
    };
  }
}
