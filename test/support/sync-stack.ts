/**
 * A stack holding the sync orchestration (with the table and the secrets key it needs), built
 * the way `cdk synth` builds it (cdk.json's feature flags) minus asset bundling.
 */
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { readFileSync } from 'node:fs';
import { PROJECT_ROOT } from '#lib/lambda-function.ts';
import { TenantSecrets } from '#lib/secrets.ts';
import { Storage } from '#lib/storage.ts';
import { SyncOrchestration, type SyncOrchestrationProps } from '#lib/sync-orchestration.ts';

const cdkJsonContext = (JSON.parse(readFileSync(`${PROJECT_ROOT}/cdk.json`, 'utf8')) as { context: Record<string, unknown> }).context;

export function buildSyncStack(
  props: Partial<Omit<SyncOrchestrationProps, 'storage' | 'secrets'>> = {},
  context: Record<string, unknown> = {},
  /** Adds constructs before the stack is synthesized (a synthesized tree cannot change). */
  extend?: (stack: Stack, sync: SyncOrchestration, storage: Storage) => void,
): { app: App; stack: Stack; sync: SyncOrchestration; template: Template } {
  const app = new App({ context: { ...cdkJsonContext, ...context, 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'SyncTest');
  const storage = new Storage(stack, 'Storage');
  const sync = new SyncOrchestration(stack, 'Sync', { storage, secrets: new TenantSecrets(stack, 'TenantSecrets'), ...props });
  extend?.(stack, sync, storage);
  return { app, stack, sync, template: Template.fromStack(stack) };
}
