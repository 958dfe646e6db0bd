/**
 * The AWS EKS live check, as the guide's Setup Steps build it up:
 *   1. assume the customer's role (web identity, or AssumeRole with the tenant's ExternalId);
 *   2. per cluster, eks:DescribeCluster in its region → endpoint, CA, authentication mode;
 *   3. a presigned-STS bearer token (k8s-aws-v1.…) for that cluster;
 *   4. one Kubernetes API call (list one namespace) proving the access entry works.
 * Every failure says what to change. Session credentials, the web identity token and bearer
 * tokens never appear in a check, a log line or an error.
 */
import { DescribeClusterCommand, type Cluster } from '@aws-sdk/client-eks';
import { AssumeRoleCommand, AssumeRoleWithWebIdentityCommand, type Credentials as StsCredentials } from '@aws-sdk/client-sts';
import pLimit from 'p-limit';
import type { VerifyCheck, VerifyContext, VerifyResult } from '#connectors/types.ts';
import type { OutboundPolicy } from '#platform/outbound.ts';
import { describeAwsError, type AwsClients, type AwsCredentials } from './aws.ts';
import type { EksClusterRef, EksConfig, EksCredentials } from './config.ts';
import { KubernetesApi, KubernetesRequestError } from './kubernetes.ts';
import { ACCESS_ENTRY_MODES, roleSessionName, VIEW_POLICY_NAME, type SetupOptions } from './setup.ts';
import { eksBearerToken } from './token.ts';
import { WebIdentityTokenUnavailableError, type WebIdentityTokenSource } from './web-identity.ts';

export interface EksVerifyDeps {
  clients: AwsClients;
  /** OpenTrace's web identity token (web-identity mode); undefined when this installation has none. */
  tokenSource: WebIdentityTokenSource | undefined;
  policy: OutboundPolicy;
  /** Client id and account id, for the hints in trust-policy failures. */
  setup: SetupOptions;
  /** Clusters checked at once. */
  concurrency: number;
}

/** Session length asked of STS: the minimum; a check needs seconds, a sync slice minutes. */
const SESSION_SECONDS = 900;

export interface DiscoveredCluster {
  name: string;
  region: string;
  arn?: string;
  version?: string;
  platformVersion?: string;
  status?: string;
  endpoint?: string;
  authenticationMode?: string;
}

type AssumeOutcome = { ok: true; credentials: AwsCredentials; assumedRoleArn: string; check: VerifyCheck } | { ok: false; check: VerifyCheck };

const ASSUME_CHECK = 'assume role';

function toCredentials(credentials: StsCredentials | undefined): AwsCredentials | undefined {
  if (!credentials?.AccessKeyId || !credentials.SecretAccessKey) return undefined;
  return {
    accessKeyId: credentials.AccessKeyId,
    secretAccessKey: credentials.SecretAccessKey,
    ...(credentials.SessionToken ? { sessionToken: credentials.SessionToken } : {}),
    ...(credentials.Expiration ? { expiration: credentials.Expiration } : {}),
  };
}

function trustHint(config: EksConfig, externalId: string, deps: EksVerifyDeps, sessionName: string): string {
  if (config.authMode === 'assume-role') {
    const principal = deps.setup.accountId ? `arn:aws:iam::${deps.setup.accountId}:root` : 'the OpenTrace AWS account';
    return `It must allow sts:AssumeRole for ${principal} with sts:ExternalId = ${externalId} (a missing or different ExternalId is refused the same way).`;
  }
  return `It must allow sts:AssumeRoleWithWebIdentity for the federated principal accounts.google.com with accounts.google.com:aud = ${deps.setup.clientId} and sts:RoleSessionName = ${sessionName}.`;
}

async function assumeRole(ctx: VerifyContext<EksConfig, EksCredentials>, deps: EksVerifyDeps): Promise<AssumeOutcome> {
  const { config } = ctx;
  const region = config.clusters[0]!.region;
  const sessionName = roleSessionName(ctx.tenantId);
  const fail = (detail: string): AssumeOutcome => ({ ok: false, check: { name: ASSUME_CHECK, ok: false, detail } });
  const stsEndpoint = deps.clients.stsEndpoint(region).origin;
  const sts = deps.clients.sts(region);
  try {
    let response;
    if (config.authMode === 'web-identity') {
      if (!deps.tokenSource) {
        return fail(
          'This OpenTrace installation has no web identity token configured (OPENTRACE_WEB_IDENTITY_TOKEN_FILE), so it cannot use web identity: connect with authMode "assume-role", or ask the operator to configure the token.',
        );
      }
      let token: string;
      try {
        token = await deps.tokenSource.token();
      } catch (error) {
        if (error instanceof WebIdentityTokenUnavailableError) return fail(`${error.message}: an OpenTrace installation problem, not your role's; connect with authMode "assume-role" meanwhile.`);
        throw error;
      }
      response = await sts.send(
        new AssumeRoleWithWebIdentityCommand({ RoleArn: config.roleArn, RoleSessionName: sessionName, WebIdentityToken: token, DurationSeconds: SESSION_SECONDS }),
      );
    } else {
      response = await sts.send(
        new AssumeRoleCommand({ RoleArn: config.roleArn, RoleSessionName: sessionName, ExternalId: ctx.externalId, DurationSeconds: SESSION_SECONDS }),
      );
    }
    const credentials = toCredentials(response.Credentials);
    if (!credentials) return fail(`AWS STS answered without credentials for ${config.roleArn}; try again.`);
    const assumedRoleArn = response.AssumedRoleUser?.Arn ?? config.roleArn;
    const how = config.authMode === 'web-identity' ? 'web identity (accounts.google.com)' : `AssumeRole with ExternalId ${ctx.externalId}`;
    const ignored = config.authMode === 'assume-role' && config.externalId && config.externalId !== ctx.externalId
      ? ` The externalId in the config (${config.externalId}) is ignored: OpenTrace always sends your tenant's.`
      : '';
    return { ok: true, credentials, assumedRoleArn, check: { name: ASSUME_CHECK, ok: true, detail: `OpenTrace assumed ${config.roleArn} with ${how} as ${assumedRoleArn}.${ignored}` } };
  } catch (error) {
    const failure = describeAwsError(error);
    const hint = trustHint(config, ctx.externalId, deps, sessionName);
    if (failure.network) return fail(`AWS STS at ${stsEndpoint} is unreachable (${failure.code}); try again.`);
    switch (failure.code) {
      case 'AccessDenied':
        return fail(`AWS refused to let OpenTrace assume ${config.roleArn}: check the role's trust policy (AccessDenied). ${hint} GET /v1/integrations/aws-eks shows it filled in.`);
      case 'InvalidIdentityToken':
      case 'IDPRejectedClaim':
        return fail(`AWS did not accept OpenTrace's identity token for ${config.roleArn} (${failure.code}): check the role's trust policy. ${hint}`);
      case 'ExpiredTokenException':
      case 'IDPCommunicationError':
        return fail(`AWS could not use OpenTrace's web identity token (${failure.code}): an OpenTrace-side problem; try again in a minute.`);
      case 'RegionDisabledException':
        return fail(`AWS STS is not activated in ${region} for the role's account (RegionDisabledException): activate ${region} under IAM > Account settings.`);
      case 'ValidationError':
        return fail(`AWS STS refused the request for ${config.roleArn} (ValidationError): check the role ARN.`);
      case 'CredentialsProviderError':
      case 'InvalidClientTokenId':
      case 'SignatureDoesNotMatch':
      case 'UnrecognizedClientException':
        return fail(`OpenTrace could not call sts:AssumeRole with its own AWS credentials (${failure.code}): an OpenTrace installation problem, not your role's; connect with authMode "web-identity" meanwhile.`);
      default:
        return fail(`AWS STS refused to let OpenTrace assume ${config.roleArn} (${failure.code}${failure.status ? `, ${failure.status}` : ''}). ${hint}`);
    }
  } finally {
    sts.destroy();
  }
}

interface ClusterOutcome {
  checks: VerifyCheck[];
  discovered: DiscoveredCluster;
  ok: boolean;
}

function clusterLabel(cluster: EksClusterRef): string {
  return `cluster ${cluster.name} (${cluster.region})`;
}

async function describe(cluster: EksClusterRef, credentials: AwsCredentials, config: EksConfig, deps: EksVerifyDeps): Promise<{ cluster?: Cluster; check: VerifyCheck }> {
  const name = `${clusterLabel(cluster)}: describe`;
  const eks = deps.clients.eks(cluster.region, credentials);
  try {
    const response = await eks.send(new DescribeClusterCommand({ name: cluster.name }));
    const found = response.cluster;
    if (!found) return { check: { name, ok: false, detail: `AWS EKS answered without a cluster for ${cluster.name} in ${cluster.region}; try again.` } };
    if (found.status && !['ACTIVE', 'UPDATING'].includes(found.status)) {
      return { cluster: found, check: { name, ok: false, detail: `cluster ${cluster.name} in ${cluster.region} is ${found.status}: connect it once it is ACTIVE.` } };
    }
    if (!found.endpoint || !found.certificateAuthority?.data) {
      return { cluster: found, check: { name, ok: false, detail: `cluster ${cluster.name} in ${cluster.region} has no API endpoint or CA yet (${found.status ?? 'unknown status'}); try again once it is ACTIVE.` } };
    }
    return {
      cluster: found,
      check: { name, ok: true, detail: `cluster ${cluster.name} in ${cluster.region}: ${found.status ?? 'ACTIVE'}, Kubernetes ${found.version ?? '?'}, API endpoint ${found.endpoint}.` },
    };
  } catch (error) {
    const failure = describeAwsError(error);
    if (failure.network) return { check: { name, ok: false, detail: `AWS EKS in ${cluster.region} is unreachable (${failure.code}); try again.` } };
    switch (failure.code) {
      case 'ResourceNotFoundException':
        return { check: { name, ok: false, detail: `cluster ${cluster.name} not found in ${cluster.region}: check the name and the region (aws eks list-clusters --region ${cluster.region}).` } };
      case 'AccessDeniedException':
        return { check: { name, ok: false, detail: `the role lacks eks:DescribeCluster on cluster ${cluster.name} in ${cluster.region} (AccessDeniedException): attach the Step 1 policy to ${config.roleArn}.` } };
      default:
        return { check: { name, ok: false, detail: `AWS EKS refused DescribeCluster for ${cluster.name} in ${cluster.region} (${failure.code}${failure.status ? `, ${failure.status}` : ''}).` } };
    }
  } finally {
    eks.destroy();
  }
}

type KubeOutcome = { ok: true; detail: string } | { ok: false; status?: number; detail: string };

async function callKubernetes(cluster: EksClusterRef, found: Cluster, credentials: AwsCredentials, config: EksConfig, deps: EksVerifyDeps): Promise<KubeOutcome> {
  const who = `cluster ${cluster.name}`;
  if (found.resourcesVpcConfig?.endpointPublicAccess === false && !deps.policy.allowPrivateNetworks) {
    return {
      ok: false,
      detail: `${who} has only a private API endpoint: OpenTrace reaches the Kubernetes API over the public endpoint. Enable public endpoint access (you can restrict publicAccessCidrs to OpenTrace's addresses).`,
    };
  }
  const api = new KubernetesApi(
    {
      clusterName: cluster.name,
      endpoint: found.endpoint!,
      caData: found.certificateAuthority!.data!,
      token: () => eksBearerToken({ clusterName: cluster.name, region: cluster.region, credentials, stsEndpoint: deps.clients.stsEndpoint(cluster.region) }),
    },
    deps.policy,
  );
  try {
    const response = await api.get('/api/v1/namespaces?limit=1');
    if (response.status === 200) return { ok: true, detail: `${who}: the access entry works: OpenTrace listed namespaces through ${found.endpoint}.` };
    if (response.status === 401) {
      return {
        ok: false,
        status: 401,
        detail: `${who}: the token was not accepted — is the cluster's authentication mode API (or API_AND_CONFIG_MAP), and does it have an access entry for ${config.roleArn}? (401)`,
      };
    }
    if (response.status === 403) {
      return {
        ok: false,
        status: 403,
        detail: `${who}: access entry missing or lacks ${VIEW_POLICY_NAME} (403): associate ${VIEW_POLICY_NAME} (cluster scope) with the access entry for ${config.roleArn}.`,
      };
    }
    if (response.status === 429 || response.status >= 500) {
      return { ok: false, status: response.status, detail: `${who}: the Kubernetes API is busy or failing (${response.status}); try again.` };
    }
    return { ok: false, status: response.status, detail: `${who}: the Kubernetes API answered ${response.status} to listing namespaces.` };
  } catch (error) {
    if (!(error instanceof KubernetesRequestError)) throw error;
    const hints: Record<KubernetesRequestError['kind'], string> = {
      blocked: ' OpenTrace may not contact that address (is the endpoint private-only?); enable public endpoint access.',
      timeout: " Is public endpoint access enabled, and are OpenTrace's addresses allowed in publicAccessCidrs?",
      tls: '',
      unreachable: " Is public endpoint access enabled, and are OpenTrace's addresses allowed in publicAccessCidrs?",
    };
    return { ok: false, detail: `${who}: ${error.message}.${hints[error.kind]}` };
  } finally {
    await api.close();
  }
}

async function checkCluster(cluster: EksClusterRef, credentials: AwsCredentials, config: EksConfig, deps: EksVerifyDeps): Promise<ClusterOutcome> {
  const discovered: DiscoveredCluster = { name: cluster.name, region: cluster.region };
  const described = await describe(cluster, credentials, config, deps);
  const checks: VerifyCheck[] = [described.check];
  const found = described.cluster;
  if (found) {
    Object.assign(discovered, {
      ...(found.arn ? { arn: found.arn } : {}),
      ...(found.version ? { version: found.version } : {}),
      ...(found.platformVersion ? { platformVersion: found.platformVersion } : {}),
      ...(found.status ? { status: found.status } : {}),
      ...(found.endpoint ? { endpoint: found.endpoint } : {}),
      authenticationMode: found.accessConfig?.authenticationMode ?? 'CONFIG_MAP',
    });
  }
  if (!found || !described.check.ok) return { checks, discovered, ok: false };

  const mode = found.accessConfig?.authenticationMode ?? 'CONFIG_MAP';
  const modeCheckName = `${clusterLabel(cluster)}: authentication mode`;
  const kube = await callKubernetes(cluster, found, credentials, config, deps);
  const accessEntries = (ACCESS_ENTRY_MODES as readonly string[]).includes(mode);
  let modeCheck: VerifyCheck;
  if (accessEntries) {
    modeCheck = { name: modeCheckName, ok: true, detail: `${mode}: access entries are honoured.` };
  } else if (kube.ok) {
    modeCheck = {
      name: modeCheckName,
      ok: true,
      detail: `${mode}: access entries are not used, but the role is mapped in the aws-auth ConfigMap and can read. AWS recommends access entries: switch to API_AND_CONFIG_MAP.`,
    };
  } else {
    modeCheck = {
      name: modeCheckName,
      ok: false,
      detail: `cluster ${cluster.name} uses authentication mode ${mode}: access entries (Setup Step 3) need API or API_AND_CONFIG_MAP. Run: aws eks update-cluster-config --region ${cluster.region} --name ${cluster.name} --access-config authenticationMode=API_AND_CONFIG_MAP`,
    };
  }
  checks.push(modeCheck, { name: `${clusterLabel(cluster)}: kubernetes api`, ok: kube.ok, detail: kube.detail });
  return { checks, discovered, ok: modeCheck.ok && kube.ok };
}

export async function verifyEks(ctx: VerifyContext<EksConfig, EksCredentials>, deps: EksVerifyDeps): Promise<VerifyResult> {
  const { config } = ctx;
  const assumed = await assumeRole(ctx, deps);
  if (!assumed.ok) {
    ctx.logger.info('aws-eks check failed at assume role', { authMode: config.authMode, roleArn: config.roleArn });
    return { ok: false, checks: [assumed.check] };
  }
  const limit = pLimit(Math.max(1, deps.concurrency));
  const outcomes = await Promise.all(config.clusters.map((cluster) => limit(() => checkCluster(cluster, assumed.credentials, config, deps))));
  const ok = outcomes.every((outcome) => outcome.ok);
  ctx.logger.info('aws-eks check done', { authMode: config.authMode, clusters: config.clusters.length, ok });
  return {
    ok,
    checks: [assumed.check, ...outcomes.flatMap((outcome) => outcome.checks)],
    discovered: {
      externalId: ctx.externalId,
      assumedRoleArn: assumed.assumedRoleArn,
      discoveredClusters: outcomes.map((outcome) => outcome.discovered),
    },
  };
}
