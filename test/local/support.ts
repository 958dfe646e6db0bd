/**
 * Helpers for the local stack's tests: temp data dirs, test-only routes and handlers (injected
 * into the dev server, so the auth path is exercised before any real protected route exists),
 * raw HTTP, child processes and their output.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { ROUTES } from '#api/routes.ts';
import { loadApiHandler, type DevRoute, type HandlerLoader, type ProxyHandler } from '#local/dev-server.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const dirs: string[] = [];
export async function tempDir(prefix = 'opentrace-local-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}
export async function removeTempDirs(): Promise<void> {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}

/** Test-only routes next to the real ones. */
export const TEST_ROUTES: DevRoute[] = [
  ...ROUTES,
  { method: 'GET', path: '/v1/whoami', fn: 'test-whoami' },
  { method: 'POST', path: '/v1/echo/{id}', fn: 'test-echo' },
  { method: 'PUT', path: '/v1/echo/{id}', fn: 'test-echo' },
  { method: 'GET', path: '/v1/public/items/{id}', fn: 'test-echo', public: true },
  { method: 'GET', path: '/v1/public/items/search', fn: 'test-search', public: true },
  { method: 'GET', path: '/v1/public/files/{path+}', fn: 'test-echo', public: true },
  { method: 'GET', path: '/v1/public/throws', fn: 'test-throws', public: true },
  { method: 'GET', path: '/v1/public/invalid', fn: 'test-invalid', public: true },
  { method: 'GET', path: '/v1/public/slow', fn: 'test-slow', public: true },
  { method: 'GET', path: '/v1/public/cookies', fn: 'test-cookies', public: true },
];

export interface EchoBody {
  event: APIGatewayProxyEvent;
  context: { functionName: string; awsRequestId: string; remainingMs: number };
}

let releaseSlow: () => void = () => undefined;
/** Lets the slow handler (used for the 504 test) finish, so nothing is left pending. */
export const finishSlowHandlers = () => releaseSlow();

export const TEST_HANDLERS: Record<string, ProxyHandler> = {
  'test-whoami': async (event: APIGatewayProxyEvent) => ({
    statusCode: 200,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tenantId: (event.requestContext.authorizer as { tenantId?: string } | null)?.tenantId ?? null }),
  }),
  'test-echo': async (event: APIGatewayProxyEvent, context: Context) => ({
    statusCode: 200,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      event,
      context: { functionName: context.functionName, awsRequestId: context.awsRequestId, remainingMs: context.getRemainingTimeInMillis() },
    } satisfies EchoBody),
  }),
  'test-search': async () => ({ statusCode: 200, body: 'search' }),
  'test-throws': async () => {
    throw new Error('boom');
  },
  'test-invalid': async () => ({ body: 'no status code' }) as never,
  'test-slow': () =>
    new Promise((resolve) => {
      releaseSlow = () => resolve({ statusCode: 200, body: 'late' });
    }),
  'test-cookies': async () => ({
    statusCode: 201,
    headers: { 'x-single': 'one', 'set-cookie': 'ignored=1' },
    multiValueHeaders: { 'Set-Cookie': ['a=1', 'b=2'] },
    body: Buffer.from([0, 1, 2, 255]).toString('base64'),
    isBase64Encoded: true,
  }),
};

export const testHandlerLoader: HandlerLoader = async (fn) => TEST_HANDLERS[fn] ?? loadApiHandler(fn);

/** A loopback port something is already listening on. */
export async function occupyPort(): Promise<{ port: number; close: () => Promise<void> }> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/**
 * Sends raw bytes and collects the whole answer (until the server closes or `untilBody` is seen).
 * For requests fetch cannot make: a declared length never sent, a body still streaming.
 */
export function rawRequest(port: number, head: string, body?: Buffer): Promise<{ status: number; headers: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // The server may drop the connection while we are still sending: keep what was answered.
      if (received && (error.code === 'EPIPE' || error.code === 'ECONNRESET')) return;
      reject(error);
    });
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
    });
    socket.on('close', () => {
      const [headers = '', ...rest] = received.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(headers)?.[1] ?? 0);
      resolve({ status, headers, body: rest.join('\r\n\r\n') });
    });
    socket.write(head);
    if (body) socket.write(body, () => undefined);
  });
}

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `node <script>` (Node 24, the one running jest) from the repo root. */
export function spawnNode(script: string, args: string[], env: Record<string, string | undefined>): { child: ChildProcess; done: Promise<ChildResult>; output: () => { stdout: string; stderr: string } } {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete childEnv.NODE_OPTIONS;
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete childEnv[name];
  const child = spawn(process.execPath, [script, ...args], { cwd: REPO_ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<ChildResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done, output: () => ({ stdout, stderr }) };
}

/** Resolves with the first match of `pattern` in the child's stdout; rejects if the child exits first. */
export function waitForOutput(child: ChildProcess, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let seen = '';
    let errors = '';
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      const match = pattern.exec(seen);
      if (match) {
        cleanup();
        resolve(match);
      }
    };
    const onErr = (chunk: Buffer) => (errors += chunk.toString());
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`the child exited (${code}) before printing ${pattern}; stdout: ${seen}; stderr: ${errors}`));
    };
    const cleanup = () => {
      child.stdout!.off('data', onData);
      child.stderr!.off('data', onErr);
      child.off('exit', onExit);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onErr);
    child.on('exit', onExit);
  });
}
