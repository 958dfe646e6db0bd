/**
 * A small read-only client for a cluster's Kubernetes API. The endpoint comes from
 * eks:DescribeCluster (not typed by a user), but it still goes through the outbound guard:
 * checked URL (https, no metadata address), a DNS lookup that refuses private, loopback and
 * link-local addresses unless OPENTRACE_ALLOW_PRIVATE_NETWORKS=true (a private-only EKS endpoint
 * resolves to VPC addresses OpenTrace cannot reach anyway), bounded connect and total time. TLS
 * is verified against the cluster's own CA from DescribeCluster, never switched off.
 */
import { Agent, fetch as undiciFetch } from 'undici';
import { checkUrl, guardedLookup, policyFromEnv, type OutboundPolicy } from '#platform/outbound.ts';

export interface KubernetesTarget {
  clusterName: string;
  /** https://XXXX.gr7.eu-west-1.eks.amazonaws.com (may carry a path prefix). */
  endpoint: string;
  /** certificateAuthority.data from DescribeCluster: base64 of the PEM bundle. */
  caData: string;
  /** The bearer token (k8s-aws-v1.…), or a function returning a fresh one. */
  token: string | (() => Promise<string>);
}

export type KubernetesFailureKind = 'blocked' | 'timeout' | 'tls' | 'unreachable';

/** The cluster could not be asked at all. The message names the endpoint, never the token. */
export class KubernetesRequestError extends Error {
  readonly kind: KubernetesFailureKind;
  constructor(kind: KubernetesFailureKind, message: string) {
    super(message);
    this.name = 'KubernetesRequestError';
    this.kind = kind;
  }
}

export interface KubernetesResponse {
  status: number;
  body: unknown;
}

const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function causeChain(error: unknown): Array<{ name?: string; code?: string; message?: string }> {
  const chain: Array<{ name?: string; code?: string; message?: string }> = [];
  let current: unknown = error;
  while (current && chain.length < 6) {
    chain.push(current as { name?: string; code?: string });
    current = (current as { cause?: unknown }).cause;
  }
  return chain;
}

export class KubernetesApi {
  readonly #target: KubernetesTarget;
  readonly #policy: OutboundPolicy;
  readonly #agent: Agent;
  readonly #base: string;

  constructor(target: KubernetesTarget, policy: OutboundPolicy = policyFromEnv()) {
    this.#target = target;
    this.#policy = policy;
    this.#base = target.endpoint.replace(/\/+$/, '');
    const ca = Buffer.from(target.caData, 'base64').toString('utf8');
    this.#agent = new Agent({
      connect: { ca, timeout: policy.connectTimeoutMs, lookup: guardedLookup(policy.allowPrivateNetworks) as never },
      headersTimeout: policy.totalTimeoutMs,
      bodyTimeout: policy.totalTimeoutMs,
    });
  }

  /** GET an API path (`/api/v1/namespaces?limit=1`). HTTP error statuses come back as responses. */
  async get(path: string, timeoutMs = this.#policy.totalTimeoutMs): Promise<KubernetesResponse> {
    const url = `${this.#base}${path.startsWith('/') ? path : `/${path}`}`;
    let checked: URL;
    try {
      checked = checkUrl(url, this.#policy);
    } catch (error) {
      throw new KubernetesRequestError('blocked', (error as Error).message);
    }
    if (checked.protocol !== 'https:') throw new KubernetesRequestError('blocked', `${checked.origin} is not https: a Kubernetes API endpoint from EKS always is`);
    const token = typeof this.#target.token === 'function' ? await this.#target.token() : this.#target.token;
    let response: Response;
    try {
      response = (await undiciFetch(checked, {
        method: 'GET',
        headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
        dispatcher: this.#agent,
      })) as unknown as Response;
    } catch (error) {
      throw this.#classify(error, checked, timeoutMs);
    }
    const text = await response.text();
    let body: unknown = text;
    if ((response.headers.get('content-type') ?? '').includes('json')) {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    return { status: response.status, body };
  }

  #classify(error: unknown, url: URL, timeoutMs: number): KubernetesRequestError {
    const chain = causeChain(error);
    const blocked = chain.find((e) => e.name === 'OutboundBlockedError' || e.code === 'EBLOCKED');
    if (blocked) return new KubernetesRequestError('blocked', blocked.message ?? `${url.origin} is not allowed`);
    const tls = chain.map((e) => e.code).find((code) => code && TLS_CODES.has(code));
    if (tls) return new KubernetesRequestError('tls', `the TLS certificate of ${url.origin} does not verify against the cluster's CA from DescribeCluster (${tls})`);
    if (chain.some((e) => e.name === 'TimeoutError' || e.code === 'UND_ERR_CONNECT_TIMEOUT' || e.code === 'UND_ERR_HEADERS_TIMEOUT')) {
      return new KubernetesRequestError('timeout', `${url.origin} did not answer within ${timeoutMs < 1000 ? `${timeoutMs} ms` : `${Math.round(timeoutMs / 1000)} s`}`);
    }
    const code = chain.map((e) => e.code).find(Boolean);
    return new KubernetesRequestError('unreachable', `${url.origin} is unreachable${code ? ` (${code})` : ''}`);
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}
