/**
 * The local stack end to end: dynalite on disk in a temp data dir, the dev server on a random
 * port, the real token authorizer (test routes injected next to the real ones), restarts on the
 * same data dir, and the start-up failures `npm start` must explain in one line.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { clearAuthorizerCache } from '#api/authorizer.ts';
import { startLocalStack, type LocalStack, type LocalStackOptions } from '#local/stack.ts';
import { DataDirInUseError, LocalStackError, PortInUseError } from '#local/errors.ts';
import { runTokenCli } from '#local/token-cli.ts';
import { occupyPort, REPO_ROOT, removeTempDirs, spawnNode, tempDir, TEST_ROUTES, testHandlerLoader, waitForOutput } from './support.ts';

const started: LocalStack[] = [];
async function start(options: LocalStackOptions): Promise<LocalStack> {
  const stack = await startLocalStack({ port: 0, routes: TEST_ROUTES, loadHandler: testHandlerLoader, ...options });
  started.push(stack);
  return stack;
}
afterEach(async () => {
  await Promise.all(started.splice(0).map((stack) => stack.close()));
  clearAuthorizerCache();
  await removeTempDirs();
});

async function whoami(stack: LocalStack, token: string): Promise<{ status: number; tenantId?: string | null }> {
  const response = await fetch(`${stack.url}/v1/whoami`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await response.json()) as { tenantId?: string | null };
  return { status: response.status, ...(response.status === 200 ? { tenantId: body.tenantId } : {}) };
}

const exists = (path: string) => access(path).then(() => true, () => false);
const START = join(REPO_ROOT, 'local/start.ts');
const TOKEN_CLI = join(REPO_ROOT, 'local/token-cli.ts');

describe('local stack', () => {
  it('serves the API, with dev tokens resolved by the real authorizer', async () => {
    const stack = await start({ dataDir: await tempDir(), devTokens: 'acme=tok-acme-1, globex=tok-globex-1' });
    const health = await fetch(`${stack.url}/v1/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });

    expect(await whoami(stack, 'tok-acme-1')).toEqual({ status: 200, tenantId: 'acme' });
    expect(await whoami(stack, 'tok-globex-1')).toEqual({ status: 200, tenantId: 'globex' });
    expect((await whoami(stack, 'tok-unknown')).status).toBe(401);

    // A real protected route of the route table: refused before its handler is even loaded.
    const integrations = await fetch(`${stack.url}/v1/integrations`);
    expect(integrations.status).toBe(401);
    expect(integrations.headers.get('content-type')).toBe('application/problem+json');

    const unknown = await fetch(`${stack.url}/v1/no-such-route`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ type: 'about:blank', title: 'Not Found', status: 404, detail: expect.any(String) });
  });

  it('answers 413 for an oversized body', async () => {
    const stack = await start({ dataDir: await tempDir(), devTokens: 'acme=tok-acme-1' });
    const response = await fetch(`${stack.url}/v1/echo/1`, { method: 'POST', headers: { authorization: 'Bearer tok-acme-1' }, body: 'x'.repeat(256 * 1024 + 1) });
    expect(response.status).toBe(413);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
  });

  it('keeps its data across a restart on the same data dir', async () => {
    const dataDir = await tempDir();
    const first = await start({ dataDir, devTokens: 'acme=tok-acme-1' });
    const stdout: string[] = [];
    const code = await runTokenCli(['create', '--tenant', 'globex'], { stdout: (text) => stdout.push(text), stderr: () => undefined, env: { OPENTRACE_DATA_DIR: dataDir } });
    expect(code).toBe(0);
    const cliToken = stdout.join('').trim();
    expect(await whoami(first, cliToken)).toEqual({ status: 200, tenantId: 'globex' });
    await first.close();

    clearAuthorizerCache(); // the answers must come from the table on disk, not from memory
    const second = await start({ dataDir });
    expect(await whoami(second, 'tok-acme-1')).toEqual({ status: 200, tenantId: 'acme' });
    expect(await whoami(second, cliToken)).toEqual({ status: 200, tenantId: 'globex' });
  });

  it('tells where it runs in local-stack.json while up, and removes it when stopped', async () => {
    const dataDir = await tempDir();
    const stack = await start({ dataDir });
    const info = JSON.parse(await readFile(join(dataDir, 'local-stack.json'), 'utf8')) as Record<string, unknown>;
    expect(info).toMatchObject({ pid: process.pid, url: stack.url, dynamoEndpoint: stack.dynamoEndpoint, tableName: 'opentrace-local' });
    await stack.close();
    expect(await exists(join(dataDir, 'local-stack.json'))).toBe(false);
  });

  it('refuses a second stack on a data dir that is in use', async () => {
    const dataDir = await tempDir();
    const first = await start({ dataDir });
    const error = await start({ dataDir }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DataDirInUseError);
    expect((error as Error).message).toMatch(new RegExp(`is in use by a running local stack \\(pid ${process.pid}, ${first.url}\\)`));
    expect((await fetch(`${first.url}/v1/health`)).status).toBe(200);
  });

  it('rejects with a clear message when the port is taken, and releases the data dir', async () => {
    const dataDir = await tempDir();
    const taken = await occupyPort();
    try {
      const error = await start({ dataDir, port: taken.port }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PortInUseError);
      expect((error as Error).message).toBe(`port ${taken.port} is already in use: set PORT to another port`);
    } finally {
      await taken.close();
    }
    const stack = await start({ dataDir });
    expect((await fetch(`${stack.url}/v1/health`)).status).toBe(200);
  });

  it('rejects a data dir it cannot create with a one-line explanation', async () => {
    const file = join(await tempDir(), 'a-file');
    await writeFile(file, 'not a directory');
    const error = await start({ dataDir: join(file, 'data') }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LocalStackError);
    expect((error as Error).message).toBe(
      `cannot use the data directory ${join(file, 'data')}: part of that path is a file, not a directory; set OPENTRACE_DATA_DIR to a directory you can write to`,
    );
  });

  it('rejects malformed OPENTRACE_DEV_TOKENS', async () => {
    await expect(start({ dataDir: await tempDir(), devTokens: 'acme' })).rejects.toThrow(/OPENTRACE_DEV_TOKENS: expected tenant=token pairs/);
    await expect(start({ dataDir: await tempDir(), devTokens: 'Not_A_Tenant=tok1' })).rejects.toThrow(/OPENTRACE_DEV_TOKENS: invalid tenant id/);
  });
});

describe('npm start (node local/start.ts as a child process)', () => {
  it('exits 1 with a one-line message when the port is taken', async () => {
    const taken = await occupyPort();
    try {
      const { done } = spawnNode(START, [], { PORT: String(taken.port), OPENTRACE_DATA_DIR: await tempDir() });
      const result = await done;
      expect(result.code).toBe(1);
      expect(result.stderr.trim()).toBe(`port ${taken.port} is already in use: set PORT to another port`);
    } finally {
      await taken.close();
    }
  });

  it('exits 1 with a one-line message when the data dir is unusable', async () => {
    const file = join(await tempDir(), 'a-file');
    await writeFile(file, 'not a directory');
    const { done } = spawnNode(START, [], { PORT: '0', OPENTRACE_DATA_DIR: join(file, 'data') });
    const result = await done;
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toMatch(/^cannot use the data directory .*: part of that path is a file, not a directory; set OPENTRACE_DATA_DIR to a directory you can write to$/);
  });

  it('serves, takes a token from the token CLI while running, stops on SIGINT and keeps the data', async () => {
    const dataDir = await tempDir();
    const server = spawnNode(START, [], { PORT: '0', OPENTRACE_DATA_DIR: dataDir, OPENTRACE_DEV_TOKENS: 'acme=tok-acme-child' });
    try {
      const [, url] = await waitForOutput(server.child, /is up at (http:\/\/127\.0\.0\.1:\d+)/);
      expect(await (await fetch(`${url}/v1/health`)).json()).toEqual({ status: 'ok' });

      // The running stack holds the data dir: the CLI must go through it.
      const cli = await spawnNode(TOKEN_CLI, ['create', '--tenant', 'globex'], { OPENTRACE_DATA_DIR: dataDir }).done;
      expect(cli.code).toBe(0);
      expect(cli.stderr).toMatch(/via the running local stack/);
      const token = cli.stdout.trim();
      expect(cli.stdout).toBe(`${token}\n`);
      expect(token).toMatch(/^ot_[A-Za-z0-9_-]{43}$/);

      server.child.kill('SIGINT');
      const result = await server.done;
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/stopped/);
      expect(await exists(join(dataDir, 'local-stack.json'))).toBe(false);

      const stack = await start({ dataDir });
      expect(await whoami(stack, 'tok-acme-child')).toEqual({ status: 200, tenantId: 'acme' });
      expect(await whoami(stack, token)).toEqual({ status: 200, tenantId: 'globex' });
    } finally {
      if (server.child.exitCode === null) server.child.kill('SIGKILL');
    }
  });
});
