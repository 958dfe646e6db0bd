/**
 * The cloud SecretStore: one Secrets Manager secret per connection (or OAuth app), named
 * `<prefix>/tenants/<tenantId>/<name>`, holding a JSON object as its SecretString.
 *
 * Reads are cached per secret for a few minutes (a sync reads the same token on every slice);
 * `put` and `delete` drop the cached entry. Misses are not cached: a secret written by another
 * Lambda instance must be visible at once.
 *
 * Errors name the operation and the secret, never its value: SDK errors are wrapped in
 * SecretStoreError, and a JSON parse failure (whose V8 message quotes the input) is replaced.
 */
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { secretName, type SecretStore, type SecretValue } from './secret-store.ts';

export const DEFAULT_SECRET_PREFIX = 'opentrace';
export const DEFAULT_SECRET_CACHE_TTL_MS = 5 * 60 * 1000;
/** The tag every secret carries, so cost and access reports can be cut by tenant. */
export const TENANT_TAG = 'opentrace:tenant';

export interface SecretsManagerSecretStoreOptions {
  /** Name prefix; default env SECRET_PREFIX, else `opentrace`. */
  prefix?: string;
  /** Customer-managed KMS key for new secrets; default env SECRETS_KMS_KEY_ID, else the AWS-managed key. */
  kmsKeyId?: string;
  /** How long a read stays cached; 0 turns the cache off. Default 5 minutes. */
  cacheTtlMs?: number;
  /** Upper bound on cached entries (oldest dropped first). Default 1000. */
  maxCacheEntries?: number;
  /**
   * Waits before retrying a create that Secrets Manager refuses because a secret of that name is
   * still being force-deleted (deletion is asynchronous). Default 0.5 s, 1 s, 2 s.
   */
  recreateRetryDelaysMs?: readonly number[];
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * A Secrets Manager call failed. The message names the operation and the secret only; the AWS
 * error itself is not attached (a service message may echo request parameters).
 */
export class SecretStoreError extends Error {
  readonly operation: string;
  readonly secretName: string;
  /** The AWS error name (e.g. ThrottlingException), when there is one. */
  readonly code: string | undefined;
  readonly httpStatusCode: number | undefined;
  readonly requestId: string | undefined;
  /** Throttling or a server-side fault: worth retrying later. */
  readonly retryable: boolean;

  constructor(operation: string, name: string, error: unknown) {
    const code = awsErrorName(error);
    const metadata = (error as { $metadata?: { httpStatusCode?: number; requestId?: string } } | undefined)?.$metadata;
    super(`Secrets Manager ${operation} failed for secret ${name}: ${code ?? 'network or client error'}`);
    this.name = 'SecretStoreError';
    this.operation = operation;
    this.secretName = name;
    this.code = code;
    this.httpStatusCode = metadata?.httpStatusCode;
    this.requestId = metadata?.requestId;
    this.retryable = isRetryable(error);
  }
}

/** The AWS message behind a SecretStoreError, for this module's own decisions only. */
const awsMessages = new WeakMap<SecretStoreError, string>();

interface CacheEntry {
  value: SecretValue;
  expiresAt: number;
}

export class SecretsManagerSecretStore implements SecretStore {
  readonly #client: SecretsManagerClient;
  readonly #prefix: string;
  readonly #kmsKeyId: string | undefined;
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #recreateDelays: readonly number[];
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #cache = new Map<string, CacheEntry>();
  /** Reads in flight, shared by concurrent callers of the same secret. */
  readonly #inFlight = new Map<string, Promise<SecretValue | undefined>>();
  /** Bumped by put/delete, so a read that started before a write never caches the old value. */
  readonly #generation = new Map<string, number>();

  constructor(client: SecretsManagerClient, options: SecretsManagerSecretStoreOptions = {}) {
    this.#client = client;
    this.#prefix = options.prefix ?? (process.env.SECRET_PREFIX || DEFAULT_SECRET_PREFIX);
    this.#kmsKeyId = options.kmsKeyId ?? (process.env.SECRETS_KMS_KEY_ID || undefined);
    this.#ttlMs = options.cacheTtlMs ?? DEFAULT_SECRET_CACHE_TTL_MS;
    this.#maxEntries = options.maxCacheEntries ?? 1000;
    this.#recreateDelays = options.recreateRetryDelaysMs ?? [500, 1000, 2000];
    this.#now = options.now ?? Date.now;
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  async put(tenantId: string, name: string, value: SecretValue): Promise<void> {
    const id = secretName(this.#prefix, tenantId, name);
    const secretString = serializeSecret(id, value);
    this.#invalidate(id);
    try {
      await this.#write(id, tenantId, secretString);
    } finally {
      // Again after the write: a read that raced with it must not leave the old value cached.
      this.#invalidate(id);
    }
  }

  async get(tenantId: string, name: string): Promise<SecretValue | undefined> {
    const id = secretName(this.#prefix, tenantId, name);
    const cached = this.#cache.get(id);
    if (cached && cached.expiresAt > this.#now()) return structuredClone(cached.value);
    if (cached) this.#cache.delete(id);

    let read = this.#inFlight.get(id);
    if (!read) {
      const started: Promise<SecretValue | undefined> = this.#read(id).finally(() => {
        if (this.#inFlight.get(id) === started) this.#inFlight.delete(id);
      });
      read = started;
      this.#inFlight.set(id, read);
    }
    const value = await read;
    return value === undefined ? undefined : structuredClone(value);
  }

  async delete(tenantId: string, name: string): Promise<void> {
    const id = secretName(this.#prefix, tenantId, name);
    this.#invalidate(id);
    try {
      await this.#send('DeleteSecret', id, (client) => client.send(new DeleteSecretCommand({ SecretId: id, ForceDeleteWithoutRecovery: true })));
    } catch (error) {
      if (isAwsError(error, 'ResourceNotFoundException')) return;
      throw error;
    } finally {
      this.#invalidate(id);
    }
  }

  /** CreateSecret; PutSecretValue when it exists. */
  async #write(id: string, tenantId: string, secretString: string): Promise<void> {
    let recreateWaits = 0;
    let vanished = 0;
    for (;;) {
      try {
        await this.#send('CreateSecret', id, (client) =>
          client.send(
            new CreateSecretCommand({
              Name: id,
              SecretString: secretString,
              ...(this.#kmsKeyId ? { KmsKeyId: this.#kmsKeyId } : {}),
              Tags: [{ Key: TENANT_TAG, Value: tenantId }],
              Description: `OpenTrace credentials of tenant ${tenantId}`,
            }),
          ),
        );
        return;
      } catch (error) {
        if (isAwsError(error, 'ResourceExistsException')) {
          try {
            await this.#send('PutSecretValue', id, (client) => client.send(new PutSecretValueCommand({ SecretId: id, SecretString: secretString })));
            return;
          } catch (putError) {
            // Deleted between our create and our put: create it again (once).
            if (isAwsError(putError, 'ResourceNotFoundException') && vanished++ < 1) continue;
            throw putError;
          }
        }
        // A force-deleted secret's name is free again only once the deletion has run.
        const wait = this.#recreateDelays[recreateWaits];
        if (wait !== undefined && isAwsError(error, 'InvalidRequestException') && /scheduled for deletion/i.test(awsMessage(error))) {
          recreateWaits++;
          await this.#sleep(wait);
          continue;
        }
        throw error;
      }
    }
  }

  async #read(id: string): Promise<SecretValue | undefined> {
    const generation = this.#generation.get(id) ?? 0;
    let secretString: string | undefined;
    try {
      const output = await this.#send('GetSecretValue', id, (client) => client.send(new GetSecretValueCommand({ SecretId: id })));
      secretString = output.SecretString;
    } catch (error) {
      if (isAwsError(error, 'ResourceNotFoundException')) return undefined;
      throw error;
    }
    if (secretString === undefined) throw new Error(`secret ${id} has no SecretString (binary secrets are not supported)`);
    const value = parseSecret(id, secretString);
    if (this.#ttlMs > 0 && (this.#generation.get(id) ?? 0) === generation) {
      if (this.#cache.size >= this.#maxEntries) {
        const oldest = this.#cache.keys().next();
        if (!oldest.done) this.#cache.delete(oldest.value);
      }
      this.#cache.set(id, { value, expiresAt: this.#now() + this.#ttlMs });
    }
    return value;
  }

  #invalidate(id: string): void {
    this.#cache.delete(id);
    this.#inFlight.delete(id);
    this.#generation.set(id, (this.#generation.get(id) ?? 0) + 1);
  }

  async #send<Output>(operation: string, id: string, call: (client: SecretsManagerClient) => Promise<Output>): Promise<Output> {
    try {
      return await call(this.#client);
    } catch (error) {
      const wrapped = new SecretStoreError(operation, id, error);
      if (error instanceof Error) awsMessages.set(wrapped, error.message);
      throw wrapped;
    }
  }
}

/** JSON text of a secret; refuses anything but a plain object without quoting it. */
export function serializeSecret(id: string, value: SecretValue): string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new TypeError(`secret ${id}: the value must be a JSON object`);
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    throw new TypeError(`secret ${id}: the value cannot be serialized as JSON`);
  }
  if (text === undefined) throw new TypeError(`secret ${id}: the value cannot be serialized as JSON`);
  return text;
}

/** The JSON object a secret holds. V8's parse errors quote the input, so they are never passed on. */
export function parseSecret(id: string, text: string): SecretValue {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`secret ${id} does not hold valid JSON`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`secret ${id} does not hold a JSON object`);
  return value as SecretValue;
}

/** The SecretStoreError wraps an AWS error of this name (compared by name: bundles may hold two SDK copies). */
function isAwsError(error: unknown, name: string): boolean {
  return error instanceof SecretStoreError && error.code === name;
}

function awsMessage(error: unknown): string {
  return (error instanceof SecretStoreError && awsMessages.get(error)) || '';
}

function awsErrorName(error: unknown): string | undefined {
  if (error && typeof error === 'object' && 'name' in error && typeof error.name === 'string' && error.name !== 'Error') return error.name;
  return undefined;
}

function isRetryable(error: unknown): boolean {
  if (!error || typeof error !== 'object') return false;
  if (/Throttl|TooManyRequests|RequestLimitExceeded|InternalServiceError|ServiceUnavailable/i.test(awsErrorName(error) ?? '')) return true;
  const { $retryable, $fault } = error as { $retryable?: unknown; $fault?: unknown };
  return Boolean($retryable) || $fault === 'server';
}
