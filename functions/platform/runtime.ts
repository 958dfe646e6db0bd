/**
 * The composition root: which adapters this process uses (DynamoDB table, secret store, clock).
 * Lambda handlers take the defaults built from the environment; the local stack and tests call
 * `configureRuntime` once at their edge, so domain code never asks "am I local?".
 */
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { tableFromEnv, type TableRef } from './dynamo.ts';
import type { SecretStore } from './secret-store.ts';
import { SecretsManagerSecretStore } from './secrets-manager-store.ts';

export interface Runtime {
  table: TableRef;
  secrets: SecretStore;
  now: () => Date;
}

let configured: Partial<Runtime> = {};
let built: Runtime | undefined;

export function configureRuntime(overrides: Partial<Runtime>): void {
  configured = { ...configured, ...overrides };
  built = undefined;
}

export function runtime(): Runtime {
  if (!built) {
    built = {
      table: configured.table ?? tableFromEnv(),
      secrets:
        configured.secrets ??
new SecretsManagerSecretStore(new SecretsManagerClient({})),
      now: configured.now ?? (() => new Date()),
    };
  }
  return built;
}
