/**
 * Benchmark plumbing: a dynalite server in its own process (so the database and the code being
 * measured do not share one core), a fresh table, and figures printed one per line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { createDocumentClient, type TableRef } from '#platform/dynamo.ts';
import { createTableInput } from '#platform/table-schema.ts';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface DynaliteProcess {
  endpoint: string;
  stop(): Promise<void>;
}

export async function startDynaliteProcess(): Promise<DynaliteProcess> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, ['node_modules/dynalite/cli.js', '--port', String(port), '--createTableMs', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.stdout!.on('data', (data: Buffer) => {
      if (/listening/i.test(data.toString())) resolve();
    });
  });
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID ??= 'bench';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'bench';
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill();
      }),
  };
}

export async function createBenchTable(endpoint: string, name: string): Promise<TableRef> {
  const client = createDocumentClient({ endpoint, maxAttempts: 10 });
  await client.send(new CreateTableCommand(createTableInput(name)));
  return { client, tableName: name };
}

export function figure(label: string, value: string | number, unit = ''): void {
  console.log(`${label.padEnd(58)} ${typeof value === 'number' ? value.toLocaleString('en-US', { maximumFractionDigits: 1 }) : value}${unit ? ` ${unit}` : ''}`);
}

export const peakRssMb = () => process.resourceUsage().maxRSS / 1024;
