/**
 * AWS EKS: Kubernetes cluster topology through an IAM role the customer creates (the guide's
 * "AWS EKS" section). Nothing secret is stored: OpenTrace assumes the role when it needs to.
 * See docs/integrations/aws-eks.md for the design, the ports and the local/cloud setup.
 */
import type { Connector } from '#connectors/types.ts';
import { policyFromEnv, type OutboundPolicy } from '#platform/outbound.ts';
import { defaultAwsClients, type AwsClients } from './aws.ts';
import { eksConfigSchema, eksCredentialsSchema, type EksConfig, type EksCredentials } from './config.ts';
import { setupFor, setupOptionsFromEnv, type EksSetup, type SetupOptions } from './setup.ts';
import { verifyEks } from './verify.ts';
import { tokenSourceFromEnv, type WebIdentityTokenSource } from './web-identity.ts';

export { eksConfigSchema, eksCredentialsSchema, type EksConfig, type EksCredentials } from './config.ts';
export { defaultAwsClients, stsEndpointFor, type AwsClients, type AwsCredentials } from './aws.ts';
export { setupFor, setupOptionsFromEnv, roleSessionName, LOCAL_PLACEHOLDER_CLIENT_ID, type EksSetup, type SetupOptions } from './setup.ts';
export { eksBearerToken, presignGetCallerIdentity, TOKEN_PREFIX, CLUSTER_ID_HEADER } from './token.ts';
export { KubernetesApi, KubernetesRequestError, type KubernetesTarget } from './kubernetes.ts';
export { fileTokenSource, staticTokenSource, tokenSourceFromEnv, type WebIdentityTokenSource } from './web-identity.ts';

/**
 * What the connector runs with. Every field is optional: what is left out is built from the
 * environment on each call (so a test or the local stack may set variables after import).
 */
export interface AwsEksDeps {
  clients?: AwsClients;
  /** `null` = explicitly none (web identity unavailable). */
  tokenSource?: WebIdentityTokenSource | null;
  policy?: OutboundPolicy;
  setup?: SetupOptions;
  concurrency?: number;
}

export type AwsEksConnector = Omit<Connector<EksConfig, EksCredentials>, 'setup'> & {
  setup(tenant: { tenantId: string; externalId: string }): EksSetup;
};

export function createAwsEksConnector(deps: AwsEksDeps = {}): AwsEksConnector {
  return {
    type: 'aws-eks',
    title: 'AWS EKS',
    auth: 'iam-role',
    provides: [
      'Cluster configuration',
      'Namespace and deployment information',
      'Service topology',
      'Pod and container status',
      'Resource relationships',
    ],
    configSchema: eksConfigSchema,
    credentialsSchema: eksCredentialsSchema,
    verify(ctx) {
      return verifyEks(ctx, {
        clients: deps.clients ?? defaultAwsClients(),
        tokenSource: deps.tokenSource === null ? undefined : (deps.tokenSource ?? tokenSourceFromEnv()),
        policy: deps.policy ?? policyFromEnv(),
        setup: deps.setup ?? setupOptionsFromEnv(),
        concurrency: deps.concurrency ?? 5,
      });
    },
    setup(tenant) {
      return setupFor(tenant, deps.setup ?? setupOptionsFromEnv());
    },
  };
}

export const awsEksConnector: AwsEksConnector = createAwsEksConnector();
