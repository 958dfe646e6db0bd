/**
 * One SecretStore contract, run against both adapters: the local encrypted-file store and the
 * Secrets Manager store (its client backed by an in-memory Secrets Manager built on
 * aws-sdk-client-mock, which answers like the service: ResourceExistsException on a duplicate
 * create, ResourceNotFoundException for a missing secret). Adapter-specific behaviour (caching,
 * encryption at rest, tamper detection, error paths) follows the shared suite.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, readdir, rename, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  GetSecretValueCommand,
  InvalidRequestException,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  SecretsManagerClient,
  SecretsManagerServiceException,
} from '@aws-sdk/client-secrets-manager';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import type { SecretStore, SecretValue } from '#platform/secret-store.ts';
import { SecretStoreError, SecretsManagerSecretStore, TENANT_TAG, type SecretsManagerSecretStoreOptions } from '#platform/secrets-manager-store.ts';
import { FileSecretStore, SecretFileTamperedError } from '#local/file-secret-store.ts';

const SECRET: SecretValue = { accessToken: 'gho_super-secret-access-token-1234', refreshToken: 'ghr_rotating-refresh-5678', nested: { scopes: ['repo', 'read:org'], note: 'ünïcødé ✓' } };
const SECRET_TEXT = 'gho_super-secret-access-token-1234';

// --- an in-memory Secrets Manager behind aws-sdk-client-mock ---------------------------------
interface StoredSecret {
  SecretString: string;
  Tags: { Key?: string; Value?: string }[];
  KmsKeyId: string | undefined;
}

interface FakeSecretsManager {
  client: SecretsManagerClient;
  mock: AwsClientStub<SecretsManagerClient>;
  secrets: Map<string, StoredSecret>;
  calls: (command: 'CreateSecret' | 'PutSecretValue' | 'GetSecretValue' | 'DeleteSecret') => number;
}

const metadata = { httpStatusCode: 400, requestId: 'req-1' };

function fakeSecretsManager(): FakeSecretsManager {
  const client = new SecretsManagerClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  const mock = mockClient(client);
  const secrets = new Map<string, StoredSecret>();
  const notFound = () => new ResourceNotFoundException({ message: "Secrets Manager can't find the specified secret.", $metadata: metadata });

  mock.on(CreateSecretCommand).callsFake((input: { Name: string; SecretString: string; Tags?: StoredSecret['Tags']; KmsKeyId?: string }) => {
    if (secrets.has(input.Name)) throw new ResourceExistsException({ message: `The operation failed because the secret ${input.Name} already exists.`, $metadata: metadata });
    secrets.set(input.Name, { SecretString: input.SecretString, Tags: input.Tags ?? [], KmsKeyId: input.KmsKeyId });
    return { ARN: `arn:aws:secretsmanager:us-east-1:123456789012:secret:${input.Name}-AbCdEf`, Name: input.Name };
  });
  mock.on(PutSecretValueCommand).callsFake((input: { SecretId: string; SecretString: string }) => {
    const existing = secrets.get(input.SecretId);
    if (!existing) throw notFound();
    existing.SecretString = input.SecretString;
    return { Name: input.SecretId };
  });
  mock.on(GetSecretValueCommand).callsFake((input: { SecretId: string }) => {
    const existing = secrets.get(input.SecretId);
    if (!existing) throw notFound();
    return { Name: input.SecretId, SecretString: existing.SecretString };
  });
  mock.on(DeleteSecretCommand).callsFake((input: { SecretId: string; ForceDeleteWithoutRecovery?: boolean }) => {
    if (!input.ForceDeleteWithoutRecovery) throw new Error('the store must delete without a recovery window');
    if (!secrets.delete(input.SecretId)) throw notFound();
    return { Name: input.SecretId };
  });

  const calls = (name: string) => mock.calls().filter((call) => (call.args[0] as object).constructor.name === `${name}Command`).length;
  return { client, mock, secrets, calls };
}

function smStore(fake: FakeSecretsManager, options: SecretsManagerSecretStoreOptions = {}) {
  return new SecretsManagerSecretStore(fake.client, { prefix: 'opentrace', sleep: async () => undefined, ...options });
}

// --- per-adapter setup --------------------------------------------------------------------
const tempDirs: string[] = [];
async function tempDataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'opentrace-secrets-'));
  tempDirs.push(dir);
  return dir;
}

const savedKey = process.env.OPENTRACE_SECRET_KEY;
beforeEach(() => {
  delete process.env.OPENTRACE_SECRET_KEY;
});
afterEach(async () => {
  if (savedKey === undefined) delete process.env.OPENTRACE_SECRET_KEY;
  else process.env.OPENTRACE_SECRET_KEY = savedKey;
  await Promise.all(tempDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

const adapters: [string, () => Promise<SecretStore>][] = [
  ['FileSecretStore', async () => new FileSecretStore(await tempDataDir())],
  ['SecretsManagerSecretStore', async () => smStore(fakeSecretsManager())],
];

describe.each(adapters)('SecretStore contract: %s', (_name, makeStore) => {
  let store: SecretStore;
  beforeEach(async () => {
    store = await makeStore();
  });

  it('returns what was put', async () => {
    await store.put('acme', 'conn_1', SECRET);
    expect(await store.get('acme', 'conn_1')).toEqual(SECRET);
  });

  it('answers undefined for a secret that was never put', async () => {
    expect(await store.get('acme', 'conn_missing')).toBeUndefined();
  });

  it('replaces the value on a second put', async () => {
    await store.put('acme', 'conn_1', SECRET);
    await store.get('acme', 'conn_1');
    await store.put('acme', 'conn_1', { accessToken: 'rotated' });
    expect(await store.get('acme', 'conn_1')).toEqual({ accessToken: 'rotated' });
  });

  it('forgets a deleted secret at once', async () => {
    await store.put('acme', 'conn_1', SECRET);
    await store.get('acme', 'conn_1');
    await store.delete('acme', 'conn_1');
    expect(await store.get('acme', 'conn_1')).toBeUndefined();
  });

  it('accepts deleting a secret that does not exist', async () => {
    await expect(store.delete('acme', 'conn_never')).resolves.toBeUndefined();
  });

  it('keeps tenants apart: the same name under two tenants is two secrets', async () => {
    await store.put('acme', 'conn_1', { accessToken: 'acme-token' });
    await store.put('globex', 'conn_1', { accessToken: 'globex-token' });
    expect(await store.get('acme', 'conn_1')).toEqual({ accessToken: 'acme-token' });
    expect(await store.get('globex', 'conn_1')).toEqual({ accessToken: 'globex-token' });
    await store.delete('acme', 'conn_1');
    expect(await store.get('acme', 'conn_1')).toBeUndefined();
    expect(await store.get('globex', 'conn_1')).toEqual({ accessToken: 'globex-token' });
  });

  it('hands out copies: changing a returned value changes nothing stored', async () => {
    await store.put('acme', 'conn_1', { accessToken: 'a' });
    const first = await store.get('acme', 'conn_1');
    first!.accessToken = 'mutated';
    expect(await store.get('acme', 'conn_1')).toEqual({ accessToken: 'a' });
  });

  it('refuses tenant ids and names that could leave their folder or prefix', async () => {
    await expect(store.put('../acme', 'conn_1', SECRET)).rejects.toThrow(/invalid tenant id/);
    await expect(store.get('acme', '../conn_1')).rejects.toThrow(/invalid secret name/);
    await expect(store.delete('acme', 'a/b')).rejects.toThrow(/invalid secret name/);
  });

  it('refuses a value that is not a JSON object, without quoting it', async () => {
    const error = await store.put('acme', 'conn_1', ['not-an-object', SECRET_TEXT] as unknown as SecretValue).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect(String((error as Error).message)).not.toContain(SECRET_TEXT);
  });
});

describe('SecretsManagerSecretStore', () => {
  it('names secrets under the tenant prefix, tags them with the tenant and uses the KMS key', async () => {
    const fake = fakeSecretsManager();
    const store = smStore(fake, { prefix: 'opentrace-test', kmsKeyId: 'alias/opentrace-secrets' });
    await store.put('acme', 'conn_1', SECRET);
    const stored = fake.secrets.get('opentrace-test/tenants/acme/conn_1');
    expect(stored?.Tags).toEqual([{ Key: TENANT_TAG, Value: 'acme' }]);
    expect(stored?.KmsKeyId).toBe('alias/opentrace-secrets');
    expect(JSON.parse(stored!.SecretString)).toEqual(SECRET);
  });

  it('takes the prefix and KMS key from SECRET_PREFIX and SECRETS_KMS_KEY_ID', async () => {
    const saved = { prefix: process.env.SECRET_PREFIX, kms: process.env.SECRETS_KMS_KEY_ID };
    process.env.SECRET_PREFIX = 'from-env';
    process.env.SECRETS_KMS_KEY_ID = 'key-from-env';
    try {
      const fake = fakeSecretsManager();
      await new SecretsManagerSecretStore(fake.client).put('acme', 'conn_1', SECRET);
      expect(fake.secrets.get('from-env/tenants/acme/conn_1')?.KmsKeyId).toBe('key-from-env');
    } finally {
      for (const [name, value] of [['SECRET_PREFIX', saved.prefix], ['SECRETS_KMS_KEY_ID', saved.kms]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it('updates an existing secret with PutSecretValue', async () => {
    const fake = fakeSecretsManager();
    const store = smStore(fake);
    await store.put('acme', 'conn_1', SECRET);
    await store.put('acme', 'conn_1', { accessToken: 'rotated' });
    expect(fake.calls('CreateSecret')).toBe(2);
    expect(fake.calls('PutSecretValue')).toBe(1);
  });

  it('serves repeated reads from its cache; put and delete invalidate it', async () => {
    const fake = fakeSecretsManager();
    const store = smStore(fake);
    await store.put('acme', 'conn_1', SECRET);

    expect(await store.get('acme', 'conn_1')).toEqual(SECRET);
    expect(await store.get('acme', 'conn_1')).toEqual(SECRET);
    expect(fake.calls('GetSecretValue')).toBe(1);

    await store.put('acme', 'conn_1', { accessToken: 'rotated' });
    expect(await store.get('acme', 'conn_1')).toEqual({ accessToken: 'rotated' });
    expect(fake.calls('GetSecretValue')).toBe(2);

    await store.delete('acme', 'conn_1');
    expect(await store.get('acme', 'conn_1')).toBeUndefined();
    expect(fake.calls('GetSecretValue')).toBe(3);
  });

  it('reads again once the cache entry has expired', async () => {
    const fake = fakeSecretsManager();
    let now = 1_000_000;
    const store = smStore(fake, { cacheTtlMs: 60_000, now: () => now });
    await store.put('acme', 'conn_1', SECRET);
    await store.get('acme', 'conn_1');
    now += 59_999;
    await store.get('acme', 'conn_1');
    expect(fake.calls('GetSecretValue')).toBe(1);
    now += 2;
    await store.get('acme', 'conn_1');
    expect(fake.calls('GetSecretValue')).toBe(2);
  });

  it('does not cache a miss: a secret created elsewhere is seen at once', async () => {
    const fake = fakeSecretsManager();
    const reader = smStore(fake);
    expect(await reader.get('acme', 'conn_1')).toBeUndefined();
    await smStore(fake).put('acme', 'conn_1', SECRET);
    expect(await reader.get('acme', 'conn_1')).toEqual(SECRET);
  });

  it('sends one request for concurrent reads of the same secret', async () => {
    const fake = fakeSecretsManager();
    const store = smStore(fake);
    await store.put('acme', 'conn_1', SECRET);
    const values = await Promise.all([store.get('acme', 'conn_1'), store.get('acme', 'conn_1'), store.get('acme', 'conn_1')]);
    expect(values).toEqual([SECRET, SECRET, SECRET]);
    expect(fake.calls('GetSecretValue')).toBe(1);
  });

  it('waits and retries a create refused while a secret of that name is still being deleted', async () => {
    const fake = fakeSecretsManager();
    const waits: number[] = [];
    const store = smStore(fake, { recreateRetryDelaysMs: [10, 20], sleep: async (ms) => void waits.push(ms) });
    fake.mock
      .on(CreateSecretCommand)
      .rejectsOnce(new InvalidRequestException({ message: "You can't create this secret because a secret with this name is already scheduled for deletion.", $metadata: metadata }))
      .resolvesOnce({ Name: 'opentrace/tenants/acme/conn_1' });
    await store.put('acme', 'conn_1', SECRET);
    expect(waits).toEqual([10]);
    expect(fake.calls('CreateSecret')).toBe(2);
  });

  describe('error paths', () => {
    const throttling = () =>
      new SecretsManagerServiceException({ name: 'ThrottlingException', $fault: 'client', message: 'Rate exceeded', $metadata: { httpStatusCode: 400, requestId: 'req-throttled' } });

    it('surfaces a throttled read as a SecretStoreError that names the secret, not its value', async () => {
      const fake = fakeSecretsManager();
      const store = smStore(fake);
      await store.put('acme', 'conn_1', SECRET);
      fake.mock.on(GetSecretValueCommand).rejects(throttling());

      const error = await store.get('acme', 'conn_1').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SecretStoreError);
      const storeError = error as SecretStoreError;
      expect(storeError.message).toBe('Secrets Manager GetSecretValue failed for secret opentrace/tenants/acme/conn_1: ThrottlingException');
      expect(storeError).toMatchObject({ code: 'ThrottlingException', retryable: true, operation: 'GetSecretValue', requestId: 'req-throttled' });
      expect(JSON.stringify(storeError) + String(storeError.stack)).not.toContain(SECRET_TEXT);
    });

    it('surfaces a throttled write without the value being written', async () => {
      const fake = fakeSecretsManager();
      const store = smStore(fake);
      fake.mock.on(CreateSecretCommand).rejects(throttling());
      const error = (await store.put('acme', 'conn_1', SECRET).catch((e: unknown) => e)) as SecretStoreError;
      expect(error).toBeInstanceOf(SecretStoreError);
      expect(error.code).toBe('ThrottlingException');
      expect(`${error.message} ${String(error.stack)} ${JSON.stringify(error)} ${String(error.cause)}`).not.toContain(SECRET_TEXT);
    });

    it('does not cache a failed read', async () => {
      const fake = fakeSecretsManager();
      const store = smStore(fake);
      await store.put('acme', 'conn_1', SECRET);
      fake.mock.on(GetSecretValueCommand).rejectsOnce(throttling()).callsFake(() => ({ SecretString: JSON.stringify(SECRET) }));
      await expect(store.get('acme', 'conn_1')).rejects.toThrow(SecretStoreError);
      expect(await store.get('acme', 'conn_1')).toEqual(SECRET);
    });

    it('reports a secret that is not JSON without quoting its content', async () => {
      const fake = fakeSecretsManager();
      fake.secrets.set('opentrace/tenants/acme/conn_1', { SecretString: `${SECRET_TEXT} is not json`, Tags: [], KmsKeyId: undefined });
      const error = (await smStore(fake).get('acme', 'conn_1').catch((e: unknown) => e)) as Error;
      expect(error.message).toBe('secret opentrace/tenants/acme/conn_1 does not hold valid JSON');
      expect(String(error.stack)).not.toContain(SECRET_TEXT);
    });

    it('passes on errors other than a missing secret from delete', async () => {
      const fake = fakeSecretsManager();
      fake.mock.on(DeleteSecretCommand).rejects(throttling());
      await expect(smStore(fake).delete('acme', 'conn_1')).rejects.toThrow(/DeleteSecret failed .*ThrottlingException/);
    });
  });
});

describe('FileSecretStore', () => {
  it('keeps no plaintext on disk', async () => {
    const dir = await tempDataDir();
    const store = new FileSecretStore(dir);
    await store.put('acme', 'conn_1', SECRET);
    const bytes = await readFile(store.pathOf('acme', 'conn_1'));
    for (const needle of [SECRET_TEXT, 'accessToken', 'ghr_rotating-refresh-5678']) {
      expect(bytes.includes(Buffer.from(needle))).toBe(false);
      expect(bytes.includes(Buffer.from(Buffer.from(needle).toString('base64').slice(0, 12)))).toBe(false);
    }
    expect(store.pathOf('acme', 'conn_1')).toBe(join(dir, 'secrets', 'acme', 'conn_1.json.enc'));
  });

  it('uses a fresh IV on every write', async () => {
    const store = new FileSecretStore(await tempDataDir());
    await store.put('acme', 'conn_1', SECRET);
    const first = await readFile(store.pathOf('acme', 'conn_1'));
    await store.put('acme', 'conn_1', SECRET);
    const second = await readFile(store.pathOf('acme', 'conn_1'));
    expect(first.subarray(4, 16).equals(second.subarray(4, 16))).toBe(false);
  });

  it('refuses a tampered file with a clear error', async () => {
    const store = new FileSecretStore(await tempDataDir());
    await store.put('acme', 'conn_1', SECRET);
    const path = store.pathOf('acme', 'conn_1');
    const bytes = await readFile(path);
    bytes[bytes.length - 3]! ^= 0x01;
    await writeFile(path, bytes);
    const error = (await store.get('acme', 'conn_1').catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(SecretFileTamperedError);
    expect(error.message).toMatch(/conn_1\.json\.enc was refused: it failed its integrity check/);
  });

  it('refuses a truncated file and a file that is not a secret file', async () => {
    const store = new FileSecretStore(await tempDataDir());
    await store.put('acme', 'conn_1', SECRET);
    const path = store.pathOf('acme', 'conn_1');
    await writeFile(path, (await readFile(path)).subarray(0, 20));
    await expect(store.get('acme', 'conn_1')).rejects.toThrow(SecretFileTamperedError);
    await writeFile(path, JSON.stringify(SECRET));
    await expect(store.get('acme', 'conn_1')).rejects.toThrow(/not an OpenTrace secret file/);
  });

  it("refuses a file moved into another tenant's folder", async () => {
    const store = new FileSecretStore(await tempDataDir());
    await store.put('acme', 'conn_1', SECRET);
    await mkdir(join(store.pathOf('globex', 'conn_1'), '..'), { recursive: true });
    await rename(store.pathOf('acme', 'conn_1'), store.pathOf('globex', 'conn_1'));
    await expect(store.get('globex', 'conn_1')).rejects.toThrow(/failed its integrity check/);
  });

  it('creates secret.key with mode 0600 once and reads it back after a restart', async () => {
    const dir = await tempDataDir();
    await new FileSecretStore(dir).put('acme', 'conn_1', SECRET);
    const keyStat = await stat(join(dir, 'secret.key'));
    expect(keyStat.mode & 0o777).toBe(0o600);
    expect((await stat(new FileSecretStore(dir).pathOf('acme', 'conn_1'))).mode & 0o077).toBe(0);
    expect(await new FileSecretStore(dir).get('acme', 'conn_1')).toEqual(SECRET);
  });

  it('agrees on one key when two stores start on a new data dir at once', async () => {
    const dir = await tempDataDir();
    const [a, b] = [new FileSecretStore(dir), new FileSecretStore(dir)];
    await Promise.all([a.put('acme', 'conn_a', { v: 'a' }), b.put('acme', 'conn_b', { v: 'b' })]);
    expect(await b.get('acme', 'conn_a')).toEqual({ v: 'a' });
    expect(await a.get('acme', 'conn_b')).toEqual({ v: 'b' });
  });

  it('uses OPENTRACE_SECRET_KEY when set, and refuses files written under another key', async () => {
    const dir = await tempDataDir();
    process.env.OPENTRACE_SECRET_KEY = randomBytes(32).toString('base64');
    await new FileSecretStore(dir).put('acme', 'conn_1', SECRET);
    await expect(stat(join(dir, 'secret.key'))).rejects.toThrow(/ENOENT/);
    expect(await new FileSecretStore(dir).get('acme', 'conn_1')).toEqual(SECRET);

    process.env.OPENTRACE_SECRET_KEY = randomBytes(32).toString('base64');
    await expect(new FileSecretStore(dir).get('acme', 'conn_1')).rejects.toThrow(/different key/);
  });

  it('explains a malformed OPENTRACE_SECRET_KEY', async () => {
    process.env.OPENTRACE_SECRET_KEY = 'too-short';
    await expect(new FileSecretStore(await tempDataDir()).put('acme', 'conn_1', SECRET)).rejects.toThrow(/OPENTRACE_SECRET_KEY must be the base64 encoding of 32 random bytes/);
  });

  it('leaves no temporary files behind', async () => {
    const store = new FileSecretStore(await tempDataDir());
    await Promise.all(Array.from({ length: 10 }, (_, i) => store.put('acme', 'conn_1', { i })));
    expect(await readdir(join(store.pathOf('acme', 'conn_1'), '..'))).toEqual(['conn_1.json.enc']);
    expect([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]).toContainEqual((await store.get('acme', 'conn_1'))?.i);
  });
});
