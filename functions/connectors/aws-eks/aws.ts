/**
 * The AWS side of the EKS connector behind one small port, so tests (and the local stack) can
 * stand in fakes. The default factory builds ordinary SDK v3 clients: they honour the SDK's own
 * endpoint overrides (`AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL_EKS`, `AWS_ENDPOINT_URL`), and
 * `stsEndpoint` reads the same variables for the presigned GetCallerIdentity URL, which no SDK
 * client sends itself.
 */
import { EKSClient } from '@aws-sdk/client-eks';
import { STSClient } from '@aws-sdk/client-sts';
import { dnsSuffix, partitionOfRegion } from './config.ts';

/** Temporary credentials of the assumed role. Never logged, never in a check detail. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

export interface AwsClients {
  /** STS in `region`; without credentials it uses the service's own (default chain) where a call needs any. */
  sts(region: string, credentials?: AwsCredentials): STSClient;
  eks(region: string, credentials: AwsCredentials): EKSClient;
  /** The STS endpoint a presigned GetCallerIdentity URL for `region` points at. */
  stsEndpoint(region: string): URL;
}

/** Bounded time and a single retry: a live check answers a person waiting on a form. */
const CLIENT_DEFAULTS = {
  maxAttempts: 2,
  requestHandler: { connectionTimeout: 5_000, requestTimeout: 10_000 },
} as const;

export function defaultAwsClients(env: NodeJS.ProcessEnv = process.env): AwsClients {
  return {
    sts: (region, credentials) => new STSClient({ region, ...CLIENT_DEFAULTS, ...(credentials ? { credentials } : {}) }),
    eks: (region, credentials) => new EKSClient({ region, ...CLIENT_DEFAULTS, credentials }),
    stsEndpoint: (region) => stsEndpointFor(region, env),
  };
}

/**
 * The regional STS endpoint (`https://sts.<region>.amazonaws.com[.cn]`), or the configured
 * endpoint override exactly as the SDK would pick it (service-specific variable first).
 */
export function stsEndpointFor(region: string, env: NodeJS.ProcessEnv = process.env): URL {
  const ignore = env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS === 'true';
  const configured = ignore ? undefined : (env.AWS_ENDPOINT_URL_STS ?? env.AWS_ENDPOINT_URL);
  if (configured) return new URL(configured);
  return new URL(`https://sts.${region}.${dnsSuffix(partitionOfRegion(region))}/`);
}

/** What the SDK tells us about a failed call, in a shape the messages can branch on. */
export interface AwsFailure {
  /** AWS error code (`AccessDenied`, `ResourceNotFoundException`…) or a network code. */
  code: string;
  status?: number;
  /** True when AWS was never reached (DNS, refused, timeout). */
  network: boolean;
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);

export function describeAwsError(error: unknown): AwsFailure {
  const e = error as { name?: string; code?: string; Code?: string; $metadata?: { httpStatusCode?: number }; cause?: { code?: string } };
  const status = e?.$metadata?.httpStatusCode;
  const networkCode = [e?.code, e?.cause?.code].find((code) => code && NETWORK_CODES.has(code));
  if (networkCode) return { code: networkCode, network: true };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError' || e?.code === 'ETIMEDOUT') return { code: 'Timeout', network: true };
  const code = e?.Code ?? e?.name ?? 'UnknownError';
  return status === undefined ? { code, network: code === 'Error' } : { code, status, network: false };
}
