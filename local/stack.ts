/**
 * The whole local stack in one call: data dir → dynalite on disk → dev tokens → dev server.
 * `npm start` (local/start.ts) wraps this with the environment and signals; tests call it directly.
 */
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { createDocumentClient, type TableRef } from '#platform/dynamo.ts';
import { configureRuntime } from '#platform/runtime.ts';
import { assertTenantId, TenantStore } from '#platform/tenants.ts';
import { FileSecretStore } from './file-secret-store.ts';
import { DEFAULT_DATA_DIR, removeStackInfo, writeStackInfo } from './data-dir.ts';
import { startDevServer, type Authorizer, type DevRoute, type HandlerLoader } from './dev-server.ts';
import { DEFAULT_TABLE_NAME, localClientConfig, startLocalDynamo } from './dynamo.ts';
import { LocalStackError } from './errors.ts';
import { startLocalSyncOrchestration } from './state-machine-runner.ts';

export interface LocalStackOptions {
  dataDir?: string;
  /** Default 3000; 0 picks a free port. */
  port?: number;
  host?: string;
  tableName?: string;
  /** Tokens to register, in OPENTRACE_DEV_TOKENS' form: "acme=tok1,globex=tok2". */
  devTokens?: string;
  routes?: readonly DevRoute[];
  loadHandler?: HandlerLoader;
  authorize?: Authorizer;
  log?: (line: string) => void;
  /** false: no sync orchestration (tests of the server alone). Default on. */
  sync?: boolean;
}

export interface LocalStack {
  url: string;
  port: number;
  dataDir: string;
  dynamoEndpoint: string;
  tableName: string;
  /** Tenants whose dev tokens were registered. */
  devTenants: string[];
  warnings: string[];
  /** Stops the server, then dynalite (LevelDB flushes and unlocks); restores the environment. */
  close(): Promise<void>;
}

/** Parses OPENTRACE_DEV_TOKENS: `tenant=token` pairs separated by commas. */
export function parseDevTokens(value: string | undefined): [string, string][] {
  const pairs: [string, string][] = [];
  for (const entry of (value ?? '').split(',').map((part) => part.trim()).filter(Boolean)) {
    const at = entry.indexOf('=');
    const tenantId = at === -1 ? '' : entry.slice(0, at).trim();
    const token = at === -1 ? '' : entry.slice(at + 1).trim();
    if (!tenantId || !token) throw new LocalStackError(`OPENTRACE_DEV_TOKENS: expected tenant=token pairs separated by commas, e.g. "acme=tok1,globex=tok2"; got an entry "${entry.split('=')[0]}=…"`);
    try {
      assertTenantId(tenantId);
    } catch (error) {
      throw new LocalStackError(`OPENTRACE_DEV_TOKENS: ${(error as Error).message}`);
    }
    if (token.length < 4) throw new LocalStackError(`OPENTRACE_DEV_TOKENS: the token for ${tenantId} must be at least 4 characters`);
    pairs.push([tenantId, token]);
  }
  return pairs;
}

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const devTokens = parseDevTokens(options.devTokens);
  const tableName = options.tableName ?? DEFAULT_TABLE_NAME;
  const restoreEnv = setEnv({
    OPENTRACE_DATA_DIR: resolve(options.dataDir ?? DEFAULT_DATA_DIR),
    TABLE_NAME: tableName,
    SECRET_STORE: 'file',
  });

  let dynamo: Awaited<ReturnType<typeof startLocalDynamo>> | undefined;
  let sync: Awaited<ReturnType<typeof startLocalSyncOrchestration>> | undefined;
  try {
    dynamo = await startLocalDynamo({ dataDir: options.dataDir ?? DEFAULT_DATA_DIR, tableName });
    process.env.OPENTRACE_DATA_DIR = dynamo.dataDir;

    // The composition root for everything running in this process (handlers, authorizer): the
    // table pinned to this stack's endpoint, whatever the environment says later (tests restart
    // stacks), and the encrypted-file secret store.
    const table: TableRef = { client: createDocumentClient(localClientConfig(dynamo.endpoint)), tableName };
    configureRuntime({ table, secrets: new FileSecretStore(dynamo.dataDir) });
    const tenants = new TenantStore(table);
    for (const [tenantId, token] of devTokens) {
      try {
        await tenants.registerToken(tenantId, token, 'dev');
      } catch (error) {
        throw new LocalStackError(`OPENTRACE_DEV_TOKENS: cannot register the token for ${tenantId}: ${(error as Error).message}`);
      }
    }

    // Syncs run through the state machine CDK synthesizes (cached under the data dir), on a timer.
    sync = options.sync === false ? undefined : await startLocalSyncOrchestration({ dataDir: dynamo.dataDir, ...(options.log ? { log: options.log } : {}) });

    const server = await startDevServer({
      port: options.port ?? 3000,
      ...(options.host ? { host: options.host } : {}),
      ...(options.routes ? { routes: options.routes } : {}),
      ...(options.loadHandler ? { loadHandler: options.loadHandler } : {}),
      ...(options.authorize ? { authorize: options.authorize } : {}),
      ...(options.log ? { log: options.log } : {}),
    });

    const instanceId = randomUUID();
    const running = dynamo;
    const runningSync = sync;
    await writeStackInfo(running.dataDir, {
      instanceId,
      pid: process.pid,
      url: server.url,
      dynamoEndpoint: running.endpoint,
      tableName,
      startedAt: new Date().toISOString(),
    });

    let closing: Promise<void> | undefined;
    return {
      url: server.url,
      port: server.port,
      dataDir: running.dataDir,
      dynamoEndpoint: running.endpoint,
      tableName,
      devTenants: [...new Set(devTokens.map(([tenantId]) => tenantId))],
      warnings: running.warnings,
      close: () =>
        (closing ??= (async () => {
          try {
            await removeStackInfo(running.dataDir, instanceId);
            await server.close();
            await runningSync?.close();
          } finally {
            await running.stop();
            restoreEnv();
          }
        })()),
    };
  } catch (error) {
    await sync?.close().catch(() => undefined);
    await dynamo?.stop().catch(() => undefined);
    restoreEnv();
    throw error;
  }
}

/** Sets variables the handlers read, unless already set (OPENTRACE_ALLOW_PRIVATE_NETWORKS) or forced. */
function setEnv(forced: Record<string, string>): () => void {
  const defaults: Record<string, string> = { OPENTRACE_ALLOW_PRIVATE_NETWORKS: 'true', POWERTOOLS_DEV: 'true', POWERTOOLS_METRICS_DISABLED: 'true' };
  const previous = new Map<string, string | undefined>();
  for (const [name, value] of Object.entries(defaults)) {
    if (process.env[name] !== undefined) continue;
    previous.set(name, undefined);
    process.env[name] = value;
  }
  for (const [name, value] of Object.entries(forced)) {
    previous.set(name, process.env[name]);
    process.env[name] = value;
  }
  return () => {
    for (const [name, value] of previous) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
}
