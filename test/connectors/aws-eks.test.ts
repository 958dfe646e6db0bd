/**
 * The AWS EKS connector end to end against the STS, EKS and Kubernetes fakes, with the real SDK
 * clients pointed at them through the SDK's own AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL_EKS.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import {
  awsEksConnector,
  createAwsEksConnector,
  eksConfigSchema,
  eksCredentialsSchema,
  fileTokenSource,
  KubernetesApi,
  LOCAL_PLACEHOLDER_CLIENT_ID,
  setupFor,
  setupOptionsFromEnv,
  staticTokenSource,
  type AwsEksDeps,
  type EksConfig,
} from '#connectors/aws-eks/index.ts';
import type { Logger, VerifyResult } from '#connectors/types.ts';
import type { OutboundPolicy } from '#platform/outbound.ts';
import { DescribeClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { AwsFakeState, DEMO_ROLE_ARN, startEksFake, startEksFakes, startStsFake, type RunningFake } from '../fakes/aws.ts';
import { startKubernetesFake, type KubernetesFake } from '../fakes/kubernetes.ts';

const ACCOUNT = '111122223333';
const ROLE = `arn:aws:iam::${ACCOUNT}:role/OpenTraceEKS`;
const UNTRUSTING_ROLE = `arn:aws:iam::${ACCOUNT}:role/SomeoneElsesRole`;
const NO_DESCRIBE_ROLE = `arn:aws:iam::${ACCOUNT}:role/OpenTraceNoDescribe`;
const WEB_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.opentrace-google-id-token.signature';
const EXTERNAL_ID = 'opentrace-acme-external-id-0123456789';
const TENANT = 'acme';
const SERVICE_SECRET = process.env.AWS_SECRET_ACCESS_KEY ?? 'test-secret-key';

const policy: OutboundPolicy = { allowPrivateNetworks: true, connectTimeoutMs: 2_000, totalTimeoutMs: 5_000, maxRedirects: 0 };

let sts: RunningFake;
let eks: RunningFake;
let kube: KubernetesFake;
let state: AwsFakeState;
const results: VerifyResult[] = [];
const logLines: string[] = [];
const savedEnv = { sts: process.env.AWS_ENDPOINT_URL_STS, eks: process.env.AWS_ENDPOINT_URL_EKS };

const logger = Object.fromEntries(
  (['debug', 'info', 'warn', 'error'] as const).map((level) => [level, (...args: unknown[]) => void logLines.push(JSON.stringify({ level, args }))]),
) as unknown as Logger;

function connector(deps: AwsEksDeps = {}) {
  return createAwsEksConnector({ tokenSource: staticTokenSource(WEB_TOKEN), policy, setup: { clientId: 'opentrace-client-id', accountId: '999988887777' }, ...deps });
}

async function verify(config: Partial<EksConfig> & { clusters: EksConfig['clusters'] }, options: { tenantId?: string; externalId?: string; deps?: AwsEksDeps } = {}) {
  const parsed = eksConfigSchema.parse({ roleArn: ROLE, ...config });
  const result = await connector(options.deps).verify({
    tenantId: options.tenantId ?? TENANT,
    externalId: options.externalId ?? EXTERNAL_ID,
    config: parsed,
    credentials: {},
    fetch: async () => {
      throw new Error('aws-eks must not use the generic outbound fetch');
    },
    logger,
  });
  results.push(result);
  return result;
}

const check = (result: VerifyResult, name: string) => result.checks.find((c) => c.name === name);
const names = (result: VerifyResult) => result.checks.map((c) => `${c.ok ? 'ok' : 'FAIL'} ${c.name}`);

beforeAll(async () => {
  state = new AwsFakeState({
    roles: [
      { arn: ROLE, webIdentityToken: WEB_TOKEN, sessionName: `opentrace-${TENANT}`, externalId: EXTERNAL_ID },
      { arn: NO_DESCRIBE_ROLE, webIdentityToken: WEB_TOKEN, externalId: EXTERNAL_ID, describeCluster: false },
      { arn: UNTRUSTING_ROLE },
    ],
  });
  sts = await startStsFake(state);
  eks = await startEksFake(state);
  kube = await startKubernetesFake({
    stsUrl: sts.url,
    clusters: [
      { name: 'prod-eu', authenticationMode: 'API_AND_CONFIG_MAP', accessEntries: { [ROLE]: ['AmazonEKSViewPolicy'] } },
      { name: 'prod-us', authenticationMode: 'API', accessEntries: { [ROLE]: ['AmazonEKSViewPolicy'] } },
      { name: 'no-entry', authenticationMode: 'API', accessEntries: {} },
      { name: 'no-policy', authenticationMode: 'API', forbidden: true },
      { name: 'legacy', authenticationMode: 'CONFIG_MAP' },
      { name: 'legacy-mapped', authenticationMode: 'CONFIG_MAP', configMapRoles: [ROLE] },
    ],
  });
  const cluster = (name: string, region: string, extra: Record<string, unknown> = {}) => ({ name, region, endpoint: kube.endpointFor(name), caData: kube.caData, ...extra });
  state.setCluster(cluster('prod-eu', 'eu-west-1', { authenticationMode: 'API_AND_CONFIG_MAP' }));
  state.setCluster(cluster('prod-us', 'us-east-1', { authenticationMode: 'API' }));
  state.setCluster(cluster('no-entry', 'eu-west-1', { authenticationMode: 'API' }));
  state.setCluster(cluster('no-policy', 'eu-west-1', { authenticationMode: 'API' }));
  state.setCluster(cluster('legacy', 'eu-west-1', { authenticationMode: 'CONFIG_MAP' }));
  state.setCluster(cluster('legacy-mapped', 'eu-west-1')); // no accessConfig at all: an old cluster, CONFIG_MAP
  state.setCluster(cluster('creating', 'eu-west-1', { status: 'CREATING', authenticationMode: 'API' }));
  state.setCluster(cluster('private', 'eu-west-1', { authenticationMode: 'API', endpointPublicAccess: false }));
  process.env.AWS_ENDPOINT_URL_STS = sts.url;
  process.env.AWS_ENDPOINT_URL_EKS = eks.url;
});

afterAll(async () => {
  process.env.AWS_ENDPOINT_URL_STS = savedEnv.sts;
  process.env.AWS_ENDPOINT_URL_EKS = savedEnv.eks;
  if (savedEnv.sts === undefined) delete process.env.AWS_ENDPOINT_URL_STS;
  if (savedEnv.eks === undefined) delete process.env.AWS_ENDPOINT_URL_EKS;
  await Promise.all([sts?.close(), eks?.close(), kube?.close()]);
});

describe.each(['web-identity', 'assume-role'] as const)('aws-eks verify with authMode %s', (authMode) => {
  it('assumes the role, describes each cluster and reads the Kubernetes API with the access entry', async () => {
    const result = await verify({ authMode, clusters: [{ name: 'prod-eu', region: 'eu-west-1' }, { name: 'prod-us', region: 'us-east-1' }] });
    expect(names(result)).toEqual([
      'ok assume role',
      'ok cluster prod-eu (eu-west-1): describe',
      'ok cluster prod-eu (eu-west-1): authentication mode',
      'ok cluster prod-eu (eu-west-1): kubernetes api',
      'ok cluster prod-us (us-east-1): describe',
      'ok cluster prod-us (us-east-1): authentication mode',
      'ok cluster prod-us (us-east-1): kubernetes api',
    ]);
    expect(result.ok).toBe(true);
    expect(check(result, 'assume role')?.detail).toContain(`assumed-role/OpenTraceEKS/opentrace-${TENANT}`);
    expect(check(result, 'cluster prod-eu (eu-west-1): describe')?.detail).toContain(kube.endpointFor('prod-eu'));
    expect(result.discovered).toMatchObject({
      externalId: EXTERNAL_ID,
      assumedRoleArn: `arn:aws:sts::${ACCOUNT}:assumed-role/OpenTraceEKS/opentrace-${TENANT}`,
      discoveredClusters: [
        { name: 'prod-eu', region: 'eu-west-1', arn: `arn:aws:eks:eu-west-1:${ACCOUNT}:cluster/prod-eu`, version: '1.31', authenticationMode: 'API_AND_CONFIG_MAP' },
        { name: 'prod-us', region: 'us-east-1', authenticationMode: 'API' },
      ],
    });
    const call = state.requests.filter((r) => r.service === 'sts' && r.method === 'POST').at(-1)!;
    expect(call.action).toBe(authMode === 'web-identity' ? 'AssumeRoleWithWebIdentity' : 'AssumeRole');
    expect(call.params).toMatchObject({ RoleArn: ROLE, RoleSessionName: `opentrace-${TENANT}` });
    if (authMode === 'assume-role') expect(call.params.ExternalId).toBe(EXTERNAL_ID);
    else expect(call.params.WebIdentityToken).toBe(WEB_TOKEN);
  });

  it('explains a trust policy that does not trust OpenTrace (AccessDenied)', async () => {
    const result = await verify({ authMode, roleArn: UNTRUSTING_ROLE, clusters: [{ name: 'prod-eu', region: 'eu-west-1' }] });
    expect(result.ok).toBe(false);
    expect(result.checks).toHaveLength(1);
    expect(result.checks[0]!.detail).toMatch(new RegExp(`^AWS refused to let OpenTrace assume ${UNTRUSTING_ROLE}: check the role's trust policy \\(AccessDenied\\)`));
    expect(result.checks[0]!.detail).toContain(authMode === 'web-identity' ? 'accounts.google.com:aud = opentrace-client-id' : `sts:ExternalId = ${EXTERNAL_ID}`);
  });

  it('names a cluster that does not exist in that region', async () => {
    const result = await verify({ authMode, clusters: [{ name: 'prod-eu', region: 'eu-west-1' }, { name: 'prod-eu', region: 'us-west-2' }] });
    expect(result.ok).toBe(false);
    expect(check(result, 'cluster prod-eu (eu-west-1): kubernetes api')?.ok).toBe(true);
    expect(check(result, 'cluster prod-eu (us-west-2): describe')).toMatchObject({ ok: false, detail: expect.stringContaining('cluster prod-eu not found in us-west-2') });
    expect(names(result).filter((n) => n.includes('us-west-2'))).toEqual(['FAIL cluster prod-eu (us-west-2): describe']);
  });

  it('says when the role lacks eks:DescribeCluster', async () => {
    const result = await verify({ authMode, roleArn: NO_DESCRIBE_ROLE, clusters: [{ name: 'prod-eu', region: 'eu-west-1' }] }, { tenantId: 'globex' });
    expect(check(result, 'cluster prod-eu (eu-west-1): describe')).toMatchObject({ ok: false, detail: expect.stringContaining('the role lacks eks:DescribeCluster') });
  });

  it('reports a missing access policy as 403 and a missing access entry as 401', async () => {
    const result = await verify({ authMode, clusters: [{ name: 'no-policy', region: 'eu-west-1' }, { name: 'no-entry', region: 'eu-west-1' }] });
    expect(result.ok).toBe(false);
    expect(check(result, 'cluster no-policy (eu-west-1): kubernetes api')).toEqual({
      name: 'cluster no-policy (eu-west-1): kubernetes api',
      ok: false,
      detail: expect.stringMatching(/^cluster no-policy: access entry missing or lacks AmazonEKSViewPolicy \(403\)/),
    });
    expect(check(result, 'cluster no-entry (eu-west-1): kubernetes api')?.detail).toMatch(
      new RegExp(`^cluster no-entry: the token was not accepted — is the cluster's authentication mode API .*access entry for ${ROLE}\\? \\(401\\)`),
    );
  });

  it('explains that access entries need authentication mode API or API_AND_CONFIG_MAP', async () => {
    const result = await verify({ authMode, clusters: [{ name: 'legacy', region: 'eu-west-1' }] });
    expect(result.ok).toBe(false);
    expect(check(result, 'cluster legacy (eu-west-1): authentication mode')).toMatchObject({
      ok: false,
      detail: expect.stringContaining('uses authentication mode CONFIG_MAP: access entries (Setup Step 3) need API or API_AND_CONFIG_MAP'),
    });
    expect(check(result, 'cluster legacy (eu-west-1): authentication mode')?.detail).toContain('--access-config authenticationMode=API_AND_CONFIG_MAP');
    expect(check(result, 'cluster legacy (eu-west-1): kubernetes api')?.ok).toBe(false);
  });
});

describe('aws-eks verify: tenant binding', () => {
  it('refuses AssumeRole with another external id (the confused-deputy defence)', async () => {
    const result = await verify({ authMode: 'assume-role', clusters: [{ name: 'prod-eu', region: 'eu-west-1' }] }, { externalId: 'opentrace-someone-else' });
    expect(result).toMatchObject({ ok: false, checks: [{ name: 'assume role', ok: false }] });
    expect(result.checks[0]!.detail).toMatch(/^AWS refused to let OpenTrace assume .*\(AccessDenied\)/);
    expect(result.checks[0]!.detail).toContain('sts:ExternalId = opentrace-someone-else');
    expect(state.requests.filter((r) => r.action === 'AssumeRole').at(-1)).toMatchObject({ status: 403, errorCode: 'AccessDenied', params: { ExternalId: 'opentrace-someone-else' } });
  });

  it("always sends the tenant's external id, whatever the config says", async () => {
    const result = await verify({ authMode: 'assume-role', externalId: 'typed-by-the-user', clusters: [{ name: 'prod-eu', region: 'eu-west-1' }] });
    expect(result.ok).toBe(true);
    expect(state.requests.filter((r) => r.action === 'AssumeRole').at(-1)?.params.ExternalId).toBe(EXTERNAL_ID);
    expect(check(result, 'assume role')?.detail).toContain('is ignored');
    expect(result.discovered?.externalId).toBe(EXTERNAL_ID);
  });

  it("refuses web identity for another tenant's role (session name condition)", async () => {
    const result = await verify({ clusters: [{ name: 'prod-eu', region: 'eu-west-1' }] }, { tenantId: 'globex' });
    expect(result.ok).toBe(false);
    expect(result.checks[0]!.detail).toContain('sts:RoleSessionName = opentrace-globex');
  });
});

describe('aws-eks verify: the token the Kubernetes API receives', () => {
  it('is k8s-aws-v1. + unpadded base64url of a presigned GetCallerIdentity URL signing x-k8s-aws-id', async () => {
    const before = kube.requests.length;
    const result = await verify({ clusters: [{ name: 'prod-eu', region: 'eu-west-1' }] });
    expect(result.ok).toBe(true);
    const received = kube.requests.slice(before).filter((r) => r.cluster === 'prod-eu');
    expect(received).toHaveLength(1);
    const request = received[0]!;
    expect(request).toMatchObject({ method: 'GET', path: '/api/v1/namespaces', query: { limit: '1' }, status: 200 });
    const token = request.authorization!.replace(/^Bearer /, '');
    expect(token.startsWith('k8s-aws-v1.')).toBe(true);
    const payload = token.slice('k8s-aws-v1.'.length);
    expect(payload).toMatch(/^[A-Za-z0-9_-]+$/); // base64url, no '=' padding
    const url = new URL(Buffer.from(payload, 'base64url').toString('utf8'));
    expect(url.origin).toBe(sts.url);
    expect(url.pathname).toBe('/');
    const q = url.searchParams;
    expect(q.get('Action')).toBe('GetCallerIdentity');
    expect(q.get('Version')).toBe('2011-06-15');
    expect(q.get('X-Amz-Algorithm')).toBe('AWS4-HMAC-SHA256');
    expect(q.get('X-Amz-Expires')).toBe('60');
    expect(q.get('X-Amz-SignedHeaders')!.split(';')).toEqual(expect.arrayContaining(['host', 'x-k8s-aws-id']));
    expect(q.get('X-Amz-Credential')).toMatch(/^ASIA[0-9A-F]{16}\/\d{8}\/eu-west-1\/sts\/aws4_request$/);
    expect(q.get('X-Amz-Security-Token')).toBeTruthy();
    expect(q.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
    // The cluster replayed it against STS, which verified the signature and named the assumed role.
    expect(request.identity).toBe(`arn:aws:sts::${ACCOUNT}:assumed-role/OpenTraceEKS/opentrace-${TENANT}`);
    const replay = state.requests.filter((r) => r.service === 'sts' && r.method === 'GET').at(-1)!;
    expect(replay).toMatchObject({ action: 'GetCallerIdentity', status: 200, headers: { 'x-k8s-aws-id': 'prod-eu' } });
  });

  it('is bound to its cluster: the same token is refused by another cluster', async () => {
    const token = kube.requests.find((r) => r.cluster === 'prod-eu' && r.status === 200)!.authorization!.replace(/^Bearer /, '');
    const api = new KubernetesApi({ clusterName: 'prod-us', endpoint: kube.endpointFor('prod-us'), caData: kube.caData, token }, policy);
    try {
      expect((await api.get('/api/v1/namespaces?limit=1')).status).toBe(401);
    } finally {
      await api.close();
    }
    expect(kube.requests.at(-1)?.reason).toMatch(/sts getCallerIdentity failed/);
  });
});

describe('aws-eks verify: more failures a person can act on', () => {
  it('accepts a CONFIG_MAP cluster whose aws-auth maps the role, and says to move to access entries', async () => {
    const result = await verify({ clusters: [{ name: 'legacy-mapped', region: 'eu-west-1' }] });
    expect(result.ok).toBe(true);
    expect(check(result, 'cluster legacy-mapped (eu-west-1): authentication mode')?.detail).toMatch(/^CONFIG_MAP: .*switch to API_AND_CONFIG_MAP/);
  });

  it('waits for a cluster that is not ACTIVE yet', async () => {
    const result = await verify({ clusters: [{ name: 'creating', region: 'eu-west-1' }] });
    expect(check(result, 'cluster creating (eu-west-1): describe')).toMatchObject({ ok: false, detail: expect.stringContaining('is CREATING') });
  });

  it('does not contact a private-only endpoint or a private address when private networks are off', async () => {
    const closed = { ...policy, allowPrivateNetworks: false };
    const before = kube.requests.length;
    const result = await verify({ clusters: [{ name: 'private', region: 'eu-west-1' }, { name: 'prod-eu', region: 'eu-west-1' }] }, { deps: { policy: closed } });
    expect(check(result, 'cluster private (eu-west-1): kubernetes api')?.detail).toContain('has only a private API endpoint');
    expect(check(result, 'cluster prod-eu (eu-west-1): kubernetes api')?.detail).toMatch(/is not allowed: 127\.0\.0\.1 is a loopback address/);
    expect(kube.requests.length).toBe(before);
  });

  it('bounds a slow Kubernetes API', async () => {
    kube.injectFault({ match: '/api/v1/namespaces', delayMs: 2_000 });
    const result = await verify({ clusters: [{ name: 'prod-eu', region: 'eu-west-1' }] }, { deps: { policy: { ...policy, totalTimeoutMs: 300 } } });
    expect(check(result, 'cluster prod-eu (eu-west-1): kubernetes api')?.detail).toMatch(/^cluster prod-eu: https:\/\/127\.0\.0\.1:\d+ did not answer within 300 ms\. Is public endpoint access enabled/);
  });

  it('says when this installation has no web identity token, without calling STS', async () => {
    const before = state.requests.length;
    const result = await verify({ clusters: [{ name: 'prod-eu', region: 'eu-west-1' }] }, { deps: { tokenSource: null } });
    expect(result.checks).toEqual([{ name: 'assume role', ok: false, detail: expect.stringContaining('OPENTRACE_WEB_IDENTITY_TOKEN_FILE') }]);
    expect(state.requests.length).toBe(before);
  });

  it('reads the web identity token from a file (OPENTRACE_WEB_IDENTITY_TOKEN_FILE)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'opentrace-wit-'));
    try {
      writeFileSync(join(dir, 'token'), `${WEB_TOKEN}\n`);
      const result = await verify({ clusters: [{ name: 'prod-eu', region: 'eu-west-1' }] }, { deps: { tokenSource: fileTokenSource(join(dir, 'token')) } });
      expect(result.ok).toBe(true);
      const missing = await verify({ clusters: [{ name: 'prod-eu', region: 'eu-west-1' }] }, { deps: { tokenSource: fileTokenSource(join(dir, 'absent')) } });
      expect(missing.checks[0]!.detail).toContain('could not read its web identity token');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('uses the environment when nothing is injected (the registered connector)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'opentrace-wit-'));
    const saved = { file: process.env.OPENTRACE_WEB_IDENTITY_TOKEN_FILE, allow: process.env.OPENTRACE_ALLOW_PRIVATE_NETWORKS };
    try {
      writeFileSync(join(dir, 'token'), WEB_TOKEN);
      process.env.OPENTRACE_WEB_IDENTITY_TOKEN_FILE = join(dir, 'token');
      process.env.OPENTRACE_ALLOW_PRIVATE_NETWORKS = 'true';
      const result = await awsEksConnector.verify({
        tenantId: TENANT,
        externalId: EXTERNAL_ID,
        config: eksConfigSchema.parse({ roleArn: ROLE, clusters: [{ name: 'prod-eu', region: 'eu-west-1' }] }),
        credentials: {},
        fetch: async () => new Response(null, { status: 599 }),
        logger,
      });
      results.push(result);
      expect(result.ok).toBe(true);
    } finally {
      for (const [key, value] of [['OPENTRACE_WEB_IDENTITY_TOKEN_FILE', saved.file], ['OPENTRACE_ALLOW_PRIVATE_NETWORKS', saved.allow]] as const) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the AWS fakes hold the line AWS holds', () => {
  it('EKS refuses credentials STS never issued, and a signature made with the wrong secret', async () => {
    const session = [...state.issued.values()].at(-1)!;
    const attempt = async (credentials: { accessKeyId: string; secretAccessKey: string; sessionToken: string }) => {
      const client = new EKSClient({ region: 'eu-west-1', endpoint: eks.url, credentials, maxAttempts: 1 });
      try {
        await client.send(new DescribeClusterCommand({ name: 'prod-eu' }));
        return 'ok';
      } catch (error) {
        return (error as Error).name;
      } finally {
        client.destroy();
      }
    };
    expect(await attempt({ accessKeyId: 'ASIAUNKNOWN000000000', secretAccessKey: 'x', sessionToken: 'y' })).toBe('UnrecognizedClientException');
    expect(await attempt({ accessKeyId: session.accessKeyId, secretAccessKey: 'not-the-secret', sessionToken: session.sessionToken })).toBe('InvalidSignatureException');
    expect(await attempt({ accessKeyId: session.accessKeyId, secretAccessKey: session.secretAccessKey, sessionToken: session.sessionToken })).toBe('ok');
  });

  it('startEksFakes wires STS, EKS and Kubernetes for the local stack (env only)', async () => {
    const fakes = await startEksFakes();
    const keys = Object.keys(fakes.env);
    const saved = Object.fromEntries(keys.map((key) => [key, process.env[key]]));
    try {
      Object.assign(process.env, fakes.env);
      for (const authMode of ['web-identity', 'assume-role'] as const) {
        const result = await awsEksConnector.verify({
          tenantId: 'demo',
          externalId: 'opentrace-demo-external-id',
          config: eksConfigSchema.parse({ roleArn: DEMO_ROLE_ARN, authMode, clusters: [{ name: 'prod-eu', region: 'eu-west-1' }, { name: 'no-access', region: 'eu-west-1' }] }),
          credentials: {},
          fetch: async () => new Response(null, { status: 599 }),
          logger,
        });
        expect(names(result)).toEqual([
          'ok assume role',
          'ok cluster prod-eu (eu-west-1): describe',
          'ok cluster prod-eu (eu-west-1): authentication mode',
          'ok cluster prod-eu (eu-west-1): kubernetes api',
          'ok cluster no-access (eu-west-1): describe',
          'ok cluster no-access (eu-west-1): authentication mode',
          'FAIL cluster no-access (eu-west-1): kubernetes api',
        ]);
      }
    } finally {
      for (const key of keys) {
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      }
      await fakes.close();
    }
  });
});

describe('aws-eks config schema', () => {
  const valid = { roleArn: ROLE, clusters: [{ name: 'prod-eu', region: 'eu-west-1' }] };
  const paths = (input: unknown) => {
    const result = eksConfigSchema.safeParse(input);
    return result.success ? [] : result.error.issues.map((issue) => issue.path.join('.'));
  };

  it('accepts the guide’s values and defaults to web identity', () => {
    expect(eksConfigSchema.parse(valid)).toEqual({ ...valid, authMode: 'web-identity' });
    expect(paths({ roleArn: 'arn:aws-us-gov:iam::123456789012:role/teams/platform/OpenTrace', clusters: [{ name: 'gov_1', region: 'us-gov-west-1' }] })).toEqual([]);
    expect(paths({ roleArn: 'arn:aws-cn:iam::123456789012:role/OpenTrace', clusters: [{ name: 'c1', region: 'cn-northwest-1' }], authMode: 'assume-role' })).toEqual([]);
  });

  it.each([
    ['a role ARN that is not one', { ...valid, roleArn: 'OpenTraceEKS' }, ['roleArn']],
    ['a user ARN', { ...valid, roleArn: 'arn:aws:iam::123456789012:user/bob' }, ['roleArn']],
    ['an unknown partition', { ...valid, roleArn: 'arn:aws-iso:iam::123456789012:role/x' }, ['roleArn']],
    ['a short account id', { ...valid, roleArn: 'arn:aws:iam::12345:role/x' }, ['roleArn']],
    ['no clusters', { ...valid, clusters: [] }, ['clusters']],
    ['a bad cluster name', { ...valid, clusters: [{ name: '-prod', region: 'eu-west-1' }] }, ['clusters.0.name']],
    ['a bad region', { ...valid, clusters: [{ name: 'prod', region: 'europe' }] }, ['clusters.0.region']],
    ['a missing region', { ...valid, clusters: [{ name: 'prod' }] }, ['clusters.0.region']],
    ['a duplicate cluster', { ...valid, clusters: [{ name: 'a', region: 'eu-west-1' }, { name: 'b', region: 'eu-west-1' }, { name: 'a', region: 'eu-west-1' }] }, ['clusters.2']],
    ['more than 50 clusters', { ...valid, clusters: Array.from({ length: 51 }, (_, i) => ({ name: `c${i}`, region: 'eu-west-1' })) }, ['clusters']],
    ['an unknown auth mode', { ...valid, authMode: 'password' }, ['authMode']],
    ['a region outside the role’s partition', { ...valid, clusters: [{ name: 'prod', region: 'cn-north-1' }] }, ['clusters.0.region']],
  ])('refuses %s with its field path', (_label, input, expected) => {
    expect(paths(input)).toEqual(expected);
  });

  it('has nothing secret: credentials are {} and any key is refused', () => {
    expect(eksCredentialsSchema.parse({})).toEqual({});
    const refused = eksCredentialsSchema.safeParse({ accessKeyId: 'AKIA…', secretAccessKey: '…' });
    expect(refused.success).toBe(false);
  });

  it('renders as JSON Schema for the catalog', () => {
    const schema = z.toJSONSchema(awsEksConnector.configSchema, { io: 'input', unrepresentable: 'any' }) as { required: string[]; properties: Record<string, unknown> };
    expect(schema.required).toEqual(['roleArn', 'clusters']);
    expect(Object.keys(schema.properties)).toEqual(['roleArn', 'clusters', 'authMode', 'externalId']);
    expect(awsEksConnector).toMatchObject({ type: 'aws-eks', title: 'AWS EKS', auth: 'iam-role' });
    expect(awsEksConnector.provides).toContain('Service topology');
  });
});

describe('aws-eks setup', () => {
  const tenant = { tenantId: 'acme', externalId: 'opentrace-Xy12ab34cd56ef78gh90' };

  it("renders the tenant's external id, the client id and the guide's IAM policy", () => {
    const setup = setupFor(tenant, { clientId: '123456789012-opentrace.apps.googleusercontent.com', accountId: '999988887777' });
    expect(setup.iamPolicy.Statement[0]!.Action).toEqual(['eks:DescribeCluster', 'eks:ListClusters', 'eks:AccessKubernetesApi']);
    expect(setup.trustPolicy.Statement[0]).toEqual({
      Effect: 'Allow',
      Principal: { Federated: 'accounts.google.com' },
      Action: 'sts:AssumeRoleWithWebIdentity',
      Condition: { StringEquals: { 'accounts.google.com:aud': '123456789012-opentrace.apps.googleusercontent.com', 'sts:RoleSessionName': 'opentrace-acme' } },
    });
    expect(setup.assumeRole).toMatchObject({ available: true, externalId: tenant.externalId });
    expect((setup.assumeRole as { trustPolicy: { Statement: unknown[] } }).trustPolicy.Statement[0]).toEqual({
      Effect: 'Allow',
      Principal: { AWS: 'arn:aws:iam::999988887777:root' },
      Action: 'sts:AssumeRole',
      Condition: { StringEquals: { 'sts:ExternalId': tenant.externalId } },
    });
    expect(setup.accessEntry.accessPolicyArn).toBe('arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy');
    expect(setup.accessEntry.requiredAuthenticationMode).toEqual(['API', 'API_AND_CONFIG_MAP']);
    expect(JSON.parse(JSON.stringify(setup))).toEqual(setup);
    expect(setup).not.toHaveProperty('warnings');
  });

  it('reads the client id and account from the environment, with a marked placeholder for local use', () => {
    expect(setupOptionsFromEnv({ OPENTRACE_GOOGLE_CLIENT_ID: 'cid', OPENTRACE_AWS_ACCOUNT_ID: '999988887777' })).toEqual({ clientId: 'cid', accountId: '999988887777' });
    const local = setupFor(tenant, setupOptionsFromEnv({}));
    expect(local.webIdentity.clientId).toBe(LOCAL_PLACEHOLDER_CLIENT_ID);
    expect(local.warnings?.[0]).toContain('OPENTRACE_GOOGLE_CLIENT_ID');
    expect(local.assumeRole).toMatchObject({ available: false, externalId: tenant.externalId });
  });

  it("is what the catalog gets from the connector's setup()", () => {
    const setup = connector().setup(tenant);
    expect(setup.webIdentity.clientId).toBe('opentrace-client-id');
    expect(setup.assumeRole.externalId).toBe(tenant.externalId);
  });
});

describe('aws-eks secrets', () => {
  it('never puts a session credential, the web identity token or a bearer token in a check, a discovery or a log line', () => {
    expect(results.length).toBeGreaterThan(10);
    const secrets = [...state.secrets(), WEB_TOKEN, SERVICE_SECRET, ...kube.requests.flatMap((r) => (r.authorization ? [r.authorization.replace(/^Bearer /, '')] : []))];
    expect(secrets.length).toBeGreaterThan(10);
    const surfaces = [JSON.stringify(results), logLines.join('\n')];
    for (const secret of secrets) for (const surface of surfaces) expect(surface.includes(secret)).toBe(false);
    // and no access key id of an assumed session either
    for (const session of state.issued.values()) expect(surfaces.join('\n')).not.toContain(session.accessKeyId);
  });
});
