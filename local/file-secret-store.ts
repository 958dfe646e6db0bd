/**
 * The local stack's SecretStore: one AES-256-GCM encrypted file per secret under
 * `<dataDir>/secrets/<tenantId>/<name>.json.enc`. Same contract as the Secrets Manager adapter
 * (test/platform/secret-store.test.ts runs one suite against both).
 *
 * File layout: "OTS1" (format version) | 12-byte random IV | 16-byte GCM tag | ciphertext.
 * The full secret name is the GCM additional data, so a file copied into another tenant's
 * folder (or renamed) fails authentication instead of being served to the wrong tenant.
 *
 * The key: env OPENTRACE_SECRET_KEY (base64 of 32 bytes), else `<dataDir>/secret.key`, created
 * on first use with mode 0600. Losing the key makes the stored secrets unreadable.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, link, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { secretName, type SecretStore, type SecretValue } from '#platform/secret-store.ts';
import { parseSecret, serializeSecret } from '#platform/secrets-manager-store.ts';

const MAGIC = Buffer.from('OTS1');
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const HEADER_BYTES = MAGIC.length + IV_BYTES + TAG_BYTES;
/** The prefix only feeds the additional authenticated data; files are laid out by tenant and name. */
const AAD_PREFIX = 'opentrace-local';

/** A secret file exists but cannot be trusted: modified, truncated, moved, or encrypted under another key. */
export class SecretFileTamperedError extends Error {
  readonly path: string;
  constructor(path: string, reason: string) {
    super(
      `secret file ${path} was refused: ${reason}. It was modified, truncated or moved, or it was written with a ` +
        'different key (OPENTRACE_SECRET_KEY or the data dir\'s secret.key). Delete the file and connect again.',
    );
    this.name = 'SecretFileTamperedError';
    this.path = path;
  }
}

export interface FileSecretStoreOptions {
  /** The 32-byte key; default from env OPENTRACE_SECRET_KEY, else `<dataDir>/secret.key`. */
  key?: Buffer;
}

export class FileSecretStore implements SecretStore {
  readonly #dataDir: string;
  #key: Promise<Buffer> | undefined;

  constructor(dataDir: string, options: FileSecretStoreOptions = {}) {
    this.#dataDir = dataDir;
    if (options.key) {
      if (options.key.length !== KEY_BYTES) throw new Error(`the secret store key must be ${KEY_BYTES} bytes`);
      this.#key = Promise.resolve(Buffer.from(options.key));
    }
  }

  /** Where a secret's file lives (also used by tests to look at the bytes on disk). */
  pathOf(tenantId: string, name: string): string {
    secretName(AAD_PREFIX, tenantId, name); // validates both parts: nothing can escape the folder
    return join(this.#dataDir, 'secrets', tenantId, `${name}.json.enc`);
  }

  async put(tenantId: string, name: string, value: SecretValue): Promise<void> {
    const path = this.pathOf(tenantId, name);
    const id = secretName(AAD_PREFIX, tenantId, name);
    const plaintext = Buffer.from(serializeSecret(id, value), 'utf8');
    const key = await this.#getKey();

    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(id, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    plaintext.fill(0);
    const contents = Buffer.concat([MAGIC, iv, cipher.getAuthTag(), ciphertext]);

    await mkdir(join(this.#dataDir, 'secrets', tenantId), { recursive: true, mode: 0o700 });
    await writeFileAtomic(path, contents);
  }

  async get(tenantId: string, name: string): Promise<SecretValue | undefined> {
    const path = this.pathOf(tenantId, name);
    const id = secretName(AAD_PREFIX, tenantId, name);
    let contents: Buffer;
    try {
      contents = await readFile(path);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return undefined;
      throw error;
    }
    if (contents.length < HEADER_BYTES || !contents.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw new SecretFileTamperedError(path, 'it is not an OpenTrace secret file');
    }
    const iv = contents.subarray(MAGIC.length, MAGIC.length + IV_BYTES);
    const tag = contents.subarray(MAGIC.length + IV_BYTES, HEADER_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', await this.#getKey(), iv);
    decipher.setAAD(Buffer.from(id, 'utf8'));
    decipher.setAuthTag(tag);
    let plaintext: Buffer;
    try {
      plaintext = Buffer.concat([decipher.update(contents.subarray(HEADER_BYTES)), decipher.final()]);
    } catch {
      throw new SecretFileTamperedError(path, 'it failed its integrity check');
    }
    try {
      return parseSecret(path, plaintext.toString('utf8'));
    } finally {
      plaintext.fill(0);
    }
  }

  async delete(tenantId: string, name: string): Promise<void> {
    await rm(this.pathOf(tenantId, name), { force: true });
  }

  #getKey(): Promise<Buffer> {
    this.#key ??= loadOrCreateKey(this.#dataDir).catch((error: unknown) => {
      this.#key = undefined; // let a later call try again (e.g. after the data dir is fixed)
      throw error;
    });
    return this.#key;
  }
}

async function loadOrCreateKey(dataDir: string): Promise<Buffer> {
  const fromEnv = process.env.OPENTRACE_SECRET_KEY;
  if (fromEnv) {
    const key = Buffer.from(fromEnv.trim(), 'base64');
    if (!/^[A-Za-z0-9+/]{43}=?$/.test(fromEnv.trim()) || key.length !== KEY_BYTES) {
      throw new Error(`OPENTRACE_SECRET_KEY must be the base64 encoding of ${KEY_BYTES} random bytes (e.g. \`openssl rand -base64 32\`)`);
    }
    return key;
  }

  const keyPath = join(dataDir, 'secret.key');
  const existing = await readKeyFile(keyPath);
  if (existing) return existing;

  // Create-if-absent without a window where another process could read a half-written key:
  // write a temp file, then hard-link it into place (link fails if the key already exists).
  await mkdir(dataDir, { recursive: true });
  const key = randomBytes(KEY_BYTES);
  const temp = `${keyPath}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFileDurably(temp, Buffer.from(`${key.toString('base64')}\n`), 0o600);
  try {
    await link(temp, keyPath);
    return key;
  } catch (error) {
    if (!isErrno(error, 'EEXIST')) throw error;
    const winner = await readKeyFile(keyPath);
    if (!winner) throw new Error(`the secret key file ${keyPath} could not be read`, { cause: error });
    return winner;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

async function readKeyFile(keyPath: string): Promise<Buffer | undefined> {
  let text: string;
  try {
    text = await readFile(keyPath, 'utf8');
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return undefined;
    throw error;
  }
  const key = Buffer.from(text.trim(), 'base64');
  if (key.length !== KEY_BYTES) {
    throw new Error(`the secret key file ${keyPath} is not a base64 ${KEY_BYTES}-byte key; restore it (secrets written with it are unreadable without it)`);
  }
  return key;
}

/** Temp file in the same folder, fsync, rename: a reader sees the old file or the new one, never half of one. */
async function writeFileAtomic(path: string, contents: Buffer): Promise<void> {
  const temp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFileDurably(temp, contents, 0o600);
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}

async function writeFileDurably(path: string, contents: Buffer, mode: number): Promise<void> {
  const handle = await open(path, 'wx', mode);
  try {
    await handle.writeFile(contents);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

// Duck-typed: under jest, node's errors come from another realm and fail `instanceof Error`.
function isErrno(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as NodeJS.ErrnoException).code === code;
}
