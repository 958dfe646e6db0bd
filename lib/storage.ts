/**
 * The one DynamoDB table, built from functions/platform/table-schema.ts: the same schema the
 * local stack creates on dynalite, so keys and indexes cannot drift between the two.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, ProjectionType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { Grant, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { GLOBAL_INDEXES, PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE } from '#platform/table-schema.ts';

/**
 * Item reads and writes, and nothing else. Unlike `table.grantReadWriteData()` this leaves out
 * dynamodb:Scan (the storage rule "no Scan on any request path", enforced by IAM as well as by
 * the test suite) and the stream actions. Transactions need no action of their own: DynamoDB
 * authorizes TransactWriteItems/TransactGetItems per item with these.
 */
export const ITEM_READ_WRITE_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:Query',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:BatchWriteItem',
  'dynamodb:ConditionCheckItem',
] as const;

export class Storage extends Construct {
  readonly table: Table;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.table = new Table(this, 'Table', {
      // No fixed table name: a retained table from a deleted stack never blocks a redeploy.
      partitionKey: { name: PARTITION_KEY, type: AttributeType.STRING },
      sortKey: { name: SORT_KEY, type: AttributeType.STRING },
      // Load follows syncs and tenants' usage, spiky and unknown up front: no capacity planning.
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: TTL_ATTRIBUTE,
      // AWS managed key (aws/dynamodb) rather than a customer managed one: encrypted at rest with
      // a KMS key of this account and every use logged in CloudTrail, with no key policy to
      // maintain and no kms grant on every function. Tenant isolation comes from the key design
      // (every key starts with the tenant), not from per-tenant keys, so a CMK would add cost and
      // permissions without adding isolation. The credentials, the data worth a CMK, live in
      // Secrets Manager under their own customer managed key (lib/secrets.ts).
      encryption: TableEncryption.AWS_MANAGED,
      // The table holds every tenant's data: neither a stack deletion nor a console click drops it.
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    for (const index of GLOBAL_INDEXES) {
      this.table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: { name: index.partitionKey, type: AttributeType.STRING },
        sortKey: { name: index.sortKey, type: AttributeType.STRING },
        // ALL, as table-schema.ts's createTableInput: reads through an index never need a second GetItem.
        projectionType: ProjectionType.ALL,
      });
    }
  }

  /**
   * Item reads and writes (ITEM_READ_WRITE_ACTIONS: no Scan) on the table and each of its GSIs,
   * named one by one from table-schema.ts rather than `index/*`, so the policy has no wildcard.
   */
  grantItemReadWrite(grantee: IGrantable): Grant {
    return Grant.addToPrincipal({
      grantee,
      actions: [...ITEM_READ_WRITE_ACTIONS],
      resourceArns: [this.table.tableArn, ...GLOBAL_INDEXES.map((index) => `${this.table.tableArn}/index/${index.name}`)],
    });
  }
}
