/**
 * Where tokens and credentials live. Nothing else in the system holds them: connection records
 * keep only the secret's name. Adapters: Secrets Manager (cloud, secrets-manager-store.ts) and
 * encrypted files (local stack, local/file-secret-store.ts); both pass the same contract tests.
 */
export type SecretValue = Record<string, unknown>;

export interface SecretStore {
  /** Creates or replaces the secret for one connection (or one OAuth app) of a tenant. */
  put(tenantId: string, name: string, value: SecretValue): Promise<void>;
  /** The secret, or undefined when there is none. Reads may be cached briefly; `put` and `delete` invalidate. */
  get(tenantId: string, name: string): Promise<SecretValue | undefined>;
  /** Deletes at once (no recovery window): a disconnected connection's token must stop existing. */
  delete(tenantId: string, name: string): Promise<void>;
}

/**
 * The full secret name: every secret sits under its tenant's prefix, so IAM can scope access to
 * `opentrace/tenants/*` and a name can never point into another tenant.
 */
export function secretName(prefix: string, tenantId: string, name: string): string {
  if (!/^[a-z0-9][a-z0-9-]{1,62}$/.test(tenantId)) throw new Error(`invalid tenant id for a secret name: ${tenantId}`);
  if (!/^[A-Za-z0-9_.-]{1,128}$/.test(name)) throw new Error('invalid secret name');
  return `${prefix}/tenants/${tenantId}/${name}`;
}
