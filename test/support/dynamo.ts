import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { randomBytes } from 'node:crypto';
import { createDocumentClient, observeDynamoRequests, type TableRef } from '#platform/dynamo.ts';
import { createTableInput } from '#platform/table-schema.ts';

/** A fresh table on the suite's dynalite, created from the same schema the CDK stack deploys. */
export async function createTestTable(): Promise<TableRef> {
  const client = createDocumentClient();
  const tableName = `test-${randomBytes(6).toString('hex')}`;
  await client.send(new CreateTableCommand(createTableInput(tableName)));
  return { client, tableName };
}

/** Counts DynamoDB commands by name while `fn` runs. */
export async function countRequests<T>(fn: () => Promise<T>): Promise<{ result: T; counts: Record<string, number> }> {
  const counts: Record<string, number> = {};
  const stop = observeDynamoRequests((name) => {
    counts[name] = (counts[name] ?? 0) + 1;
  });
  try {
    return { result: await fn(), counts };
  } finally {
    stop();
  }
}

export const WRITE_COMMANDS = ['PutCommand', 'UpdateCommand', 'DeleteCommand', 'BatchWriteCommand', 'PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand', 'BatchWriteItemCommand'];
export const writesIn = (counts: Record<string, number>) => WRITE_COMMANDS.reduce((sum, name) => sum + (counts[name] ?? 0), 0);
