import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';

/** Where the table is: its name, and the client to reach it. Built once at a handler's edge. */
export interface TableRef {
  client: DynamoDBDocumentClient;
  tableName: string;
}

export type DynamoRequestObserver = (commandName: string, input: unknown) => void;
const requestObservers = new Set<DynamoRequestObserver>();

/**
 * Sees every command any client made by createDocumentClient sends. The test suite uses it to
 * count write requests and to prove no Scan is ever sent; returns a function that stops observing.
 */
export function observeDynamoRequests(observer: DynamoRequestObserver): () => void {
  requestObservers.add(observer);
  return () => requestObservers.delete(observer);
}

export function createDocumentClient(config: DynamoDBClientConfig = {}): DynamoDBDocumentClient {
  // The endpoint comes from AWS_ENDPOINT_URL_DYNAMODB when set (local stack, tests): the SDK reads it itself.
  const client = new DynamoDBClient(config);
  client.middlewareStack.add(
    (next, context) => async (args) => {
      for (const observer of requestObservers) observer(String(context.commandName), args.input);
      return next(args);
    },
    { step: 'initialize', name: 'opentraceRequestObserver' },
  );
  return DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  });
}

export function tableFromEnv(client = createDocumentClient()): TableRef {
  const tableName = process.env.TABLE_NAME;
  if (!tableName) throw new Error('TABLE_NAME is not set');
  return { client, tableName };
}

/** Epoch seconds for the TTL attribute. */
export const ttlEpochSeconds = (date: Date) => Math.floor(date.getTime() / 1000);

/** Every page of a Query, in order, one request each; stop iterating to stop reading. */
export async function* queryPages(
  table: TableRef,
  input: Omit<QueryCommandInput, 'TableName' | 'ExclusiveStartKey'>,
): AsyncGenerator<Record<string, unknown>[]> {
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await table.client.send(
      new QueryCommand({ TableName: table.tableName, ...input, ...(startKey ? { ExclusiveStartKey: startKey } : {}) }),
    );
    yield page.Items ?? [];
    startKey = page.LastEvaluatedKey;
  } while (startKey);
}

/** All items of a Query, every page read. */
export async function queryAll(table: TableRef, input: Omit<QueryCommandInput, 'TableName' | 'ExclusiveStartKey'>): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  for await (const page of queryPages(table, input)) items.push(...page);
  return items;
}
