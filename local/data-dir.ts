/**
 * The local stack's data directory (OPENTRACE_DATA_DIR, default `.opentrace`):
 *
 *   dynamodb/          dynalite's LevelDB (the table)
 *   secrets/           FileSecretStore's encrypted files, and secret.key
 *   stack.lock/        a tiny LevelDB held open by whichever process owns the data dir
 *   local-stack.json   written by a running `npm start`: where its DynamoDB endpoint is
 *
 * LevelDB lets one process open a database at a time. Rather than find out from dynalite (which
 * throws an uncaught "Database is not open" on its first request when its open failed), the
 * owner first takes the `stack.lock` database: the operating system releases that lock when the
 * process dies, so there is no stale lock to clean up. The token CLI uses the same lock to decide
 * between opening the data dir itself and talking to the running stack.
 *
 * Beware LevelDB's in-process behaviour: a second open of a database this process already holds
 * fails *and drops the process's OS lock* (POSIX record locks are per process and close() of any
 * descriptor releases them). So this module keeps its own set of held locks and never attempts a
 * second open in-process.
 */
import { ClassicLevel } from 'classic-level';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, realpath, rename, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { DataDirInUseError, LocalStackError, errnoCode } from './errors.ts';

export const DEFAULT_DATA_DIR = '.opentrace';
export const STACK_INFO_FILE = 'local-stack.json';
const LOCK_DB = 'stack.lock';

/** What a running `npm start` tells other processes (the token CLI) about itself. */
export interface StackInfo {
  /** Distinguishes stacks of one process (tests start several). */
  instanceId: string;
  pid: number;
  url: string;
  dynamoEndpoint: string;
  tableName: string;
  startedAt: string;
}

/**
 * Creates the data directory if needed and proves it is writable; answers its real path.
 * Throws a LocalStackError with a one-line explanation otherwise.
 */
export async function ensureDataDir(dataDir: string): Promise<string> {
  const dir = resolve(dataDir);
  try {
    await mkdir(dir, { recursive: true });
    const probe = join(dir, `.write-test-${process.pid}-${randomBytes(4).toString('hex')}`);
    await writeFile(probe, '', { flag: 'wx' });
    await unlink(probe);
    return await realpath(dir);
  } catch (error) {
    throw new LocalStackError(`cannot use the data directory ${dir}: ${describeFsError(error)}; set OPENTRACE_DATA_DIR to a directory you can write to`);
  }
}

function describeFsError(error: unknown): string {
  switch (errnoCode(error)) {
    case 'ENOTDIR':
      return 'part of that path is a file, not a directory';
    case 'EEXIST':
      return 'it exists and is not a directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'the file system is read-only';
    case 'ENOSPC':
      return 'no space left on the device';
    default:
      return String((error as { message?: unknown } | undefined)?.message ?? error);
  }
}

export interface DataDirLock {
  readonly dataDir: string;
  release(): Promise<void>;
}

const heldLocks = new Set<string>();

/** Takes the data dir's lock, or answers undefined when another process (or this one) holds it. */
export async function tryLockDataDir(dataDir: string): Promise<DataDirLock | undefined> {
  if (heldLocks.has(dataDir)) return undefined;
  heldLocks.add(dataDir);
  const db = new ClassicLevel(join(dataDir, LOCK_DB));
  try {
    await db.open();
  } catch (error) {
    heldLocks.delete(dataDir);
    if (errnoCode((error as { cause?: unknown }).cause) === 'LEVEL_LOCKED') return undefined;
    throw new LocalStackError(`cannot lock the data directory ${dataDir}: ${(error as Error).message}`);
  }
  let released = false;
  return {
    dataDir,
    async release() {
      if (released) return;
      released = true;
      try {
        await db.close();
      } finally {
        heldLocks.delete(dataDir);
      }
    },
  };
}

/**
 * Takes the data dir's lock, waiting up to `waitMs` for a short-lived holder (a token CLI run)
 * to finish; throws DataDirInUseError naming the holder when it can.
 */
export async function lockDataDir(dataDir: string, { waitMs = 0, onWait }: { waitMs?: number; onWait?: () => void } = {}): Promise<DataDirLock> {
  const deadline = Date.now() + waitMs;
  for (let attempt = 0; ; attempt++) {
    const lock = await tryLockDataDir(dataDir);
    if (lock) return lock;
    const info = await readStackInfo(dataDir);
    // A live stack holds the lock for good: say so at once. Otherwise it may be a token CLI run.
    if ((info && isAlive(info.pid)) || Date.now() >= deadline) throw new DataDirInUseError(inUseMessage(dataDir, info));
    if (attempt === 0) onWait?.();
    await delay(100);
  }
}

/** Whether a process of that id exists (EPERM: it does, but belongs to someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoCode(error) === 'EPERM';
  }
}

export function inUseMessage(dataDir: string, info: StackInfo | undefined): string {
  const holder = info && isAlive(info.pid) ? `a running local stack (pid ${info.pid}, ${info.url})` : 'another process (a running `npm start`?)';
  return `the data directory ${dataDir} is in use by ${holder}: stop it, or set OPENTRACE_DATA_DIR to another directory`;
}

export async function writeStackInfo(dataDir: string, info: StackInfo): Promise<void> {
  const path = join(dataDir, STACK_INFO_FILE);
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temp, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  await rename(temp, path);
}

/** The running stack's info, or undefined when there is none (or the file is unreadable). */
export async function readStackInfo(dataDir: string): Promise<StackInfo | undefined> {
  try {
    const info = JSON.parse(await readFile(join(dataDir, STACK_INFO_FILE), 'utf8')) as Partial<StackInfo>;
    if (typeof info.dynamoEndpoint !== 'string' || typeof info.tableName !== 'string' || typeof info.url !== 'string') return undefined;
    return info as StackInfo;
  } catch {
    return undefined;
  }
}

/** Removes the info file if it is still this stack's (a newer stack may have replaced it). */
export async function removeStackInfo(dataDir: string, instanceId: string): Promise<void> {
  const info = await readStackInfo(dataDir);
  if (info?.instanceId !== instanceId) return;
  await unlink(join(dataDir, STACK_INFO_FILE)).catch(() => undefined);
}
