/**
 * Per-connection sync state (cursors, last synced SHAs, ETags), one item per scope (a repository,
 * a cluster, or "connection" for the whole thing), so an interrupted sync resumes where it
 * stopped. Saving a state equal to the stored one writes nothing.
 */
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { stringify } from 'safe-stable-stringify';
import type { TableRef } from './dynamo.ts';
import { deleteQueried } from './batch.ts';
import { keys } from './keys.ts';

export type SyncStateValue = Record<string, unknown>;

export class SyncStateStore {
  readonly #table: TableRef;
  /** What was last read or written per scope, to skip writes that change nothing. */
  readonly #known = new Map<string, string>();

  constructor(table: TableRef) {
    this.#table = table;
  }

  async get(tenantId: string, connectionId: string, scope: string): Promise<SyncStateValue | undefined> {
    const { Item } = await this.#table.client.send(
      new GetCommand({ TableName: this.#table.tableName, Key: keys.syncState(tenantId, connectionId, scope), ConsistentRead: true }),
    );
    const value = Item?.state as SyncStateValue | undefined;
    this.#known.set(`${tenantId}/${connectionId}/${scope}`, stringify(value ?? null) ?? '');
    return value;
  }

  /** Returns whether a write was needed. */
  async put(tenantId: string, connectionId: string, scope: string, state: SyncStateValue): Promise<boolean> {
    const id = `${tenantId}/${connectionId}/${scope}`;
    const serialized = stringify(state) ?? '';
    if (this.#known.get(id) === serialized) return false;
    await this.#table.client.send(
      new PutCommand({
        TableName: this.#table.tableName,
        Item: { ...keys.syncState(tenantId, connectionId, scope), kind: 'sync-state', scope, state, updatedAt: new Date().toISOString() },
      }),
    );
    this.#known.set(id, serialized);
    return true;
  }

  /** Forgets every scope of a connection (disconnect). */
  async deleteAll(tenantId: string, connectionId: string): Promise<void> {
    const { PK, SKPrefix } = keys.syncStatePartition(tenantId, connectionId);
    await deleteQueried(this.#table, {
      KeyConditionExpression: 'PK = :pk AND begins_with(SK, :prefix)',
      ExpressionAttributeValues: { ':pk': PK, ':prefix': SKPrefix },
    });
    for (const id of this.#known.keys()) if (id.startsWith(`${tenantId}/${connectionId}/`)) this.#known.delete(id);
  }
}
