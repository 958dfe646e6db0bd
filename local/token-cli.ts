/**
 * `npm run token -- create --tenant acme [--label ci]`: creates an API token for a tenant of
 * the local stack and prints it, alone, on stdout (hints go to stderr).
 *
 * Works whether or not `npm start` is running. LevelDB lets one process open the data dir at a
 * time, so when a live stack has written its DynamoDB endpoint to `<dataDir>/local-stack.json`
 * and that endpoint answers, the token is written through it; otherwise the CLI opens the data
 * dir itself (waiting briefly if another short-lived process holds it).
 */
import { parseArgs } from 'node:util';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createDocumentClient } from '#platform/dynamo.ts';
import { assertTenantId, TenantStore } from '#platform/tenants.ts';
import { DEFAULT_DATA_DIR, ensureDataDir, inUseMessage, isAlive, readStackInfo, type StackInfo } from './data-dir.ts';
import { DEFAULT_TABLE_NAME, localClientConfig, startLocalDynamo, type LocalDynamo } from './dynamo.ts';
import { DataDirInUseError, LocalStackError } from './errors.ts';

export const USAGE = `usage: npm run token -- create --tenant <tenant-id> [--label <label>]

Creates an API token for a tenant of the local stack and prints it on stdout.
The tenant is created if it does not exist. Data: $OPENTRACE_DATA_DIR (default ${DEFAULT_DATA_DIR}).`;

export interface TokenCliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

const defaultIo: TokenCliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
};

/** Runs the CLI; answers the exit code (0 ok, 1 failure, 2 bad arguments). */
export async function runTokenCli(argv: readonly string[], io: TokenCliIo = defaultIo): Promise<number> {
  const usageError = (message: string) => {
    io.stderr(`${message}\n\n${USAGE}\n`);
    return 2;
  };

  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { tenant: { type: 'string' }, label: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    return usageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length === 0) return usageError('missing command: create');
  if (positionals[0] !== 'create' || positionals.length > 1) return usageError(`unknown command: ${positionals.join(' ')}`);
  if (!values.tenant) return usageError('missing --tenant <tenant-id>');
  try {
    assertTenantId(values.tenant);
  } catch (error) {
    return usageError((error as Error).message);
  }
  const label = values.label ?? 'cli';

  let dynamo: LocalDynamo | undefined;
  try {
    const dataDir = await ensureDataDir(io.env.OPENTRACE_DATA_DIR || DEFAULT_DATA_DIR);
    let target = await runningStack(dataDir);
    if (!target) {
      try {
        dynamo = await startLocalDynamo({
          dataDir,
          setEnv: false,
          lockWaitMs: 5000,
          onLockWait: () => io.stderr(`another process has ${dataDir} open; waiting up to 5 s for it…\n`),
        });
        target = { endpoint: dynamo.endpoint, tableName: dynamo.tableName, via: `the data directory ${dataDir}` };
      } catch (error) {
        if (!(error instanceof DataDirInUseError)) throw error;
        // A stack may have started meanwhile: ask it once more before giving up.
        target = await runningStack(dataDir);
        if (!target) throw new LocalStackError(`${inUseMessage(dataDir, await readStackInfo(dataDir))} (its endpoint in local-stack.json does not answer)`);
      }
    }

    const client = createDocumentClient(localClientConfig(target.endpoint));
    let token: string;
    try {
      token = await new TenantStore({ client, tableName: target.tableName }).createToken(values.tenant, label);
    } finally {
      client.destroy();
    }
    io.stdout(`${token}\n`);
    io.stderr(`created a token for tenant ${values.tenant} via ${target.via}; send it as "Authorization: Bearer <token>"\n`);
    return 0;
  } catch (error) {
    if (error instanceof LocalStackError) {
      io.stderr(`${error.message}\n`);
      return error.exitCode;
    }
    io.stderr(`creating the token failed: ${(error as Error)?.stack ?? String(error)}\n`);
    return 1;
  } finally {
    await dynamo?.stop();
  }
}

interface Target {
  endpoint: string;
  tableName: string;
  via: string;
}

/** The running stack of this data dir, if its info file names a live process whose endpoint answers. */
async function runningStack(dataDir: string): Promise<Target | undefined> {
  const info = await readStackInfo(dataDir);
  if (!info || !isAlive(info.pid) || !(await answers(info))) return undefined;
  return { endpoint: info.dynamoEndpoint, tableName: info.tableName || DEFAULT_TABLE_NAME, via: `the running local stack (${info.url})` };
}

async function answers(info: StackInfo): Promise<boolean> {
  const client = new DynamoDBClient({ ...localClientConfig(info.dynamoEndpoint), maxAttempts: 1, requestHandler: { connectionTimeout: 1000, requestTimeout: 2000 } });
  try {
    await client.send(new DescribeTableCommand({ TableName: info.tableName }));
    return true;
  } catch {
    return false;
  } finally {
    client.destroy();
  }
}

if (import.meta.main) {
  process.exitCode = await runTokenCli(process.argv.slice(2));
}
