/**
 * Secrets in tests: an in-memory SecretStore that remembers every value it was given, and a
 * leak check that fails a test file if any of those values shows up in a log line, or in an API
 * response the test helpers saw (test/support/api.ts reports them).
 */
import type { SecretStore, SecretValue } from '#platform/secret-store.ts';

const knownSecrets = new Set<string>();
const leaks: string[] = [];

function collectStrings(value: unknown, out: string[]): void {
  if (typeof value === 'string') out.push(value);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) collectStrings(v, out);
}

/** Marks a value as secret for the leak check (values shorter than 6 characters are too common to check). */
export function rememberSecret(value: SecretValue | string): void {
  const strings: string[] = [];
  collectStrings(value, strings);
  for (const s of strings) if (s.length >= 6) knownSecrets.add(s);
}

/** Records a leak if `text` contains a known secret; `where` says what it was (response, log). */
export function checkForSecrets(text: string, where: string): void {
  for (const secret of knownSecrets) {
    if (text.includes(secret)) leaks.push(`${where} contained a stored secret (${secret.slice(0, 3)}…)`);
  }
}

export function secretLeaks(): readonly string[] {
  return leaks;
}

export class MemorySecretStore implements SecretStore {
  readonly values = new Map<string, SecretValue>();

  async put(tenantId: string, name: string, value: SecretValue): Promise<void> {
    rememberSecret(value);
    this.values.set(`${tenantId}/${name}`, structuredClone(value));
  }

  async get(tenantId: string, name: string): Promise<SecretValue | undefined> {
    const value = this.values.get(`${tenantId}/${name}`);
    return value ? structuredClone(value) : undefined;
  }

  async delete(tenantId: string, name: string): Promise<void> {
    this.values.delete(`${tenantId}/${name}`);
  }

  namesOf(tenantId: string): string[] {
    return [...this.values.keys()].filter((key) => key.startsWith(`${tenantId}/`)).map((key) => key.slice(tenantId.length + 1));
  }
}
