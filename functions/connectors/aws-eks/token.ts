/**
 * The Kubernetes bearer token EKS accepts for an IAM identity, made the way aws-iam-authenticator
 * and `aws eks get-token` make it: an STS GetCallerIdentity request, presigned (never sent) with
 * the assumed role's credentials, with the header `x-k8s-aws-id: <cluster name>` signed in
 * (so the token is only good for that cluster) and `X-Amz-Expires=60` (ignored by STS: the URL
 * is good for 15 minutes after X-Amz-Date). token = "k8s-aws-v1." + base64url(url), no padding.
 * The cluster's authenticator replays the URL against STS to learn who signed it.
 */
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentials } from './aws.ts';

export const TOKEN_PREFIX = 'k8s-aws-v1.';
export const CLUSTER_ID_HEADER = 'x-k8s-aws-id';
/** Presign parameter aws-iam-authenticator uses (it accepts 0..900; STS ignores it). */
export const PRESIGN_EXPIRES_SECONDS = 60;
/** How long the cluster accepts a token: 15 minutes after signing. Reuse a token for less than that. */
export const TOKEN_LIFETIME_MS = 15 * 60_000;

/** RFC 3986 encoding, as SigV4's canonical query uses. */
function encode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export interface EksTokenInput {
  clusterName: string;
  /** The cluster's region: the STS endpoint and the signing region. */
  region: string;
  credentials: AwsCredentials;
  /** The regional STS endpoint (or its configured override). */
  stsEndpoint: URL;
  signingDate?: Date;
}

/** The presigned GetCallerIdentity URL for one cluster. */
export async function presignGetCallerIdentity(input: EksTokenInput): Promise<string> {
  const { stsEndpoint: endpoint } = input;
  const signer = new SignatureV4({ service: 'sts', region: input.region, credentials: input.credentials, sha256: Sha256 });
  const request = new HttpRequest({
    method: 'GET',
    protocol: endpoint.protocol,
    hostname: endpoint.hostname,
    ...(endpoint.port ? { port: Number(endpoint.port) } : {}),
    path: endpoint.pathname || '/',
    query: { Action: 'GetCallerIdentity', Version: '2011-06-15' },
    headers: { host: endpoint.host, [CLUSTER_ID_HEADER]: input.clusterName },
  });
  const signed = await signer.presign(request, { expiresIn: PRESIGN_EXPIRES_SECONDS, ...(input.signingDate ? { signingDate: input.signingDate } : {}) });
  const query = Object.entries(signed.query ?? {})
    .flatMap(([key, value]) => (Array.isArray(value) ? value.map((v) => [key, v] as const) : value == null ? [] : [[key, value] as const]))
    .map(([key, value]) => `${encode(key)}=${encode(value)}`)
    .join('&');
  return `${endpoint.protocol}//${endpoint.host}${signed.path}?${query}`;
}

/** The bearer token for the cluster's Kubernetes API. As secret as the credentials for 15 minutes. */
export async function eksBearerToken(input: EksTokenInput): Promise<string> {
  const url = await presignGetCallerIdentity(input);
  return TOKEN_PREFIX + Buffer.from(url, 'utf8').toString('base64url');
}
