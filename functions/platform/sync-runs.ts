/**
 * Sync-run records: one per pass over one connection, with status, progress and stats, so
 * "wait for the sync to complete" has something to watch. Listed per connection newest first.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { deleteQueried } from './batch.ts';
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
  /** Every upstream request, conditional ones answered 304 included. */
  requests: number;
  /**
   * Upstream requests that counted against the provider's rate limit, where the connector can
   * tell (GitHub: every answer but a 304 to a conditional request). Absent: not tracked.
   */
  rateLimitedRequests?: number;
  writeRequests?: number;
}

/** A partitioned run's fan-out: how many partitions it has, and how many finished or failed so far. */
export interface PartitionCounts {
  total: number;
  done: number;
  failed: number;
}

export interface PartitionFailure {
  partition: string;
  code: string;
  message: string;
}

/** Why a run stopped before its connector said done (the connection was paused, is being disconnected, or is gone). */
export type RunStopReason = 'paused' | 'disconnecting' | 'removed';

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
  /** Set once the run's partitions are listed (every run has at least one: `*`). */
  partitions?: PartitionCounts;
  /** The first partition failures (the count is `partitions.failed`). */
  partitionFailures?: PartitionFailure[];
  /** Set by the slice that stopped at a slice boundary; Finalize then sweeps nothing. */
  stopped?: RunStopReason;
}

const FIELDS = ['id', 'tenantId', 'connectionId', 'status', 'trigger', 'mode', 'startedAt', 'finishedAt', 'progress', 'stats', 'error', 'warnings', 'partitions', 'partitionFailures', 'stopped'] as const;

/** What one slice adds to its run (partition slices of one run run concurrently, so every change is atomic). */
export interface SliceRecord {
  stats: Partial<SyncStats>;
  /** The whole progress (a run of one partition: the connector's own numbers). */
  progress?: SyncProgress;
  /** Only the phase (a partitioned run: `done`/`total` count partitions). */
  phase?: string;
  /** This slice finished its partition: `partitions.done` (and, with `countInProgress`, `progress.done`) go up by one. */
  partitionDone?: boolean;
  countInProgress?: boolean;
}

const isConditionFailure = (error: unknown) => error instanceof ConditionalCheckFailedException || (error as Error)?.name === 'ConditionalCheckFailedException';

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

  /** Adds a slice's numbers and progress in one atomic update (no read: concurrent slices cannot lose each other's counts). */
  async recordSlice(tenantId: string, syncId: string, record: SliceRecord): Promise<void> {
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    const sets: string[] = [];
    let i = 0;
    for (const [name, value] of Object.entries(record.stats)) {
      if (typeof value !== 'number') continue;
      names['#stats'] = 'stats';
      values[':zero'] = 0;
      names[`#k${i}`] = name;
      values[`:v${i}`] = value;
      sets.push(`#stats.#k${i} = if_not_exists(#stats.#k${i}, :zero) + :v${i}`);
      i++;
    }
    if (record.progress) {
      names['#progress'] = 'progress';
      values[':progress'] = record.progress;
      sets.push('#progress = :progress');
    } else if (record.phase !== undefined || (record.partitionDone && record.countInProgress)) {
      names['#progress'] = 'progress';
      if (record.phase !== undefined) {
        names['#phase'] = 'phase';
        values[':phase'] = record.phase;
        sets.push('#progress.#phase = :phase');
      }
      if (record.partitionDone && record.countInProgress) {
        names['#done'] = 'done';
        values[':zero'] = 0;
        values[':one'] = 1;
        sets.push('#progress.#done = if_not_exists(#progress.#done, :zero) + :one');
      }
    }
    if (record.partitionDone) {
      names['#partitions'] = 'partitions';
      names['#pdone'] = 'done';
      values[':zero'] = 0;
      values[':one'] = 1;
      sets.push('#partitions.#pdone = if_not_exists(#partitions.#pdone, :zero) + :one');
    }
    if (sets.length === 0) return;
    await this.#table.client.send(
      new UpdateCommand({
        TableName: this.#table.tableName,
        Key: keys.syncRun(tenantId, syncId),
        UpdateExpression: `SET ${sets.join(', ')}`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ConditionExpression: 'attribute_exists(PK)',
      }),
    );
  }

  /**
   * Adds warnings not already on the run, keeping at most `max`. Optimistic: the list only grows
   * while slices run, so "its length is still what we read" proves nobody appended meanwhile.
   */
  async appendWarnings(tenantId: string, syncId: string, warnings: string[], max: number): Promise<void> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const current = (await this.get(tenantId, syncId))?.warnings ?? [];
      const merged = [...current];
      for (const warning of warnings) if (!merged.includes(warning) && merged.length < max) merged.push(warning);
      if (merged.length === current.length) return;
      try {
        await this.#table.client.send(
          new UpdateCommand({
            TableName: this.#table.tableName,
            Key: keys.syncRun(tenantId, syncId),
            UpdateExpression: 'SET #w = :merged',
            ConditionExpression: current.length === 0 ? 'attribute_exists(PK) AND (attribute_not_exists(#w) OR size(#w) = :zero)' : 'size(#w) = :n',
            ExpressionAttributeNames: { '#w': 'warnings' },
            ExpressionAttributeValues: { ':merged': merged, ...(current.length === 0 ? { ':zero': 0 } : { ':n': current.length }) },
          }),
        );
        return;
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
      }
    }
  }

  /** Notes why the run stopped early; the first reason stays. */
  async markStopped(tenantId: string, syncId: string, reason: RunStopReason): Promise<void> {
    await this.#table.client.send(
      new UpdateCommand({
        TableName: this.#table.tableName,
        Key: keys.syncRun(tenantId, syncId),
        UpdateExpression: 'SET #s = if_not_exists(#s, :r)',
        ExpressionAttributeNames: { '#s': 'stopped' },
        ExpressionAttributeValues: { ':r': reason },
        ConditionExpression: 'attribute_exists(PK)',
      }),
    );
  }

  /**
   * Counts one failed partition on a run still in progress and keeps the first `maxKept`
   * failures; false when the run is already finished (its first outcome stays).
   */
  async recordPartitionFailure(tenantId: string, syncId: string, failure: PartitionFailure, maxKept: number): Promise<boolean> {
    const inProgress = '#status IN (:queued, :running)';
    const counters = { '#status': 'status', '#p': 'partitions', '#failed': 'failed' };
    const attempts: { update: string; condition: string; names: Record<string, string>; values: Record<string, unknown> }[] = [
      {
        update: 'SET #p.#failed = if_not_exists(#p.#failed, :zero) + :one, #f = list_append(if_not_exists(#f, :empty), :failure)',
        condition: `${inProgress} AND attribute_exists(#p) AND (attribute_not_exists(#f) OR size(#f) < :max)`,
        names: { ...counters, '#f': 'partitionFailures' },
        values: { ':zero': 0, ':one': 1, ':empty': [], ':failure': [failure], ':max': maxKept },
      },
      // Enough failures kept: count this one.
      { update: 'SET #p.#failed = if_not_exists(#p.#failed, :zero) + :one', condition: `${inProgress} AND attribute_exists(#p)`, names: counters, values: { ':zero': 0, ':one': 1 } },
      // No counters yet (never expected: ListPartitions sets them): start them with this failure.
      {
        update: 'SET #p = :fresh, #f = :failures',
        condition: `${inProgress} AND attribute_not_exists(#p)`,
        names: { '#status': 'status', '#p': 'partitions', '#f': 'partitionFailures' },
        values: { ':fresh': { total: 0, done: 0, failed: 1 }, ':failures': [failure] },
      },
    ];
    for (const attempt of attempts) {
      const names = attempt.names;
      try {
        await this.#table.client.send(
          new UpdateCommand({
            TableName: this.#table.tableName,
            Key: keys.syncRun(tenantId, syncId),
            UpdateExpression: attempt.update,
            ConditionExpression: attempt.condition,
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: { ':queued': 'queued', ':running': 'running', ...attempt.values },
          }),
        );
        return true;
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
      }
    }
    return false;
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

  /** Forgets a removed connection's runs (their seen-set chunks expire by TTL on their own). */
  async deleteAllOf(tenantId: string, connectionId: string): Promise<void> {
    await deleteQueried(this.#table, {
      IndexName: 'GSI1',
      KeyConditionExpression: 'GSI1PK = :pk',
      ExpressionAttributeValues: { ':pk': keys.syncRunsOfConnection(tenantId, connectionId).GSI1PK },
    });
  }
}
