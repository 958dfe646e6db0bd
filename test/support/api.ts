/**
 * The hosted API in a test: the real route table and handlers behind the local dev server (the
 * same code path `npm start` uses), on this file's own dynalite table and an in-memory secret
 * store. Every response body goes through the suite's secret-leak check.
 */
import { startDevServer } from '#local/dev-server.ts';
import { clearAuthorizerCache } from '#api/authorizer.ts';
import { configureRuntime } from '#platform/runtime.ts';
import type { TableRef } from '#platform/dynamo.ts';
import { TenantStore } from '#platform/tenants.ts';
import { configureSyncLauncher } from '#sync/launcher.ts';
import { LocalStateMachineRunner, loadDefinition } from '#local/state-machine-runner.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestTable } from './dynamo.ts';
import { checkForSecrets, MemorySecretStore } from './secrets.ts';

export interface ApiAnswer {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  text: string;
}

export interface TestApi {
  url: string;
  table: TableRef;
  secrets: MemorySecretStore;
  /** The synthesized state machine, run locally: what POST …/sync and DELETE start. */
  runner: LocalStateMachineRunner;
  tokenFor(tenantId: string): Promise<string>;
  call(method: string, path: string, options?: { token?: string | null; body?: unknown; rawBody?: string | Buffer; headers?: Record<string, string> }): Promise<ApiAnswer>;
  close(): Promise<void>;
}

export async function startTestApi(): Promise<TestApi> {
  const table = await createTestTable();
  const secrets = new MemorySecretStore();
  configureRuntime({ table, secrets });
  clearAuthorizerCache();
  // Synthesized once per test run (cached by content hash), then run by aws-local-stepfunctions.
  const definition = await loadDefinition(join(tmpdir(), 'opentrace-test-state-machine'));
  const runner = new LocalStateMachineRunner({ definition, sliceBudgetMs: 5_000 });
  configureSyncLauncher(runner);
  const server = await startDevServer({ port: 0 });
  const tenants = new TenantStore(table);
  const tokens = new Map<string, string>();
  return {
    url: server.url,
    table,
    secrets,
    runner,
    async tokenFor(tenantId) {
      let token = tokens.get(tenantId);
      if (!token) {
        token = await tenants.createToken(tenantId);
        tokens.set(tenantId, token);
      }
      return token;
    },
    async call(method, path, options = {}) {
      const headers: Record<string, string> = { ...(options.headers ?? {}) };
      if (options.token) headers.authorization = `Bearer ${options.token}`;
      let body: string | Buffer | undefined;
      if (options.rawBody !== undefined) body = options.rawBody;
      else if (options.body !== undefined) {
        body = JSON.stringify(options.body);
        headers['content-type'] ??= 'application/json';
      }
      const response = await fetch(`${server.url}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
      const text = await response.text();
      checkForSecrets(text, `the response to ${method} ${path}`);
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      return { status: response.status, headers: response.headers, body: parsed, text };
    },
    close: async () => {
      await server.close();
      await runner.close();
      configureSyncLauncher(undefined);
    },
  };
}
