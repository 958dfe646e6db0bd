/**
 * Sync-run records: one per pass over one connection, with status, progress and stats, so
 * "wait for the sync to complete" has something to watch. Listed per connection newest first.
 */
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { TableRef } from './dynamo.ts';
import { keys } from './keys.ts';
import { ValidationError } from './errors.ts';

export type SyncStatus = 'queued' | 'running' | 'succeeded' | 'failed';
export type SyncTrigger = 'api' | 'schedule' | 'console';
export type SyncMode = 'incremental' | 'full';

export interface SyncProgress {
  phase: string;
  done: number;
  total?: number;
}

export interface SyncStats {
  nodesUpserted: number;
  edgesUpserted: number;
  nodesDeleted: number;
  edgesDeleted?: number;
  requests: number;
  writeRequests?: number;
}

export interface SyncRun {
  id: string;
  tenantId: string;
  connectionId: string;
  status: SyncStatus;
  trigger: SyncTrigger;
  mode: SyncMode;
  startedAt: string;
  finishedAt?: string;
  progress: SyncProgress;
  stats: SyncStats;
  error?: { code: string; message: string };
  /** Things a user should know that did not fail the run (a held-back sweep, skipped files). */
  warnings?: string[];
}

const FIELDS = ['id', 'tenantId', 'connectionId', 'status', 'trigger', 'mode', 'startedAt', 'finishedAt', 'progress', 'stats', 'error', 'warnings'] as const;

function fromItem(item: Record<string, unknown>): SyncRun {
  const run: Record<string, unknown> = {};
  for (const field of FIELDS) if (item[field] !== undefined) run[field] = item[field];
  return run as unknown as SyncRun;
}

export const emptyStats = (): SyncStats => ({ nodesUpserted: 0, edgesUpserted: 0, nodesDeleted: 0, edgesDeleted: 0, requests: 0, writeRequests: 0 });

export class SyncRunStore {
  readonly #table: TableRef;

  constructor(table: TableRef) {
    this.#table = table;
  }

  async create(run: SyncRun): Promise<SyncRun> {
    await this.#table.client.send(
      new PutCommand({
        TableName: this.#table.tableName,
        Item: {
          ...keys.syncRun(run.tenantId, run.id),
          ...keys.syncRunByConnection(run.tenantId, run.connectionId, run.startedAt, run.id),
          kind: 'sync-run',
          ...run,
        },
        ConditionExpression: 'attribute_not_exists(PK)',
      }),
    );
    return run;
  }

  async get(tenantId: string, syncId: string): Promise<SyncRun | undefined> {
    const { Item } = await this.#table.client.send(new GetCommand({ TableName: this.#table.tableName, Key: keys.syncRun(tenantId, syncId) }));
    return Item ? fromItem(Item) : undefined;
  }

  /** Sets the given top-level fields (status, progress, stats, finishedAt, error, warnings). */
  async update(tenantId: string, syncId: string, fields: Partial<Omit<SyncRun, 'id' | 'tenantId' | 'connectionId'>>): Promise<void> {
    const entries = Object.entries(fields).filter(([, value]) => value !== undefined);
    if (entries.length === 0) return;
    await this.#table.client.send(
      new UpdateCommand({
        TableName: this.#table.tableName,
        Key: keys.syncRun(tenantId, syncId),
        UpdateExpression: `SET ${entries.map((_, i) => `#f${i} = :v${i}`).join(', ')}`,
        ExpressionAttributeNames: Object.fromEntries(entries.map(([name], i) => [`#f${i}`, name])),
        ExpressionAttributeValues: Object.fromEntries(entries.map(([, value], i) => [`:v${i}`, value])),
        ConditionExpression: 'attribute_exists(PK)',
      }),
    );
  }

  async listByConnection(
    tenantId: string,
    connectionId: string,
    options: { limit?: number; nextToken?: string } = {},
  ): Promise<{ items: SyncRun[]; nextToken?: string }> {
    const partition = keys.syncRunsOfConnection(tenantId, connectionId).GSI1PK;
    let startKey: Record<string, unknown> | undefined;
    if (options.nextToken) {
      try {
        startKey = JSON.parse(Buffer.from(options.nextToken, 'base64url').toString('utf8'));
      } catch {
        startKey = undefined;
      }
      if (!startKey || startKey.GSI1PK !== partition) {
        throw new ValidationError('nextToken is invalid for this query', [{ path: 'nextToken', message: 'not a token this query returned' }]);
      }
    }
    const page = await this.#table.client.send(
      new QueryCommand({
        TableName: this.#table.tableName,
        IndexName: 'GSI1',
        KeyConditionExpression: 'GSI1PK = :pk',
        ExpressionAttributeValues: { ':pk': partition },
        ScanIndexForward: false,
        Limit: Math.max(1, Math.min(500, options.limit ?? 50)),
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      }),
    );
    const last = page.LastEvaluatedKey;
    return {
      items: (page.Items ?? []).map(fromItem),
      ...(last ? { nextToken: Buffer.from(JSON.stringify(last)).toString('base64url') } : {}),
    };
  }
}
