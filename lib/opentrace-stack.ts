/**
 * The OpenTrace stack: the table, the tenant-secrets key, the hosted API and the sync
 * orchestration (state machine, per-integration sync Lambdas, schedule).
 */
import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { RouteDefinition } from '#api/routes.ts';
import { Api } from './api.ts';
import { TenantSecrets } from './secrets.ts';
import { Storage } from './storage.ts';
import { SyncOrchestration } from './sync-orchestration.ts';

export interface OpenTraceStackProps extends StackProps {
  /** Overrides functions/api/routes.ts (tests only). */
  readonly routes?: readonly RouteDefinition[];
}

export class OpenTraceStack extends Stack {
  readonly storage: Storage;
  readonly secrets: TenantSecrets;
  readonly api: Api;
  readonly sync: SyncOrchestration;

  constructor(scope: Construct, id: string, props: OpenTraceStackProps = {}) {
    super(scope, id, props);
    this.storage = new Storage(this, 'Storage');
    this.secrets = new TenantSecrets(this, 'TenantSecrets');
    this.api = new Api(this, 'Api', {
      storage: this.storage,
      secrets: this.secrets,
      ...(props.routes ? { routes: props.routes } : {}),
    });

    this.sync = new SyncOrchestration(this, 'Sync', { storage: this.storage, secrets: this.secrets });
    // The API starts executions: POST /v1/connections/{id}/sync and DELETE's removal branch.
    for (const name of ['connections', 'syncs']) {
      const fn = this.api.functions.get(name);
      if (fn) this.sync.grantStartSync(fn.function);
    }

    new CfnOutput(this, 'SyncStateMachineArn', { value: this.sync.stateMachine.stateMachineArn });
    new CfnOutput(this, 'ApiUrl', { value: this.api.restApi.url, description: 'Base URL of the API (routes start with /v1)' });
    new CfnOutput(this, 'TableName', { value: this.storage.table.tableName });
    new CfnOutput(this, 'TenantSecretsKeyArn', { value: this.secrets.key.keyArn });
  }
}
