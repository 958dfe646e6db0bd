/**
 * A loopback fake of EKS Kubernetes API servers, over HTTPS with a CA generated at start (the
 * `caData` DescribeCluster reports). `node:crypto` can parse X.509 certificates but not create
 * them, so the CA and the server certificate are made with the `openssl` binary.
 *
 * One server hosts several clusters, each under its own path prefix (`endpointFor(name)` =
 * `https://127.0.0.1:<port>/clusters/<name>`), since EKS endpoints are per-cluster hosts.
 *
 * Authentication works like EKS's (aws-iam-authenticator): the bearer token must be
 * `k8s-aws-v1.` + unpadded base64url of a presigned STS GetCallerIdentity URL that signs
 * `x-k8s-aws-id`; the fake replays that URL against the STS fake with `x-k8s-aws-id: <this
 * cluster>` (so a token minted for another cluster fails the signature) and maps the returned
 * identity to an access entry: no entry → 401, an entry without AmazonEKSViewPolicy → 403
 * (`forbidden: true` forces 403 for everyone: the "no access entry / no policy" mode).
 *
 * It serves a small cluster for the sync work: namespaces, deployments, replicasets,
 * statefulsets, daemonsets, pods (with ownerReferences), services, ingresses, nodes, and secrets
 * (which a connector must never read: requests for them are recorded like every other).
 * Lists page with `limit` / `continue` as the real API does.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const TOKEN_PREFIX = 'k8s-aws-v1.';
const MAX_TOKEN_BYTES = 4096;
const PRESIGN_VALIDITY_MS = 15 * 60_000;
const ALLOWED_QUERY = new Set(['action', 'version', 'x-amz-algorithm', 'x-amz-credential', 'x-amz-date', 'x-amz-expires', 'x-amz-security-token', 'x-amz-signature', 'x-amz-signedheaders']);
export const VIEW_POLICY = 'AmazonEKSViewPolicy';

type K8sObject = Record<string, unknown> & { metadata: { name: string; namespace?: string; [key: string]: unknown } };

export interface ClusterResources {
  namespaces: K8sObject[];
  nodes: K8sObject[];
  pods: K8sObject[];
  services: K8sObject[];
  secrets: K8sObject[];
  deployments: K8sObject[];
  replicasets: K8sObject[];
  statefulsets: K8sObject[];
  daemonsets: K8sObject[];
  ingresses: K8sObject[];
}

export interface FakeKubeCluster {
  name: string;
  /** Mirrors the EKS cluster's accessConfig.authenticationMode (default API_AND_CONFIG_MAP). */
  authenticationMode?: 'API' | 'API_AND_CONFIG_MAP' | 'CONFIG_MAP';
  /** Access entries: IAM principal ARN → associated access policies. Undefined: every verified identity may view. */
  accessEntries?: Record<string, string[]>;
  /** Roles mapped in the aws-auth ConfigMap (honoured in CONFIG_MAP and API_AND_CONFIG_MAP modes). */
  configMapRoles?: string[];
  /** Every authenticated request gets 403 (an access entry without a policy that allows reading). */
  forbidden?: boolean;
  resources?: ClusterResources;
  gitVersion?: string;
}

export interface TokenInspection {
  prefixOk: boolean;
  /** The token's payload carried `=` padding (aws-iam-authenticator rejects it). */
  padded: boolean;
  decodedUrl?: string;
  signedHeaders?: string[];
  expires?: string;
  action?: string;
}

export interface RecordedKubeRequest {
  cluster: string;
  method: string;
  path: string;
  query: Record<string, string>;
  authorization?: string;
  token?: TokenInspection;
  /** The identity STS returned for the token. */
  identity?: string;
  status: number;
  reason?: string;
}

export interface KubeFault {
  /** Only requests whose path includes this. */
  match?: string;
  status?: number;
  delayMs?: number;
  times?: number;
}

export interface KubernetesFakeOptions {
  clusters: FakeKubeCluster[];
  /** Origin of the STS (fake) that tokens are replayed against, e.g. http://127.0.0.1:3105. */
  stsUrl: string;
  port?: number;
  host?: string;
  now?: () => Date;
}

export interface KubernetesFake {
  url: string;
  port: number;
  /** base64 of the CA's PEM, exactly what DescribeCluster returns as certificateAuthority.data. */
  caData: string;
  caPem: string;
  clusters: Map<string, FakeKubeCluster>;
  requests: RecordedKubeRequest[];
  endpointFor(clusterName: string): string;
  setCluster(cluster: FakeKubeCluster): void;
  injectFault(fault: KubeFault): void;
  close(): Promise<void>;
}

export interface TestCertificates {
  caPem: string;
  certPem: string;
  keyPem: string;
}

/** A throwaway CA and a server certificate for 127.0.0.1 / ::1 / localhost, made by `openssl`. */
export function generateTestCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'opentrace-k8s-fake-'));
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key']);
    run(['req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', '2', '-subj', '/CN=opentrace-fake-kubernetes-ca', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'ca.crt']);
    run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'server.key']);
    run(['req', '-new', '-key', 'server.key', '-subj', '/CN=kube-apiserver', '-out', 'server.csr']);
    writeFileSync(join(dir, 'server.ext'), 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost,DNS:kubernetes.default.svc\n');
    run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-sha256', '-extfile', 'server.ext', '-out', 'server.crt']);
    return { caPem: readFileSync(join(dir, 'ca.crt'), 'utf8'), certPem: readFileSync(join(dir, 'server.crt'), 'utf8'), keyPem: readFileSync(join(dir, 'server.key'), 'utf8') };
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`could not generate the Kubernetes fake's certificates with openssl: ${(error as Error).message} ${stderr}`, { cause: error });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// The sample cluster.

const CREATED = '2025-01-01T00:00:00Z';
function meta(name: string, namespace: string | undefined, extra: Record<string, unknown> = {}) {
  const uid = `uid-${namespace ?? 'cluster'}-${name}`;
  return { name, ...(namespace ? { namespace } : {}), uid, resourceVersion: '1001', creationTimestamp: CREATED, ...extra };
}
function owner(kind: string, name: string, namespace: string) {
  return { apiVersion: kind === 'ReplicaSet' || kind === 'StatefulSet' || kind === 'DaemonSet' || kind === 'Deployment' ? 'apps/v1' : 'v1', kind, name, uid: `uid-${namespace}-${name}`, controller: true, blockOwnerDeletion: true };
}

/** A small, realistic cluster: one app (payments: api + worker + db), kube-system's aws-node and coredns, two nodes. */
export function sampleClusterResources(clusterName = 'prod-eu', region = 'eu-west-1'): ClusterResources {
  const nodeNames = [`ip-10-0-1-23.${region}.compute.internal`, `ip-10-0-2-41.${region}.compute.internal`];
  const image = (name: string, tag: string) => `123456789012.dkr.ecr.${region}.amazonaws.com/${name}:${tag}`;
  const pod = (name: string, namespace: string, ownerRef: ReturnType<typeof owner>, labels: Record<string, string>, containers: Array<Record<string, unknown>>, nodeName: string) => ({
    metadata: meta(name, namespace, { labels, ownerReferences: [ownerRef] }),
    spec: { nodeName, serviceAccountName: 'default', containers },
    status: {
      phase: 'Running',
      podIP: '10.0.1.57',
      startTime: CREATED,
      containerStatuses: containers.map((c) => ({ name: c.name, ready: true, restartCount: 0, image: c.image, imageID: `${String(c.image).split(':')[0]}@sha256:${'a'.repeat(64)}`, state: { running: { startedAt: CREATED } } })),
    },
  });
  const apiContainer = {
    name: 'api',
    image: image('payments-api', 'v1.4.2'),
    ports: [{ containerPort: 8080, protocol: 'TCP' }],
    // Env var values are exactly what a connector must never copy.
    env: [{ name: 'DATABASE_PASSWORD', value: 'env-value-must-never-be-synced' }, { name: 'STRIPE_KEY', valueFrom: { secretKeyRef: { name: 'stripe', key: 'key' } } }],
  };
  const workerContainer = { name: 'worker', image: image('payments-worker', 'v1.4.2'), env: [{ name: 'QUEUE_URL', value: 'env-value-must-never-be-synced' }] };
  const dbContainer = { name: 'postgres', image: 'postgres:16.4' };
  const nodeContainer = { name: 'aws-node', image: `602401143452.dkr.ecr.${region}.amazonaws.com/amazon-k8s-cni:v1.19.0` };
  const coredns = { name: 'coredns', image: `602401143452.dkr.ecr.${region}.amazonaws.com/eks/coredns:v1.11.3` };
  const deployment = (name: string, namespace: string, labels: Record<string, string>, replicas: number, containers: Array<Record<string, unknown>>) => ({
    metadata: meta(name, namespace, { labels, annotations: { 'deployment.kubernetes.io/revision': '3' }, generation: 3 }),
    spec: { replicas, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers } } },
    status: { replicas, readyReplicas: replicas, availableReplicas: replicas, updatedReplicas: replicas, observedGeneration: 3 },
  });
  const replicaset = (name: string, namespace: string, deploymentName: string, labels: Record<string, string>, replicas: number) => ({
    metadata: meta(name, namespace, { labels: { ...labels, 'pod-template-hash': name.split('-').pop() }, ownerReferences: [owner('Deployment', deploymentName, namespace)] }),
    spec: { replicas, selector: { matchLabels: labels } },
    status: { replicas, readyReplicas: replicas, availableReplicas: replicas },
  });

  return {
    namespaces: ['default', 'kube-system', 'payments'].map((name) => ({ metadata: meta(name, undefined, { labels: { 'kubernetes.io/metadata.name': name } }), spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } })),
    nodes: nodeNames.map((name, index) => ({
      metadata: meta(name, undefined, { labels: { 'kubernetes.io/hostname': name, 'topology.kubernetes.io/region': region, 'topology.kubernetes.io/zone': `${region}${'ab'[index]}`, 'node.kubernetes.io/instance-type': 'm6i.large', 'eks.amazonaws.com/nodegroup': 'default' } }),
      spec: { providerID: `aws:///${region}${'ab'[index]}/i-0${index}23456789abcdef` },
      status: { nodeInfo: { kubeletVersion: 'v1.31.2-eks-7f9249a', osImage: 'Amazon Linux 2023', containerRuntimeVersion: 'containerd://1.7.22', architecture: 'amd64' }, conditions: [{ type: 'Ready', status: 'True' }] },
    })),
    deployments: [
      deployment('api', 'payments', { app: 'api' }, 2, [apiContainer]),
      deployment('worker', 'payments', { app: 'worker' }, 1, [workerContainer]),
      deployment('coredns', 'kube-system', { 'k8s-app': 'kube-dns' }, 1, [coredns]),
    ],
    replicasets: [
      replicaset('api-7d9f8c6b5', 'payments', 'api', { app: 'api' }, 2),
      // An old, scaled-down ReplicaSet of the same deployment: still listed by the API.
      replicaset('api-5c6b7d8e9', 'payments', 'api', { app: 'api' }, 0),
      replicaset('worker-6f7a8b9c0', 'payments', 'worker', { app: 'worker' }, 1),
      replicaset('coredns-5d8f9c7b6', 'kube-system', 'coredns', { 'k8s-app': 'kube-dns' }, 1),
    ],
    statefulsets: [
      {
        metadata: meta('postgres', 'payments', { labels: { app: 'postgres' } }),
        spec: { replicas: 1, serviceName: 'postgres', selector: { matchLabels: { app: 'postgres' } }, template: { metadata: { labels: { app: 'postgres' } }, spec: { containers: [dbContainer] } } },
        status: { replicas: 1, readyReplicas: 1 },
      },
    ],
    daemonsets: [
      {
        metadata: meta('aws-node', 'kube-system', { labels: { 'k8s-app': 'aws-node' } }),
        spec: { selector: { matchLabels: { 'k8s-app': 'aws-node' } }, template: { metadata: { labels: { 'k8s-app': 'aws-node' } }, spec: { containers: [nodeContainer] } } },
        status: { desiredNumberScheduled: 2, numberReady: 2 },
      },
    ],
    pods: [
      pod('api-7d9f8c6b5-x2k9p', 'payments', owner('ReplicaSet', 'api-7d9f8c6b5', 'payments'), { app: 'api', 'pod-template-hash': '7d9f8c6b5' }, [apiContainer], nodeNames[0]!),
      pod('api-7d9f8c6b5-q8w3z', 'payments', owner('ReplicaSet', 'api-7d9f8c6b5', 'payments'), { app: 'api', 'pod-template-hash': '7d9f8c6b5' }, [apiContainer], nodeNames[1]!),
      pod('worker-6f7a8b9c0-m4n5b', 'payments', owner('ReplicaSet', 'worker-6f7a8b9c0', 'payments'), { app: 'worker', 'pod-template-hash': '6f7a8b9c0' }, [workerContainer], nodeNames[0]!),
      pod('postgres-0', 'payments', owner('StatefulSet', 'postgres', 'payments'), { app: 'postgres' }, [dbContainer], nodeNames[1]!),
      pod('aws-node-7hj2k', 'kube-system', owner('DaemonSet', 'aws-node', 'kube-system'), { 'k8s-app': 'aws-node' }, [nodeContainer], nodeNames[0]!),
      pod('aws-node-9lm4n', 'kube-system', owner('DaemonSet', 'aws-node', 'kube-system'), { 'k8s-app': 'aws-node' }, [nodeContainer], nodeNames[1]!),
      pod('coredns-5d8f9c7b6-abcde', 'kube-system', owner('ReplicaSet', 'coredns-5d8f9c7b6', 'kube-system'), { 'k8s-app': 'kube-dns', 'pod-template-hash': '5d8f9c7b6' }, [coredns], nodeNames[0]!),
    ],
    services: [
      { metadata: meta('kubernetes', 'default', { labels: { component: 'apiserver', provider: 'kubernetes' } }), spec: { type: 'ClusterIP', clusterIP: '172.20.0.1', ports: [{ name: 'https', port: 443, targetPort: 443, protocol: 'TCP' }] } },
      { metadata: meta('api', 'payments', { labels: { app: 'api' } }), spec: { type: 'ClusterIP', clusterIP: '172.20.14.2', selector: { app: 'api' }, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] } },
      { metadata: meta('postgres', 'payments'), spec: { type: 'ClusterIP', clusterIP: 'None', selector: { app: 'postgres' }, ports: [{ port: 5432, targetPort: 5432, protocol: 'TCP' }] } },
      { metadata: meta('kube-dns', 'kube-system', { labels: { 'k8s-app': 'kube-dns' } }), spec: { type: 'ClusterIP', clusterIP: '172.20.0.10', selector: { 'k8s-app': 'kube-dns' }, ports: [{ name: 'dns', port: 53, targetPort: 53, protocol: 'UDP' }] } },
    ],
    ingresses: [
      {
        metadata: meta('api', 'payments', { annotations: { 'alb.ingress.kubernetes.io/scheme': 'internet-facing' } }),
        spec: {
          ingressClassName: 'alb',
          rules: [{ host: `payments.${clusterName}.example.com`, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'api', port: { number: 80 } } } }] } }],
        },
        status: { loadBalancer: { ingress: [{ hostname: `k8s-payments-api-0123456789.${region}.elb.amazonaws.com` }] } },
      },
    ],
    secrets: [{ metadata: meta('stripe', 'payments'), type: 'Opaque', data: { key: Buffer.from('secret-value-must-never-be-read').toString('base64') } }],
  };
}

// ---------------------------------------------------------------------------------------------

interface ResourceRoute {
  kind: string;
  listKind: string;
  apiVersion: string;
  key: keyof ClusterResources;
  namespaced: boolean;
}

const CORE: Record<string, ResourceRoute> = {
  namespaces: { kind: 'Namespace', listKind: 'NamespaceList', apiVersion: 'v1', key: 'namespaces', namespaced: false },
  nodes: { kind: 'Node', listKind: 'NodeList', apiVersion: 'v1', key: 'nodes', namespaced: false },
  pods: { kind: 'Pod', listKind: 'PodList', apiVersion: 'v1', key: 'pods', namespaced: true },
  services: { kind: 'Service', listKind: 'ServiceList', apiVersion: 'v1', key: 'services', namespaced: true },
  secrets: { kind: 'Secret', listKind: 'SecretList', apiVersion: 'v1', key: 'secrets', namespaced: true },
};
const GROUPS: Record<string, Record<string, ResourceRoute>> = {
  'apps/v1': {
    deployments: { kind: 'Deployment', listKind: 'DeploymentList', apiVersion: 'apps/v1', key: 'deployments', namespaced: true },
    replicasets: { kind: 'ReplicaSet', listKind: 'ReplicaSetList', apiVersion: 'apps/v1', key: 'replicasets', namespaced: true },
    statefulsets: { kind: 'StatefulSet', listKind: 'StatefulSetList', apiVersion: 'apps/v1', key: 'statefulsets', namespaced: true },
    daemonsets: { kind: 'DaemonSet', listKind: 'DaemonSetList', apiVersion: 'apps/v1', key: 'daemonsets', namespaced: true },
  },
  'networking.k8s.io/v1': {
    ingresses: { kind: 'Ingress', listKind: 'IngressList', apiVersion: 'networking.k8s.io/v1', key: 'ingresses', namespaced: true },
  },
};

/** Resolves /api/v1/…, /apis/<group>/<version>/… (cluster-wide or namespaced, list or one object). */
function resolveRoute(path: string): { route: ResourceRoute; namespace?: string; name?: string } | undefined {
  let rest: string[];
  let table: Record<string, ResourceRoute>;
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'api' && parts[1] === 'v1') {
    table = CORE;
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 3 && GROUPS[`${parts[1]}/${parts[2]}`]) {
    table = GROUPS[`${parts[1]}/${parts[2]}`]!;
    rest = parts.slice(3);
  } else {
    return undefined;
  }
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    const route = table[rest[2]!];
    if (!route?.namespaced || rest.length > 4) return undefined;
    return { route, namespace: rest[1]!, ...(rest[3] ? { name: rest[3] } : {}) };
  }
  const route = table[rest[0] ?? ''];
  if (!route || rest.length > 2) return undefined;
  return { route, ...(rest[1] ? { name: rest[1] } : {}) };
}

function status(code: number, reason: string, message: string, details?: Record<string, unknown>) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

/** assumed-role ARN → the role's IAM ARN, as aws-iam-authenticator canonicalizes it. */
function canonicalArn(arn: string): string {
  const m = /^arn:([^:]+):sts::(\d{12}):assumed-role\/([^/]+)\/.+$/.exec(arn);
  return m ? `arn:${m[1]}:iam::${m[2]}:role/${m[3]}` : arn;
}

function sameRole(principalArn: string, canonical: string): boolean {
  // Access entries may name a role with a path; the assumed-role ARN carries none.
  const strip = (arn: string) => arn.replace(/:role\/(?:.*\/)?([^/]+)$/, ':role/$1');
  return strip(principalArn) === strip(canonical);
}

export async function startKubernetesFake(options: KubernetesFakeOptions): Promise<KubernetesFake> {
  const certs = generateTestCertificates();
  const host = options.host ?? '127.0.0.1';
  const now = options.now ?? (() => new Date());
  const stsOrigin = new URL(options.stsUrl).origin;
  const clusters = new Map(options.clusters.map((c) => [c.name, c]));
  const requests: RecordedKubeRequest[] = [];
  const faults: KubeFault[] = [];
  /** Timers of delayed ("slow") answers, cleared on close so nothing outlives a test run. */
  const timers = new Set<NodeJS.Timeout>();

  /** aws-iam-authenticator's checks, then the STS replay. Returns the identity ARN or a reason. */
  async function authenticate(token: string, clusterName: string, inspection: TokenInspection): Promise<{ arn?: string; reason?: string }> {
    if (token.length > MAX_TOKEN_BYTES) return { reason: 'token is too large' };
    if (!inspection.prefixOk) return { reason: `token is missing expected "${TOKEN_PREFIX}" prefix` };
    const payload = token.slice(TOKEN_PREFIX.length);
    if (inspection.padded || !/^[A-Za-z0-9_-]+$/.test(payload)) return { reason: 'token payload is not unpadded base64url' };
    let url: URL;
    try {
      url = new URL(inspection.decodedUrl!);
    } catch {
      return { reason: 'token does not decode to a URL' };
    }
    // The real authenticator only accepts https STS hostnames of its partition; the fake accepts its own STS fake.
    if (url.origin !== stsOrigin) return { reason: `unexpected hostname ${url.host} in pre-signed URL` };
    if (url.pathname !== '/') return { reason: 'unexpected path in pre-signed URL' };
    const seen = new Set<string>();
    for (const key of url.searchParams.keys()) {
      const lower = key.toLowerCase();
      if (!ALLOWED_QUERY.has(lower)) return { reason: `non-whitelisted query parameter ${key}` };
      if (seen.has(lower)) return { reason: 'query parameter with multiple values not supported' };
      seen.add(lower);
    }
    if (inspection.action !== 'GetCallerIdentity') return { reason: 'unexpected action parameter in pre-signed URL' };
    if (!inspection.signedHeaders?.includes('x-k8s-aws-id')) return { reason: 'client did not sign the x-k8s-aws-id header in the pre-signed URL' };
    const expires = Number(inspection.expires);
    if (!Number.isInteger(expires) || expires < 0 || expires > 900) return { reason: `invalid X-Amz-Expires parameter in pre-signed URL: ${inspection.expires}` };
    const date = url.searchParams.get('X-Amz-Date') ?? '';
    const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(date);
    if (!m) return { reason: 'X-Amz-Date parameter must be present in pre-signed URL' };
    const signedAt = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
    if (now().getTime() > signedAt + PRESIGN_VALIDITY_MS) return { reason: 'X-Amz-Date parameter is expired (15 minute expiration)' };
    let response: Response;
    try {
      response = await fetch(url, { headers: { 'x-k8s-aws-id': clusterName, accept: 'application/json' }, redirect: 'manual' });
    } catch (error) {
      return { reason: `sts getCallerIdentity failed: ${(error as Error).message}` };
    }
    const text = await response.text();
    if (response.status !== 200) return { reason: `sts getCallerIdentity failed: error from AWS (expected 200, got ${response.status})` };
    const arn = (JSON.parse(text) as { GetCallerIdentityResponse?: { GetCallerIdentityResult?: { Arn?: string } } }).GetCallerIdentityResponse?.GetCallerIdentityResult?.Arn;
    return arn ? { arn } : { reason: 'sts getCallerIdentity returned no Arn' };
  }

  function inspect(token: string): TokenInspection {
    const prefixOk = token.startsWith(TOKEN_PREFIX);
    const payload = prefixOk ? token.slice(TOKEN_PREFIX.length) : token;
    const inspection: TokenInspection = { prefixOk, padded: payload.includes('=') };
    try {
      const decodedUrl = Buffer.from(payload, 'base64url').toString('utf8');
      const url = new URL(decodedUrl);
      inspection.decodedUrl = decodedUrl;
      inspection.signedHeaders = (url.searchParams.get('X-Amz-SignedHeaders') ?? '').split(';').filter(Boolean);
      inspection.expires = url.searchParams.get('X-Amz-Expires') ?? undefined;
      inspection.action = url.searchParams.get('Action') ?? undefined;
    } catch {
      // not a URL: authenticate() says so
    }
    return inspection;
  }

  function sendJson(res: ServerResponse, code: number, body: unknown) {
    res.writeHead(code, { 'content-type': 'application/json', 'audit-id': crypto.randomUUID() });
    res.end(JSON.stringify(body));
  }

  const server: Server = createServer({ cert: certs.certPem, key: certs.keyPem }, async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'https://kubernetes.local');
    const match = /^\/clusters\/([^/]+)(\/.*)?$/.exec(url.pathname);
    const clusterName = match ? decodeURIComponent(match[1]!) : '';
    const path = match?.[2] ?? '/';
    const authorization = req.headers.authorization;
    const record: RecordedKubeRequest = { cluster: clusterName, method: req.method ?? 'GET', path, query: Object.fromEntries(url.searchParams), ...(authorization ? { authorization } : {}), status: 200 };
    requests.push(record);
    const fail = (code: number, reason: string, message: string, details?: Record<string, unknown>) => {
      record.status = code;
      record.reason = message;
      sendJson(res, code, status(code, reason, message, details));
    };

    const cluster = clusters.get(clusterName);
    if (!cluster) return fail(404, 'NotFound', `no cluster "${clusterName}" on this fake: use endpointFor(name)`);

    const faultIndex = faults.findIndex((f) => (!f.match || path.includes(f.match)) && (f.times ?? 1) > 0);
    if (faultIndex >= 0) {
      const fault = faults[faultIndex]!;
      fault.times = (fault.times ?? 1) - 1;
      if (fault.times <= 0) faults.splice(faultIndex, 1);
      if (fault.delayMs) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            timers.delete(timer);
            resolve();
          }, fault.delayMs);
          timers.add(timer);
        });
      }
      if (fault.status) return fail(fault.status, fault.status === 429 ? 'TooManyRequests' : 'InternalError', 'Injected fault');
    }

    // Authentication (webhook token authenticator).
    const bearer = /^Bearer (.+)$/.exec(authorization ?? '')?.[1];
    if (!bearer) return fail(401, 'Unauthorized', 'Unauthorized');
    record.token = inspect(bearer);
    const identity = await authenticate(bearer, clusterName, record.token);
    if (!identity.arn) {
      record.status = 401;
      record.reason = identity.reason ?? 'Unauthorized';
      return sendJson(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
    }
    record.identity = identity.arn;
    const role = canonicalArn(identity.arn);
    const mode = cluster.authenticationMode ?? 'API_AND_CONFIG_MAP';
    const apiEntry: [string, string[]] | undefined =
      mode === 'CONFIG_MAP' ? undefined : cluster.accessEntries ? Object.entries(cluster.accessEntries).find(([principal]) => sameRole(principal, role)) : [role, [VIEW_POLICY]];
    const configMapped = mode !== 'API' && (cluster.configMapRoles ?? []).some((principal) => sameRole(principal, role));
    if (!apiEntry && !configMapped) {
      record.status = 401;
      record.reason = `no access entry${mode === 'CONFIG_MAP' ? ' (authentication mode CONFIG_MAP ignores access entries)' : ''} and no aws-auth mapping for ${role}`;
      return sendJson(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
    }
    const canView = !cluster.forbidden && (configMapped || (apiEntry?.[1] ?? []).some((p) => ['AmazonEKSViewPolicy', 'AmazonEKSAdminViewPolicy', 'AmazonEKSAdminPolicy', 'AmazonEKSClusterAdminPolicy'].includes(p)));

    if (req.method !== 'GET') return fail(405, 'MethodNotAllowed', 'this fake is read-only');
    if (path === '/version') {
      return sendJson(res, 200, { major: '1', minor: '31', gitVersion: cluster.gitVersion ?? 'v1.31.2-eks-7f9249a', platform: 'linux/amd64' });
    }
    const resolved = resolveRoute(path);
    if (!resolved) return fail(404, 'NotFound', 'the server could not find the requested resource');
    const user = identity.arn;
    if (!canView) {
      const scope = resolved.namespace ? `in the namespace "${resolved.namespace}"` : 'at the cluster scope';
      return fail(403, 'Forbidden', `${resolved.route.key} is forbidden: User "${user}" cannot list resource "${resolved.route.key}" in API group "${resolved.route.apiVersion.includes('/') ? resolved.route.apiVersion.split('/')[0] : ''}" ${scope}`, { kind: resolved.route.key });
    }
    if (resolved.route.key === 'secrets') {
      // AmazonEKSViewPolicy does not allow reading Secrets either.
      return fail(403, 'Forbidden', `secrets is forbidden: User "${user}" cannot list resource "secrets" in API group "" ${resolved.namespace ? `in the namespace "${resolved.namespace}"` : 'at the cluster scope'}`, { kind: 'secrets' });
    }
    const resources = cluster.resources ?? sampleClusterResources(cluster.name);
    let items = resources[resolved.route.key];
    if (resolved.namespace) {
      if (!resources.namespaces.some((n) => n.metadata.name === resolved.namespace)) return fail(404, 'NotFound', `namespaces "${resolved.namespace}" not found`);
      items = items.filter((item) => item.metadata.namespace === resolved.namespace);
    }
    if (resolved.name) {
      const item = items.find((i) => i.metadata.name === resolved.name);
      if (!item) return fail(404, 'NotFound', `${resolved.route.key} "${resolved.name}" not found`, { name: resolved.name, kind: resolved.route.key });
      return sendJson(res, 200, { kind: resolved.route.kind, apiVersion: resolved.route.apiVersion, ...item });
    }
    const limit = Number(url.searchParams.get('limit') ?? 0);
    const cont = url.searchParams.get('continue');
    const offset = cont ? Number(Buffer.from(cont, 'base64url').toString('utf8')) : 0;
    if (!Number.isInteger(offset) || offset < 0 || offset > items.length) return fail(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result.');
    const page = limit > 0 ? items.slice(offset, offset + limit) : items.slice(offset);
    const next = offset + page.length;
    const more = next < items.length;
    return sendJson(res, 200, {
      kind: resolved.route.listKind,
      apiVersion: resolved.route.apiVersion,
      metadata: { resourceVersion: '1001', ...(more ? { continue: Buffer.from(String(next)).toString('base64url'), remainingItemCount: items.length - next } : {}) },
      items: page,
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const base = `https://${host}:${port}`;
  return {
    url: base,
    port,
    caPem: certs.caPem,
    caData: Buffer.from(certs.caPem, 'utf8').toString('base64'),
    clusters,
    requests,
    endpointFor: (name) => `${base}/clusters/${encodeURIComponent(name)}`,
    setCluster: (cluster) => void clusters.set(cluster.name, cluster),
    injectFault: (fault) => void faults.push({ times: 1, ...fault }),
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
