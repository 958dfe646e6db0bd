/**
 * The OpenTrace stack: the table, the tenant-secrets key, the hosted API and the sync
 * orchestration (state machine, per-integration sync Lambdas, schedule).
 */
import { Aws, CfnOutput, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { wildcardResourceFinding } from './nag.ts';
import type { Construct } from 'constructs';
import type { RouteDefinition } from '#api/routes.ts';
import { Api } from './api.ts';
import { TenantSecrets } from './secrets.ts';
import { Storage } from './storage.ts';
import { SyncOrchestration } from './sync-orchestration.ts';
import { OAuthApps } from './oauth-apps.ts';

export interface OpenTraceStackProps extends StackProps {
  /** Overrides functions/api/routes.ts (tests only). */
  readonly routes?: readonly RouteDefinition[];
}

export class OpenTraceStack extends Stack {
  readonly storage: Storage;
  readonly secrets: TenantSecrets;
  readonly api: Api;
  readonly sync: SyncOrchestration;
  readonly oauthApps: OAuthApps;

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

    // OAuth flows, connection checks and syncs of OAuth connections refresh tokens with the apps.
    this.oauthApps = new OAuthApps(this, 'OAuthApps', { restApi: this.api.restApi });
    for (const name of ['oauth', 'connections']) {
      const fn = this.api.functions.get(name);
      if (fn) this.oauthApps.grantUse(fn.function);
    }
    for (const fn of this.sync.syncFunctions.values()) this.oauthApps.grantUse(fn.function);

    // AWS EKS connections are checked (and later synced) by assuming the role each customer
    // created for OpenTrace: any role name in any account, which is what the trust policy on the
    // customer's side (web identity audience, or AssumeRole + the tenant's ExternalId) restricts.
    const eksCheck = this.api.functions.get('connections');
    if (eksCheck) {
      const customerRoles = `arn:${Aws.PARTITION}:iam::*:role/*`;
      eksCheck.function.addToRolePolicy(new PolicyStatement({ actions: ['sts:AssumeRole'], resources: [customerRoles] }));
      eksCheck.function.addEnvironment('OPENTRACE_AWS_ACCOUNT_ID', Aws.ACCOUNT_ID);
      const googleClientId = this.node.tryGetContext('opentrace:googleClientId') as string | undefined;
      if (googleClientId) eksCheck.function.addEnvironment('OPENTRACE_GOOGLE_CLIENT_ID', googleClientId);
      Validations.of(eksCheck).acknowledge({
        id: wildcardResourceFinding(this, customerRoles),
        reason: 'Customers create the role OpenTrace assumes in their own accounts under names they choose; their trust policy (web-identity audience or the tenant ExternalId) is the control.',
      });
    }

    new CfnOutput(this, 'OAuthAppsSecretArn', { value: this.oauthApps.secret.secretArn, description: 'Fill with the OAuth apps\' client ids and secrets' });
    new CfnOutput(this, 'SyncStateMachineArn', { value: this.sync.stateMachine.stateMachineArn });
    new CfnOutput(this, 'ApiUrl', { value: this.api.restApi.url, description: 'Base URL of the API (routes start with /v1)' });
    new CfnOutput(this, 'TableName', { value: this.storage.table.tableName });
    new CfnOutput(this, 'TenantSecretsKeyArn', { value: this.secrets.key.keyArn });
  }
}
