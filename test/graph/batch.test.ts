import { describe, expect, it } from '@jest/globals';
import { mockClient } from 'aws-sdk-client-mock';
import { BatchWriteCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { batchWriteAll } from '#platform/batch.ts';
import { GraphWriter } from '#graph/writer.ts';
import { createDocumentClient } from '#platform/dynamo.ts';

const put = (id: number) => ({ PutRequest: { Item: { PK: `p${id}`, SK: 's' } } });

describe('batchWriteAll', () => {
  it('retries UnprocessedItems until DynamoDB takes them all', async () => {
    const client = DynamoDBDocumentClient.from(new DynamoDBClient({}));
    const mock = mockClient(client);
    mock
      .on(BatchWriteCommand)
      .resolvesOnce({ UnprocessedItems: { t: [put(1), put(2)] } })
      .resolvesOnce({ UnprocessedItems: { t: [put(2)] } })
      .resolves({ UnprocessedItems: {} });
    let requests = 0;
    await batchWriteAll({ client, tableName: 't' }, [put(1), put(2), put(3)], { sleep: async () => undefined, onRequest: () => requests++ });
    expect(requests).toBe(3);
    expect(mock.commandCalls(BatchWriteCommand).at(-1)!.args[0].input.RequestItems!.t).toEqual([put(2)]);
  });

  it('gives up with a clear error when items stay unprocessed', async () => {
    const client = DynamoDBDocumentClient.from(new DynamoDBClient({}));
    mockClient(client).on(BatchWriteCommand).resolves({ UnprocessedItems: { t: [put(1)] } });
    await expect(batchWriteAll({ client, tableName: 't' }, [put(1)], { sleep: async () => undefined, maxAttempts: 3 })).rejects.toThrow(
      /left 1 writes unprocessed after 3 attempts/,
    );
  });
});

describe('GraphWriter background flushes', () => {
  it('surfaces a failed background write on the next call instead of losing it', async () => {
    const writer = new GraphWriter({ client: createDocumentClient({ maxAttempts: 1 }), tableName: 'no-such-table' }, 'acme', 'conn_a', { flushAt: 2 });
    const attempt = async () => {
      for (let i = 0; i < 10; i++) await writer.upsertNode({ id: `n${i}`, type: 'file', name: `f${i}` });
      await writer.flush();
    };
    await expect(attempt()).rejects.toThrow(/non-existent table|not found|ResourceNotFound/i);
  });
});
