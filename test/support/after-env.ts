/**
 * Runs in every test file and enforces two suite-wide rules:
 * - no Scan on any path: every DynamoDB command goes through createDocumentClient's observer,
 *   so a Scan anywhere fails the file that sent it;
 * - no stored secret in any log line or API response: process output is watched, and the API
 *   test helpers report every response body (test/support/secrets.ts).
 */
import { afterAll } from '@jest/globals';
import { observeDynamoRequests } from '#platform/dynamo.ts';
import { checkForSecrets, secretLeaks } from './secrets.ts';

const scans: string[] = [];
observeDynamoRequests((commandName) => {
  if (commandName === 'ScanCommand') scans.push(commandName);
});

for (const stream of [process.stdout, process.stderr]) {
  const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    checkForSecrets(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'), 'a log line');
    return write(chunk, ...rest);
  }) as typeof stream.write;
}

for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
  const original = console[method].bind(console);
  console[method] = (...args: unknown[]) => {
    checkForSecrets(args.map((arg) => (typeof arg === 'string' ? arg : JSON.stringify(arg) ?? String(arg))).join(' '), 'a log line');
    original(...args);
  };
}

afterAll(() => {
  if (scans.length > 0) throw new Error(`${scans.length} DynamoDB Scan request(s) were sent; every read must be a GetItem or a Query`);
  const leaks = secretLeaks();
  if (leaks.length > 0) throw new Error(`Secrets leaked:\n${leaks.join('\n')}`);
});
