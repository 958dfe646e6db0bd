import { describe, expect, it } from '@jest/globals';
import { Match } from 'aws-cdk-lib/assertions';
import { createTableInput, GLOBAL_INDEXES, PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE } from '#platform/table-schema.ts';
import { allStatements, asArray, buildStack, resourcesOfType } from './stack-fixture.ts';

const { template } = buildStack();
const tables = resourcesOfType(template, 'AWS::DynamoDB::Table');
const [tableLogicalId, table] = Object.entries(tables)[0]!;
const props = table.Properties!;

describe('the single table', () => {
  it('is the only table', () => {
    expect(Object.keys(tables)).toHaveLength(1);
  });

  it('has the PK/SK string key schema of table-schema.ts', () => {
    expect(props.KeySchema).toEqual([
      { AttributeName: PARTITION_KEY, KeyType: 'HASH' },
      { AttributeName: SORT_KEY, KeyType: 'RANGE' },
    ]);
    expect(PARTITION_KEY).toBe('PK');
    expect(SORT_KEY).toBe('SK');
  });

  it('has every GSI of table-schema.ts with its keys and ALL projection, and no other', () => {
    expect(props.GlobalSecondaryIndexes).toEqual(
      GLOBAL_INDEXES.map((index) => ({
        IndexName: index.name,
        KeySchema: [
          { AttributeName: index.partitionKey, KeyType: 'HASH' },
          { AttributeName: index.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      })),
    );
    expect((props.GlobalSecondaryIndexes as unknown[]).map((index) => (index as { IndexName: string }).IndexName)).toEqual(['GSI1', 'GSI2', 'GSI3']);
  });

  it('matches the table the local stack and the tests create (createTableInput)', () => {
    const local = createTableInput('local');
    expect(props.KeySchema).toEqual(local.KeySchema);
    expect(props.GlobalSecondaryIndexes).toEqual(local.GlobalSecondaryIndexes);
    expect(props.AttributeDefinitions).toEqual(expect.arrayContaining(local.AttributeDefinitions));
    expect(props.AttributeDefinitions).toHaveLength(local.AttributeDefinitions.length);
    expect(props.BillingMode).toBe(local.BillingMode);
  });

  it('expires items through the TTL attribute', () => {
    expect(props.TimeToLiveSpecification).toEqual({ AttributeName: TTL_ATTRIBUTE, Enabled: true });
    expect(TTL_ATTRIBUTE).toBe('ttl');
  });

  it('has point-in-time recovery on', () => {
    expect(props.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
  });

  it('is retained on stack deletion and replacement, and deletion-protected', () => {
    expect(table.DeletionPolicy).toBe('Retain');
    expect(table.UpdateReplacePolicy).toBe('Retain');
    expect(props.DeletionProtectionEnabled).toBe(true);
  });

  it('is encrypted at rest with the AWS managed KMS key (aws/dynamodb)', () => {
    expect(props.SSESpecification).toEqual({ SSEEnabled: true });
  });

  it('has no fixed name, so a retained table never blocks a redeploy', () => {
    expect(props.TableName).toBeUndefined();
  });

  it('goes to every function as TABLE_NAME', () => {
    template.allResourcesProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ TABLE_NAME: { Ref: tableLogicalId } }) },
    });
  });
});

describe('table permissions', () => {
  const dynamoStatements = allStatements(template).filter((statement) => asArray(statement.Action).some((action) => action.startsWith('dynamodb:')));

  it('never allow Scan (no Scan on any request path) or wildcard actions', () => {
    expect(dynamoStatements.length).toBeGreaterThan(0);
    for (const statement of dynamoStatements) {
      for (const action of asArray(statement.Action)) {
        expect(action).not.toBe('dynamodb:Scan');
        expect(action).not.toContain('*');
      }
    }
  });

  it('name the table and each GSI explicitly, never index/*', () => {
    for (const statement of dynamoStatements) {
      expect(JSON.stringify(statement.Resource)).not.toContain('*');
    }
    const readWrite = dynamoStatements.find((statement) => statement.Sid === 'TableItemReadWrite' || asArray(statement.Action).includes('dynamodb:PutItem'));
    expect(readWrite).toBeDefined();
    const resources = JSON.stringify(readWrite!.Resource);
    for (const index of GLOBAL_INDEXES) expect(resources).toContain(`/index/${index.name}`);
  });
});
