/**
 * Connection records: what a tenant connected, how it is configured (never the credentials: those
 * live in the secret store under `secretName`), and how its syncs are going. Updates are
 * conditional on `version`, so two concurrent PATCHes cannot silently overwrite each other.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { TableRef } from './dynamo.ts';
import { keys } from './keys.ts';
import { ConflictError, ValidationError } from './errors.ts';

export type ConnectionStatus = 'connected' | 'error' | 'disconnecting';

export interface LastSync {
  id: string;
  status: string;
  finishedAt?: string;
}

export interface Connection {
  id: string;
  tenantId: string;
  type: string;
  name: string;
  status: ConnectionStatus;
  paused: boolean;
  /** Non-secret configuration only (URLs, cluster names, index patterns, selected channels). */
  config: Record<string, unknown>;
  /** Name of this connection's secret in the secret store, if it has credentials. */
  secretName?: string;
  createdAt: string;
  updatedAt: string;
  lastSync?: LastSync;
  lastError?: string;
  /** Minutes between scheduled syncs; the stack-wide default when unset. */
  syncIntervalMinutes?: number;
  /** When the schedule next picks this connection up (absent while paused or disconnecting). */
  nextSyncAt?: string;
  /** Incremental passes since the last full one (a full pass runs every N). */
  incrementalsSinceFull?: number;
  version: number;
}

const RECORD_FIELDS = [
  'id', 'tenantId', 'type', 'name', 'status', 'paused', 'config', 'secretName', 'createdAt', 'updatedAt',
  'lastSync', 'lastError', 'syncIntervalMinutes', 'nextSyncAt', 'incrementalsSinceFull', 'version',
] as const;

function fromItem(item: Record<string, unknown>): Connection {
  const connection: Record<string, unknown> = {};
  for (const field of RECORD_FIELDS) if (item[field] !== undefined) connection[field] = item[field];
  return connection as unknown as Connection;
}

function toItem(connection: Connection): Record<string, unknown> {
  const scheduled = connection.nextSyncAt && !connection.paused && connection.status !== 'disconnecting';
  return {
    ...keys.connection(connection.tenantId, connection.id),
    ...(scheduled ? keys.connectionSchedule(connection.tenantId, connection.id, connection.nextSyncAt!) : {}),
    kind: 'connection',
    ...connection,
  };
}

function decodeStartKey(token: string | undefined, tenantId: string): Record<string, unknown> | undefined {
  if (!token) return undefined;
  try {
    const key = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Record<string, unknown>;
    if (key.PK === keys.connectionPrefix(tenantId).PK && typeof key.SK === 'string' && key.SK.startsWith('CONN#')) return { PK: key.PK, SK: key.SK };
  } catch {
    // invalid below
  }
  throw new ValidationError('nextToken is invalid for this query', [{ path: 'nextToken', message: 'not a token this query returned' }]);
}

export class ConnectionStore {
  readonly #table: TableRef;

  constructor(table: TableRef) {
    this.#table = table;
  }

  async create(connection: Omit<Connection, 'version'>): Promise<Connection> {
    const record: Connection = { ...connection, version: 1 };
    await this.#table.client.send(
      new PutCommand({ TableName: this.#table.tableName, Item: toItem(record), ConditionExpression: 'attribute_not_exists(PK)' }),
    );
    return record;
  }

  async get(tenantId: string, connectionId: string, consistent = false): Promise<Connection | undefined> {
    const { Item } = await this.#table.client.send(
      new GetCommand({ TableName: this.#table.tableName, Key: keys.connection(tenantId, connectionId), ConsistentRead: consistent }),
    );
    return Item ? fromItem(Item) : undefined;
  }

  async list(tenantId: string, options: { type?: string; limit?: number; nextToken?: string } = {}): Promise<{ items: Connection[]; nextToken?: string }> {
    const limit = Math.max(1, Math.min(500, options.limit ?? 50));
    const items: Connection[] = [];
    let startKey = decodeStartKey(options.nextToken, tenantId);
    let lastKey: Record<string, unknown> | undefined;
    do {
      const page = await this.#table.client.send(
        new QueryCommand({
          TableName: this.#table.tableName,
          KeyConditionExpression: 'PK = :pk AND begins_with(SK, :prefix)',
          ExpressionAttributeValues: { ':pk': keys.connectionPrefix(tenantId).PK, ':prefix': 'CONN#', ...(options.type ? { ':type': options.type } : {}) },
          ...(options.type ? { FilterExpression: '#type = :type', ExpressionAttributeNames: { '#type': 'type' } } : {}),
          Limit: limit - items.length,
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      items.push(...(page.Items ?? []).map(fromItem));
      lastKey = page.LastEvaluatedKey;
      startKey = lastKey;
    } while (lastKey && items.length < limit);
    return {
      items,
      ...(lastKey ? { nextToken: Buffer.from(JSON.stringify({ PK: lastKey.PK, SK: lastKey.SK })).toString('base64url') } : {}),
    };
  }

  /**
   * Applies `change` to the current record and writes it if nobody changed it meanwhile; retries
   * a few times on a concurrent update. `change` returns the new record (or undefined to skip).
   */
  async update(
    tenantId: string,
    connectionId: string,
    change: (current: Connection) => Connection | undefined,
  ): Promise<Connection | undefined> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = await this.get(tenantId, connectionId, true);
      if (!current) return undefined;
      const next = change(structuredClone(current));
      if (!next) return current;
      const record: Connection = { ...next, id: current.id, tenantId: current.tenantId, version: current.version + 1 };
      try {
        await this.#table.client.send(
          new PutCommand({
            TableName: this.#table.tableName,
            Item: toItem(record),
            ConditionExpression: 'version = :version',
            ExpressionAttributeValues: { ':version': current.version },
          }),
        );
        return record;
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      }
    }
    throw new ConflictError(`connection ${connectionId} is being changed by another request; try again`);
  }

  async delete(tenantId: string, connectionId: string): Promise<void> {
    await this.#table.client.send(new DeleteCommand({ TableName: this.#table.tableName, Key: keys.connection(tenantId, connectionId) }));
  }
}
