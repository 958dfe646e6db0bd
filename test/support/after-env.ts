/**
 * Runs in every test file. Storage rule: no Scan on any path. Every DynamoDB command the code
 * under test sends goes through createDocumentClient's observer, so a Scan anywhere in the suite
 * fails the file that sent it.
 */
import { afterAll } from '@jest/globals';
import { observeDynamoRequests } from '#platform/dynamo.ts';

const scans: string[] = [];
observeDynamoRequests((commandName) => {
  if (commandName === 'ScanCommand') scans.push(commandName);
});

afterAll(() => {
  if (scans.length > 0) throw new Error(`${scans.length} DynamoDB Scan request(s) were sent; every read must be a GetItem or a Query`);
});
