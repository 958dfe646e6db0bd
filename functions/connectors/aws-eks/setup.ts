/**
 * The guide's AWS EKS Setup Steps, rendered for one tenant (GET /v1/integrations/aws-eks →
 * `setup`): the IAM policy (Step 1), the role's trust policy (Step 2: web identity with the
 * OpenTrace client id as in the guide, or AssumeRole from the OpenTrace AWS account with the
 * tenant's ExternalId) and the access entry (Step 3). Plain JSON objects, ready to paste.
 */

/** Used when OPENTRACE_GOOGLE_CLIENT_ID is unset (local stack, tests): clearly not a real client id. */
export const LOCAL_PLACEHOLDER_CLIENT_ID = 'opentrace-local-client-id';
export const VIEW_POLICY_NAME = 'AmazonEKSViewPolicy';
export const VIEW_POLICY_ARN = `arn:aws:eks::aws:cluster-access-policy/${VIEW_POLICY_NAME}`;
export const ACCESS_ENTRY_MODES = ['API', 'API_AND_CONFIG_MAP'] as const;

export interface SetupOptions {
  /** The OpenTrace Google client id: the `aud`/`azp` of OpenTrace's ID tokens. */
  clientId: string;
  /** The OpenTrace AWS account that calls sts:AssumeRole (assume-role mode only). */
  accountId?: string;
}

export function setupOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): SetupOptions {
  const accountId = env.OPENTRACE_AWS_ACCOUNT_ID;
  return {
    clientId: env.OPENTRACE_GOOGLE_CLIENT_ID || LOCAL_PLACEHOLDER_CLIENT_ID,
    ...(accountId ? { accountId } : {}),
  };
}

/** The session name OpenTrace uses for a tenant (≤ 64 characters, as STS allows). */
export function roleSessionName(tenantId: string): string {
  return `opentrace-${tenantId}`.slice(0, 64);
}

export const IAM_POLICY = {
  Version: '2012-10-17',
  Statement: [
    {
      Effect: 'Allow',
      Action: ['eks:DescribeCluster', 'eks:ListClusters', 'eks:AccessKubernetesApi'],
      Resource: '*',
    },
  ],
} as const;

export function webIdentityTrustPolicy(clientId: string, sessionName: string) {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Federated: 'accounts.google.com' },
        Action: 'sts:AssumeRoleWithWebIdentity',
        Condition: {
          StringEquals: {
            'accounts.google.com:aud': clientId,
            // OpenTrace's token is the same for every tenant; the session name is not: it is set
            // from the authenticated tenant, so another tenant cannot use this role.
            'sts:RoleSessionName': sessionName,
          },
        },
      },
    ],
  };
}

export function assumeRoleTrustPolicy(accountId: string, externalId: string) {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { AWS: `arn:aws:iam::${accountId}:root` },
        Action: 'sts:AssumeRole',
        Condition: { StringEquals: { 'sts:ExternalId': externalId } },
      },
    ],
  };
}

export function setupFor(tenant: { tenantId: string; externalId: string }, options: SetupOptions) {
  const sessionName = roleSessionName(tenant.tenantId);
  const warnings: string[] = [];
  if (options.clientId === LOCAL_PLACEHOLDER_CLIENT_ID) {
    warnings.push(`OPENTRACE_GOOGLE_CLIENT_ID is not set on this installation: "${LOCAL_PLACEHOLDER_CLIENT_ID}" is a placeholder, not a client id AWS will ever see.`);
  }
  return {
    roleSessionName: sessionName,
    iamPolicy: IAM_POLICY,
    /** The guide's default (authMode "web-identity"). */
    trustPolicy: webIdentityTrustPolicy(options.clientId, sessionName),
    webIdentity: {
      authMode: 'web-identity',
      federatedPrincipal: 'accounts.google.com',
      clientId: options.clientId,
      trustPolicy: webIdentityTrustPolicy(options.clientId, sessionName),
    },
    assumeRole: options.accountId
      ? {
          authMode: 'assume-role',
          available: true,
          accountId: options.accountId,
          externalId: tenant.externalId,
          trustPolicy: assumeRoleTrustPolicy(options.accountId, tenant.externalId),
        }
      : {
          authMode: 'assume-role',
          available: false,
          externalId: tenant.externalId,
          note: 'This installation has no AWS account configured for AssumeRole (OPENTRACE_AWS_ACCOUNT_ID): use web identity.',
        },
    accessEntry: {
      principalArn: '<the role ARN from Step 2>',
      accessPolicyArn: VIEW_POLICY_ARN,
      accessScope: { type: 'cluster' },
      requiredAuthenticationMode: [...ACCESS_ENTRY_MODES],
      commands: [
        'aws eks create-access-entry --region <region> --cluster-name <cluster> --principal-arn <role-arn>',
        `aws eks associate-access-policy --region <region> --cluster-name <cluster> --principal-arn <role-arn> --policy-arn ${VIEW_POLICY_ARN} --access-scope type=cluster`,
      ],
      ifAuthenticationModeIsConfigMap: 'aws eks update-cluster-config --region <region> --name <cluster> --access-config authenticationMode=API_AND_CONFIG_MAP',
    },
    steps: [
      'Step 1: create an IAM policy with iamPolicy.',
      `Step 2: create an IAM role with trustPolicy (web identity, accounts.google.com:aud = ${options.clientId}, session name ${sessionName})` +
        (options.accountId ? ` or with assumeRole.trustPolicy (account ${options.accountId}, ExternalId ${tenant.externalId}, then connect with authMode "assume-role")` : '') +
        ', and attach the Step 1 policy to it.',
      `Step 3: for each cluster, create an access entry for the role and associate ${VIEW_POLICY_NAME} (cluster scope); the cluster's authentication mode must be API or API_AND_CONFIG_MAP.`,
      'Step 4: POST /v1/connections with { "type": "aws-eks", "config": { "roleArn", "clusters": [{ "name", "region" }] }, "credentials": {} }.',
    ],
    ...(warnings.length ? { warnings } : {}),
  };
}

export type EksSetup = ReturnType<typeof setupFor>;
