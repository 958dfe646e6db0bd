/**
 * `npm run token -- create --tenant <id>`: argument errors (exit 2, usage on stderr, nothing on
 * stdout), creating a token with no stack running (the CLI opens the data dir itself), and
 * waiting out another short-lived holder of the data dir. Creating one through a running stack,
 * in-process and as a child process, is covered in stack.test.ts.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { clearAuthorizerCache } from '#api/authorizer.ts';
import { ensureDataDir, tryLockDataDir } from '#local/data-dir.ts';
import { startLocalStack } from '#local/stack.ts';
import { runTokenCli, USAGE } from '#local/token-cli.ts';
import { REPO_ROOT, removeTempDirs, spawnNode, tempDir, TEST_ROUTES, testHandlerLoader } from './support.ts';

afterEach(async () => {
  clearAuthorizerCache();
  await removeTempDirs();
});

async function run(args: string[], dataDir = '/nonexistent-never-used', onStderr: (text: string) => void = () => undefined) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const io = {
    stdout: (text: string) => void stdout.push(text),
    stderr: (text: string) => {
      stderr.push(text);
      onStderr(text);
    },
    env: { OPENTRACE_DATA_DIR: dataDir },
  };
  const code = await runTokenCli(args, io);
  return { code, stdout: stdout.join(''), stderr: stderr.join('') };
}

describe('token CLI: arguments', () => {
  it.each([
    [[], /missing command: create/],
    [['create'], /missing --tenant <tenant-id>/],
    [['revoke', '--tenant', 'acme'], /unknown command: revoke/],
    [['create', 'extra', '--tenant', 'acme'], /unknown command: create extra/],
    [['create', '--tenant', 'acme', '--bogus'], /Unknown option '--bogus'/],
    [['create', '--tenant'], /argument missing/],
    [['create', '--tenant', 'Acme_Corp'], /invalid tenant id "Acme_Corp": use 2-63 lower-case letters, digits and dashes/],
  ])('exits 2 with usage for %j', async (args, message) => {
    const result = await run(args);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toContain(USAGE);
  });

  it('prints the usage on --help', async () => {
    const result = await run(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`${USAGE}\n`);
  });

  it('exits 2 with the usage as a child process too', async () => {
    const result = await spawnNode(join(REPO_ROOT, 'local/token-cli.ts'), ['create'], { OPENTRACE_DATA_DIR: await tempDir() }).done;
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^missing --tenant <tenant-id>\n\nusage: npm run token -- create --tenant <tenant-id>/);
  });
});

describe('token CLI: creating tokens', () => {
  it('opens the data dir itself when no stack runs, and the token resolves once one does', async () => {
    const dataDir = await tempDir();
    const result = await run(['create', '--tenant', 'acme', '--label', 'ci'], dataDir);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^ot_[A-Za-z0-9_-]{43}\n$/);
    expect(result.stderr).toMatch(/created a token for tenant acme via the data directory/);

    const stack = await startLocalStack({ dataDir, port: 0, routes: TEST_ROUTES, loadHandler: testHandlerLoader });
    try {
      const response = await fetch(`${stack.url}/v1/whoami`, { headers: { authorization: `Bearer ${result.stdout.trim()}` } });
      expect(await response.json()).toEqual({ tenantId: 'acme' });
    } finally {
      await stack.close();
    }
  });

  it('waits for another short-lived holder of the data dir to let go', async () => {
    const dataDir = await ensureDataDir(await tempDir());
    const lock = await tryLockDataDir(dataDir);
    expect(lock).toBeDefined();
    let waiting!: () => void;
    const cliIsWaiting = new Promise<void>((resolve) => (waiting = resolve));
    const pending = run(['create', '--tenant', 'acme'], dataDir, (text) => {
      if (/waiting up to 5 s/.test(text)) waiting();
    });
    await cliIsWaiting;
    await lock!.release();
    const result = await pending;
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^ot_[A-Za-z0-9_-]{43}\n$/);
  });

  it('exits 1 with a clear message when the data dir is unusable', async () => {
    const file = join(await tempDir(), 'a-file');
    await writeFile(file, 'x');
    const result = await run(['create', '--tenant', 'acme'], join(file, 'data'));
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^cannot use the data directory .*part of that path is a file/);
  });
});
