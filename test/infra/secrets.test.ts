import { describe, expect, it } from '@jest/globals';
import { Match } from 'aws-cdk-lib/assertions';
import { secretName } from '#platform/secret-store.ts';
import { SECRET_NAME_PREFIX, TENANT_SECRET_ACTIONS } from '#lib/secrets.ts';
import { allStatements, asArray, buildStack, resourcesOfType } from './stack-fixture.ts';

const { stack, template } = buildStack();
const keyLogicalId = stack.getLogicalId(stack.secrets.key.node.defaultChild as never);
const tenantSecretArn = {
  'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':secretsmanager:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':secret:opentrace/tenants/*']],
};

describe('the tenant secrets key', () => {
  it('is a customer managed key with automatic rotation, retained with the secrets it encrypts', () => {
    const keys = resourcesOfType(template, 'AWS::KMS::Key');
    expect(Object.keys(keys)).toEqual([keyLogicalId]);
    const key = keys[keyLogicalId]!;
    expect(key.Properties!.EnableKeyRotation).toBe(true);
    expect(key.DeletionPolicy).toBe('Retain');
    expect(key.UpdateReplacePolicy).toBe('Retain');
  });
});

describe('secret names and the IAM scope agree', () => {
  it('every name secretName() builds with the cloud prefix falls under opentrace/tenants/', () => {
    expect(SECRET_NAME_PREFIX).toBe('opentrace');
    expect(secretName(SECRET_NAME_PREFIX, 'acme', 'github-app')).toBe('opentrace/tenants/acme/github-app');
  });
});

describe('secret permissions', () => {
  const statements = allStatements(template);
  const allSecretStatements = statements.filter((statement) => asArray(statement.Action).some((action) => action.startsWith('secretsmanager:')));
  const oauthAppsSecret = { Ref: stack.getLogicalId(stack.oauthApps.secret.node.defaultChild as never) };
  const isOAuthAppsRead = (statement: { Resource?: unknown }) => JSON.stringify(statement.Resource) === JSON.stringify(oauthAppsSecret);
  const secretStatements = allSecretStatements.filter((statement) => !isOAuthAppsRead(statement));

  it("read OpenTrace's OAuth apps secret and nothing else outside the tenant prefix", () => {
    const appReads = allSecretStatements.filter(isOAuthAppsRead);
    expect(appReads.length).toBeGreaterThan(0);
    for (const statement of appReads) expect(asArray(statement.Action).sort()).toEqual(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
  });

  it('exist for every API function', () => {
    const apiRoles = [...stack.api.functions.values()].map((fn) => stack.getLogicalId(fn.role.node.defaultChild as never));
    expect(apiRoles.length).toBeGreaterThan(0);
    for (const role of apiRoles) {
      template.hasResourceProperties('AWS::IAM::Policy', {
        Roles: [{ Ref: role }],
        PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Sid: 'TenantSecretsReadWriteDelete' })]) },
      });
    }
  });

  it('are scoped to the opentrace/tenants/ prefix: never a "*" resource, never another ARN', () => {
    expect(secretStatements.length).toBeGreaterThan(0);
    for (const statement of secretStatements) {
      expect(statement.Effect).toBe('Allow');
      expect(asArray(statement.Resource)).toEqual([tenantSecretArn]);
      for (const action of asArray(statement.Action)) expect(action).not.toContain('*');
    }
  });

  it('allow read, write and delete, and nothing that lists secrets or touches their policies', () => {
    const actions = new Set(secretStatements.flatMap((statement) => asArray(statement.Action)));
    expect([...actions].sort()).toEqual([...TENANT_SECRET_ACTIONS].sort());
    for (const needed of ['secretsmanager:GetSecretValue', 'secretsmanager:CreateSecret', 'secretsmanager:PutSecretValue', 'secretsmanager:DeleteSecret']) {
      expect(actions).toContain(needed);
    }
    expect(actions).not.toContain('secretsmanager:ListSecrets');
    expect(actions).not.toContain('secretsmanager:PutResourcePolicy');
  });

  it('use the key only through Secrets Manager and only for tenant secrets', () => {
    const keyStatements = statements.filter((statement) => asArray(statement.Action).some((action) => action.startsWith('kms:')));
    expect(keyStatements.length).toBeGreaterThan(0);
    for (const statement of keyStatements) {
      expect(asArray(statement.Action).sort()).toEqual(['kms:Decrypt', 'kms:GenerateDataKey']);
      expect(statement.Resource).toEqual({ 'Fn::GetAtt': [keyLogicalId, 'Arn'] });
      expect(statement.Condition).toEqual({
        StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', ['secretsmanager.', { Ref: 'AWS::Region' }, '.amazonaws.com']] } },
        StringLike: { 'kms:EncryptionContext:SecretARN': tenantSecretArn },
      });
    }
  });

  it('come with the prefix and key the SecretStore reads from its environment', () => {
    for (const fn of stack.api.functions.values()) {
      template.hasResourceProperties('AWS::Lambda::Function', {
        Handler: 'index.handler',
        Role: { 'Fn::GetAtt': [stack.getLogicalId(fn.role.node.defaultChild as never), 'Arn'] },
        Environment: { Variables: Match.objectLike({ SECRET_PREFIX: 'opentrace', SECRETS_KMS_KEY_ID: { 'Fn::GetAtt': [keyLogicalId, 'Arn'] } }) },
      });
    }
  });

  it('are not given to the token authorizer', () => {
    const authorizerFunction = stack.node.findAll().find((construct) => construct.node.path.endsWith('Api/TokenAuthorizerFunction'));
    expect(authorizerFunction).toBeDefined();
    const policies = resourcesOfType(template, 'AWS::IAM::Policy');
    const authorizerPolicies = Object.values(policies).filter((policy) =>
      JSON.stringify(policy.Properties!.Roles).includes('TokenAuthorizerFunctionRole'),
    );
    expect(authorizerPolicies).toHaveLength(1);
    expect(JSON.stringify(authorizerPolicies[0])).not.toContain('secretsmanager:');
    expect(JSON.stringify(authorizerPolicies[0])).not.toContain('dynamodb:PutItem');
  });
});
