/**
 * The local stack's DynamoDB: dynalite on disk under `<dataDir>/dynamodb`, on a free loopback
 * port, with the table created from the same schema the CDK stack deploys (table-schema.ts).
 */
import dynalite from 'dynalite';
import { ClassicLevel } from 'classic-level';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, type TableDescription } from '@aws-sdk/client-dynamodb';
import { createTableInput, GLOBAL_INDEXES } from '#platform/table-schema.ts';
import { ensureDataDir, lockDataDir, type DataDirLock } from './data-dir.ts';
import { LocalStackError } from './errors.ts';

export const DEFAULT_TABLE_NAME = 'opentrace-local';

export interface LocalDynamoOptions {
  dataDir: string;
  tableName?: string;
  /** Point this process's AWS SDK at it (AWS_ENDPOINT_URL_DYNAMODB, dummy credentials if none). Default true. */
  setEnv?: boolean;
  /** How long to wait for a short-lived holder of the data dir (a token CLI run). Default 5 s. */
  lockWaitMs?: number;
  /** Called once if it has to wait for the data dir. */
  onLockWait?: () => void;
}

export interface LocalDynamo {
  endpoint: string;
  tableName: string;
  dataDir: string;
  /** Differences between the table on disk and the current schema (the table is never changed). */
  warnings: string[];
  /** Closes dynalite (LevelDB flushes and unlocks) and restores the environment it changed. */
  stop(): Promise<void>;
}

/** Client settings for the local endpoint alone, whatever the process's AWS environment says. */
export function localClientConfig(endpoint: string) {
  return {
    endpoint,
    region: process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  };
}

function localDynamoClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({ ...localClientConfig(endpoint), maxAttempts: 2 });
}

export async function startLocalDynamo(options: LocalDynamoOptions): Promise<LocalDynamo> {
  const tableName = options.tableName ?? DEFAULT_TABLE_NAME;
  const dataDir = await ensureDataDir(options.dataDir);
  const lock = await lockDataDir(dataDir, { waitMs: options.lockWaitMs ?? 5000, ...(options.onLockWait ? { onWait: options.onLockWait } : {}) });
  let server: Server | undefined;
  try {
    const path = join(dataDir, 'dynamodb');
    await checkOpens(path);
    server = dynalite({ path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    await listen(server);
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const warnings = await ensureTable(endpoint, tableName);
    const restoreEnv = options.setEnv === false ? () => undefined : pointSdkAt(endpoint);
    return { endpoint, tableName, dataDir, warnings, stop: once(() => stop(server!, lock, restoreEnv)) };
  } catch (error) {
    if (server) await closeServer(server).catch(() => undefined);
    await lock.release();
    throw error;
  }
}

async function stop(server: Server, lock: DataDirLock, restoreEnv: () => void): Promise<void> {
  try {
    await closeServer(server);
  } finally {
    restoreEnv();
    await lock.release();
  }
}

/**
 * Opens and closes the LevelDB once before dynalite does: dynalite cannot report a failed open
 * (it throws from its first request instead), so a corrupt or unreadable store is caught here.
 */
async function checkOpens(path: string): Promise<void> {
  const db = new ClassicLevel(path, { valueEncoding: 'json' });
  try {
    await db.open();
  } catch (error) {
    const cause = (error as { cause?: { message?: string } }).cause;
    throw new LocalStackError(`cannot open the local DynamoDB data in ${path}: ${cause?.message ?? (error as Error).message}`);
  }
  await db.close();
}

function listen(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
}

/** Creates the table when missing and waits until it is ACTIVE; answers schema warnings. */
async function ensureTable(endpoint: string, tableName: string): Promise<string[]> {
  const client = localDynamoClient(endpoint);
  try {
    let table = await describe(client, tableName);
    if (!table) {
      try {
        await client.send(new CreateTableCommand(createTableInput(tableName)));
      } catch (error) {
        if ((error as Error).name !== 'ResourceInUseException') throw error;
      }
    }
    const deadline = Date.now() + 10_000;
    for (;;) {
      table = await describe(client, tableName);
      if (table?.TableStatus === 'ACTIVE') break;
      if (Date.now() > deadline) {
        throw new LocalStackError(`the local table ${tableName} is stuck in state ${table?.TableStatus ?? 'missing'}; delete the data directory's dynamodb folder to start afresh`);
      }
      await delay(10);
    }
    return schemaWarnings(table, tableName);
  } finally {
    client.destroy();
  }
}

async function describe(client: DynamoDBClient, tableName: string): Promise<TableDescription | undefined> {
  try {
    return (await client.send(new DescribeTableCommand({ TableName: tableName }))).Table;
  } catch (error) {
    if ((error as Error).name === 'ResourceNotFoundException') return undefined;
    throw error;
  }
}

function schemaWarnings(table: TableDescription, tableName: string): string[] {
  const onDisk = new Set((table.GlobalSecondaryIndexes ?? []).map((index) => index.IndexName));
  const missing = GLOBAL_INDEXES.map((index) => index.name).filter((name) => !onDisk.has(name));
  return missing.length === 0
    ? []
    : [`the local table ${tableName} lacks index(es) ${missing.join(', ')} of the current schema; delete the data directory's dynamodb folder to recreate it`];
}

/** Sets the AWS SDK environment for the local endpoint; answers a function that undoes it. */
function pointSdkAt(endpoint: string): () => void {
  const wanted: Record<string, string> = { AWS_ENDPOINT_URL_DYNAMODB: endpoint };
  if (!process.env.AWS_REGION && !process.env.AWS_DEFAULT_REGION) wanted.AWS_REGION = 'us-east-1';
  // Dynalite checks no signature, but the SDK must sign with something. A configured profile is
  // left alone so that code calling real AWS services (e.g. STS for aws-eks) keeps working.
  if (!process.env.AWS_ACCESS_KEY_ID && !process.env.AWS_PROFILE) {
    wanted.AWS_ACCESS_KEY_ID = 'local';
    wanted.AWS_SECRET_ACCESS_KEY = 'local';
  }
  const previous = new Map(Object.keys(wanted).map((name) => [name, process.env[name]]));
  Object.assign(process.env, wanted);
  return () => {
    for (const [name, value] of previous) {
      if (process.env[name] !== wanted[name]) continue; // someone else changed it since
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let result: Promise<void> | undefined;
  return () => (result ??= fn());
}
