/**
 * Tenants' tokens and credentials: one Secrets Manager secret per connection (and per OAuth app),
 * created at runtime by the Secrets Manager SecretStore under `opentrace/tenants/<tenantId>/...`
 * (functions/platform/secret-store.ts, secretName). The stack owns only the KMS key they are
 * encrypted with and the IAM grant that confines functions to that name prefix.
 */
import { ArnFormat, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { wildcardResourceFinding } from './nag.ts';

/** The `prefix` argument of secretName() in the cloud: every secret is `opentrace/tenants/...`. */
export const SECRET_NAME_PREFIX = 'opentrace';

/**
 * Exactly what the Secrets Manager SecretStore (functions/platform/secrets-manager-store.ts) calls
 * for put (CreateSecret, else PutSecretValue), get and delete; nothing that lists secrets or
 * reads or changes their policies.
 */
export const TENANT_SECRET_ACTIONS = [
  'secretsmanager:GetSecretValue',
  'secretsmanager:CreateSecret',
  'secretsmanager:PutSecretValue',
  // CreateSecret with Tags (the store tags every secret with its tenant) needs TagResource too.
  'secretsmanager:TagResource',
  'secretsmanager:DeleteSecret',
] as const;

export class TenantSecrets extends Construct {
  /** Encrypts every tenant secret (the SecretStore passes it as KmsKeyId on CreateSecret). */
  readonly key: Key;
  /** `arn:<partition>:secretsmanager:<region>:<account>:secret:opentrace/tenants/*` */
  readonly tenantSecretArns: string;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    // A customer managed key rather than aws/secretsmanager: its key policy and the grants below
    // are ours to narrow (only via Secrets Manager, only for tenant secrets), and disabling it is
    // a kill switch for every stored credential at once.
    this.key = new Key(this, 'Key', {
      description: 'OpenTrace: encrypts tenant connection credentials in Secrets Manager',
      enableKeyRotation: true,
      // Secrets are created at runtime and outlive the stack; deleting their key would make them
      // unreadable, so the key stays with them.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.tenantSecretArns = Stack.of(this).formatArn({
      service: 'secretsmanager',
      resource: 'secret',
      // Secret ARNs end in `-<6 random chars>`; the trailing `*` covers it and every name below.
      resourceName: `${SECRET_NAME_PREFIX}/tenants/*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
  }

  /**
   * Lets `fn` create, read, update and delete secrets under `opentrace/tenants/*` (and nothing
   * else in Secrets Manager), and use the key only through Secrets Manager for those secrets.
   * Also tells the function where its secrets go (SECRET_PREFIX, SECRETS_KMS_KEY_ID).
   */
  grantTenantSecretsAccess(fn: LambdaFunction): void {
    fn.addToRolePolicy(
      new PolicyStatement({
        sid: 'TenantSecretsReadWriteDelete',
        actions: [...TENANT_SECRET_ACTIONS],
        resources: [this.tenantSecretArns],
      }),
    );
    // Secrets Manager encrypts with GenerateDataKey and decrypts with Decrypt on the caller's
    // behalf (it never calls kms:Encrypt). ViaService keeps the key unusable outside Secrets
    // Manager; the encryption context (Secrets Manager sets SecretARN) keeps it to tenant secrets.
    fn.addToRolePolicy(
      new PolicyStatement({
        sid: 'TenantSecretsKey',
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: [this.key.keyArn],
        conditions: {
          StringEquals: { 'kms:ViaService': `secretsmanager.${Stack.of(this).region}.amazonaws.com` },
          StringLike: { 'kms:EncryptionContext:SecretARN': this.tenantSecretArns },
        },
      }),
    );
    // Read by secretsManagerStoreFromEnv(); without the key id new secrets would silently be
    // encrypted with the AWS managed aws/secretsmanager key instead of this one.
    fn.addEnvironment('SECRET_PREFIX', SECRET_NAME_PREFIX);
    fn.addEnvironment('SECRETS_KMS_KEY_ID', this.key.keyArn);

    const role = fn.role;
    if (!role) throw new Error('grantTenantSecretsAccess needs a function with an execution role');
    Validations.of(role).acknowledge({
      id: wildcardResourceFinding(Stack.of(this), this.tenantSecretArns),
      reason:
        'Tenant secrets are created at runtime, one per connection, so their ARNs are unknown at deploy time; the wildcard is confined to the opentrace/tenants/ name prefix that secretName() enforces (and covers the random ARN suffix Secrets Manager appends).',
    });
  }
}

