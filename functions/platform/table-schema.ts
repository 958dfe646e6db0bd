/**
 * The one DynamoDB table's physical schema: the single source of truth used by the CDK construct
 * (lib/storage.ts) and by the local stack's table creation (local/dynamo.ts).
 * What lives under which key is in keys.ts and docs/data-model.md.
 */
export const PARTITION_KEY = 'PK';
export const SORT_KEY = 'SK';
/** Epoch seconds; DynamoDB deletes expired items up to days late, so readers check expiry themselves. */
export const TTL_ATTRIBUTE = 'ttl';

export interface GlobalIndexSchema {
  readonly name: string;
  readonly partitionKey: string;
  readonly sortKey: string;
  /** What the index is for; every entity using it is listed in docs/data-model.md. */
  readonly purpose: string;
}

export const GLOBAL_INDEXES = [
  { name: 'GSI1', partitionKey: 'GSI1PK', sortKey: 'GSI1SK', purpose: 'in-edges of a node; sync runs of a connection, newest first' },
  { name: 'GSI2', partitionKey: 'GSI2PK', sortKey: 'GSI2SK', purpose: 'graph nodes by type and name prefix; edges by type; connections due for a scheduled sync' },
  { name: 'GSI3', partitionKey: 'GSI3PK', sortKey: 'GSI3SK', purpose: 'everything one connection contributed to the graph' },
] as const satisfies readonly GlobalIndexSchema[];

export type GlobalIndexName = (typeof GLOBAL_INDEXES)[number]['name'];

/** All key attributes are strings. */
export const KEY_ATTRIBUTES: readonly string[] = [
  PARTITION_KEY,
  SORT_KEY,
  ...GLOBAL_INDEXES.flatMap((index) => [index.partitionKey, index.sortKey]),
];

/** A CreateTable input for the local stack and tests (on-demand billing, all indexes project ALL). */
export function createTableInput(tableName: string) {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST' as const,
    AttributeDefinitions: KEY_ATTRIBUTES.map((name) => ({ AttributeName: name, AttributeType: 'S' as const })),
    KeySchema: [
      { AttributeName: PARTITION_KEY, KeyType: 'HASH' as const },
      { AttributeName: SORT_KEY, KeyType: 'RANGE' as const },
    ],
    GlobalSecondaryIndexes: GLOBAL_INDEXES.map((index) => ({
      IndexName: index.name,
      KeySchema: [
        { AttributeName: index.partitionKey, KeyType: 'HASH' as const },
        { AttributeName: index.sortKey, KeyType: 'RANGE' as const },
      ],
      Projection: { ProjectionType: 'ALL' as const },
    })),
  };
}
