/**
 * Batched DynamoDB reads and writes at bounded parallelism. BatchWriteItem takes 25 items,
 * BatchGetItem 100 keys; both may hand back part of a batch unprocessed under load, which is
 * retried with exponential backoff and full jitter until done or out of attempts.
 */
import { BatchGetCommand, BatchWriteCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import pLimit from 'p-limit';
import { queryPages, type TableRef } from './dynamo.ts';

type Key = Record<string, unknown>;
export type WriteRequest = { PutRequest: { Item: Record<string, unknown> } } | { DeleteRequest: { Key: Key } };

export interface BatchOptions {
  concurrency?: number;
  maxAttempts?: number;
  /** Counts every request sent, retries included. */
  onRequest?: (kind: 'read' | 'write') => void;
  sleep?: (ms: number) => Promise<void>;
}

const WRITE_BATCH = 25;
const READ_BATCH = 100;
const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const backoffMs = (attempt: number) => Math.random() * Math.min(2000, 50 * 2 ** attempt);

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export async function batchWriteAll(table: TableRef, requests: readonly WriteRequest[], options: BatchOptions = {}): Promise<void> {
  if (requests.length === 0) return;
  const { concurrency = 8, maxAttempts = 8, onRequest, sleep = defaultSleep } = options;
  const limit = pLimit(concurrency);
  await Promise.all(
    chunk(requests, WRITE_BATCH).map((batch) =>
      limit(async () => {
        let pending: WriteRequest[] = batch;
        for (let attempt = 0; pending.length > 0; attempt++) {
          if (attempt >= maxAttempts) throw new Error(`DynamoDB left ${pending.length} writes unprocessed after ${maxAttempts} attempts`);
          if (attempt > 0) await sleep(backoffMs(attempt));
          onRequest?.('write');
          const { UnprocessedItems } = await table.client.send(
            new BatchWriteCommand({ RequestItems: { [table.tableName]: pending as never } }),
          );
          pending = (UnprocessedItems?.[table.tableName] ?? []) as WriteRequest[];
        }
      }),
    ),
  );
}

export async function batchGetAll(
  table: TableRef,
  keys: readonly Key[],
  projection: string | undefined,
  options: BatchOptions = {},
): Promise<Record<string, unknown>[]> {
  if (keys.length === 0) return [];
  const { concurrency = 8, maxAttempts = 8, onRequest, sleep = defaultSleep } = options;
  const limit = pLimit(concurrency);
  const found: Record<string, unknown>[] = [];
  await Promise.all(
    chunk(keys, READ_BATCH).map((batch) =>
      limit(async () => {
        let pending: Key[] = batch;
        for (let attempt = 0; pending.length > 0; attempt++) {
          if (attempt >= maxAttempts) throw new Error(`DynamoDB left ${pending.length} reads unprocessed after ${maxAttempts} attempts`);
          if (attempt > 0) await sleep(backoffMs(attempt));
          onRequest?.('read');
          const { Responses, UnprocessedKeys } = await table.client.send(
            new BatchGetCommand({
              RequestItems: {
                [table.tableName]: {
                  Keys: pending,
                  ...(projection ? { ProjectionExpression: projection } : {}),
                },
              },
            }),
          );
          found.push(...(Responses?.[table.tableName] ?? []));
          pending = (UnprocessedKeys?.[table.tableName]?.Keys ?? []) as Key[];
        }
      }),
    ),
  );
  return found;
}

/** Deletes every item a Query finds (of the table or an index), page by page as it reads. */
export async function deleteQueried(table: TableRef, query: Omit<QueryCommandInput, 'TableName' | 'ExclusiveStartKey' | 'ProjectionExpression'>): Promise<void> {
  for await (const page of queryPages(table, { ...query, ProjectionExpression: 'PK, SK' })) {
    await batchWriteAll(table, page.map((item) => ({ DeleteRequest: { Key: { PK: item.PK, SK: item.SK } } })));
  }
}
