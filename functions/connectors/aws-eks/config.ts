/**
 * What an AWS EKS connection is configured with, and nothing secret: the role is the credential.
 * OpenTrace stores no AWS keys for EKS; it assumes the customer's role each time it needs to
 * (web identity, or AssumeRole with the tenant's ExternalId), so `credentials` is an empty object
 * and anything sent there is refused (an AWS key pasted into the form must not end up stored).
 */
import { z } from 'zod';

export const AWS_PARTITIONS = ['aws', 'aws-cn', 'aws-us-gov'] as const;
export type AwsPartition = (typeof AWS_PARTITIONS)[number];

/** arn:<partition>:iam::<12-digit account>:role/<optional/path/><name> (name: 1-64 of `\w+=,.@-`). */
export const ROLE_ARN_PATTERN = /^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):role\/((?:[\w+=,.@-]+\/)*)([\w+=,.@-]{1,64})$/;
/** EKS cluster names: 1-100 characters, a letter or digit first, then letters, digits, `-` and `_`. */
export const CLUSTER_NAME_PATTERN = /^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$/;
/** AWS region codes: us-east-1, eu-central-2, ap-southeast-4, us-gov-west-1, cn-northwest-1… */
export const REGION_PATTERN = /^[a-z]{2}(-gov)?-[a-z]+-\d{1,2}$/;

export const AUTH_MODES = ['web-identity', 'assume-role'] as const;
export type EksAuthMode = (typeof AUTH_MODES)[number];

/** The partition a region belongs to (the role and its clusters must share one). */
export function partitionOfRegion(region: string): AwsPartition {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  return 'aws';
}

/** DNS suffix of a partition's service endpoints. */
export function dnsSuffix(partition: AwsPartition): string {
  return partition === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com';
}

export interface ParsedRoleArn {
  partition: AwsPartition;
  accountId: string;
  path: string;
  name: string;
}

export function parseRoleArn(arn: string): ParsedRoleArn | undefined {
  const match = ROLE_ARN_PATTERN.exec(arn);
  if (!match) return undefined;
  return { partition: match[1] as AwsPartition, accountId: match[2]!, path: `/${match[3] ?? ''}`, name: match[4]! };
}

const clusterSchema = z.object({
  name: z
    .string()
    .regex(CLUSTER_NAME_PATTERN, 'must be an EKS cluster name: 1-100 letters, digits, "-" and "_", starting with a letter or digit')
    .describe('The EKS cluster name, as in `aws eks list-clusters`'),
  region: z
    .string()
    .regex(REGION_PATTERN, 'must be an AWS region code such as eu-west-1')
    .describe('The AWS region the cluster runs in, e.g. eu-west-1'),
});

export const eksConfigSchema = z
  .object({
    roleArn: z
      .string()
      .regex(ROLE_ARN_PATTERN, 'must be an IAM role ARN: arn:aws:iam::123456789012:role/OpenTraceEKS (partition aws, aws-cn or aws-us-gov)')
      .describe('The IAM role OpenTrace assumes (Setup Steps 1-2)'),
    clusters: z.array(clusterSchema).min(1, 'add at least one cluster').max(50, 'at most 50 clusters per connection').describe('The clusters to read'),
    authMode: z
      .enum(AUTH_MODES)
      .default('web-identity')
      .describe('web-identity: the role trusts accounts.google.com for the OpenTrace client id (the guide). assume-role: the role trusts the OpenTrace AWS account with your ExternalId'),
    externalId: z
      .string()
      .max(1224)
      .optional()
      .describe('Read-only: OpenTrace always uses your tenant\'s ExternalId (GET /v1/integrations/aws-eks shows it); a different value here is ignored'),
  })
  .superRefine((config, ctx) => {
    const seen = new Map<string, number>();
    config.clusters.forEach((cluster, index) => {
      const key = `${cluster.region}/${cluster.name}`;
      const first = seen.get(key);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['clusters', index], message: `duplicate of clusters.${first}: ${cluster.name} in ${cluster.region} is already listed` });
      } else {
        seen.set(key, index);
      }
    });
    const role = parseRoleArn(config.roleArn);
    if (!role) return;
    config.clusters.forEach((cluster, index) => {
      if (!REGION_PATTERN.test(cluster.region)) return;
      const partition = partitionOfRegion(cluster.region);
      if (partition !== role.partition) {
        ctx.addIssue({
          code: 'custom',
          path: ['clusters', index, 'region'],
          message: `${cluster.region} is in the ${partition} partition but the role is in ${role.partition}: a role can only reach clusters in its own partition`,
        });
      }
    });
  });

export type EksConfig = z.output<typeof eksConfigSchema>;
export type EksClusterRef = EksConfig['clusters'][number];

/** Nothing secret is stored for EKS: the role is the credential. Any key sent here is refused. */
export const eksCredentialsSchema = z.strictObject({}).describe('Always {}: OpenTrace stores no AWS keys for EKS; it assumes your role');
export type EksCredentials = z.output<typeof eksCredentialsSchema>;
