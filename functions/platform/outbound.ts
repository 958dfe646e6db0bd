/**
 * Outbound safety: every request to a URL a user gave us goes through `safeFetch`.
 * - https only in the cloud (http too when private networks are allowed: the local stack);
 * - no user:password@ in URLs;
 * - DNS is resolved by us and every address checked before connecting, at connect time (so a
 *   name cannot resolve to a public address for the check and a private one for the connection);
 *   loopback, link-local, private, unique-local, CGNAT, multicast, unspecified and the cloud
 *   metadata addresses (169.254.169.254, fd00:ec2::254) are refused unless
 *   OPENTRACE_ALLOW_PRIVATE_NETWORKS=true;
 * - redirects are followed by hand (at most 5), each target checked the same way;
 * - bounded connect time and total time.
 */
import { lookup as dnsLookup } from 'node:dns';
import type { LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { Agent, fetch as undiciFetch, type RequestInit as UndiciRequestInit } from 'undici';

export class OutboundBlockedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutboundBlockedError';
  }
}

export class OutboundTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutboundTimeoutError';
  }
}

/** Could not reach the host at all (DNS, refused, reset, TLS). The message says which host. */
export class OutboundUnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutboundUnreachableError';
  }
}

export interface OutboundPolicy {
  allowPrivateNetworks: boolean;
  connectTimeoutMs: number;
  totalTimeoutMs: number;
  maxRedirects: number;
}

export function policyFromEnv(env: NodeJS.ProcessEnv = process.env): OutboundPolicy {
  return {
    allowPrivateNetworks: env.OPENTRACE_ALLOW_PRIVATE_NETWORKS === 'true',
    connectTimeoutMs: 5_000,
    totalTimeoutMs: 15_000,
    maxRedirects: 5,
  };
}

const ALWAYS_BLOCKED = new Set(['169.254.169.254', 'fd00:ec2::254', '169.254.170.2']);
const PUBLIC_RANGES = new Set(['unicast']);

/** Why an address may not be contacted, or undefined when it may. */
export function blockedAddressReason(address: string, allowPrivateNetworks: boolean): string | undefined {
  if (!ipaddr.isValid(address)) return `${address} is not an IP address`;
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  const normalized = parsed.toString();
  if (ALWAYS_BLOCKED.has(normalized)) return `${normalized} is a cloud metadata address`;
  if (allowPrivateNetworks) return undefined;
  const range = parsed.range();
  if (!PUBLIC_RANGES.has(range)) return `${normalized} is a ${range} address`;
  return undefined;
}

export function checkUrl(raw: string | URL, policy: OutboundPolicy): URL {
  let url: URL;
  try {
    url = new URL(String(raw));
  } catch {
    throw new OutboundBlockedError(`${String(raw)} is not a valid URL`);
  }
  const allowedProtocols = policy.allowPrivateNetworks ? ['https:', 'http:'] : ['https:'];
  if (!allowedProtocols.includes(url.protocol)) {
    throw new OutboundBlockedError(`${url.origin} must use ${allowedProtocols.join(' or ')}`);
  }
  if (url.username || url.password) throw new OutboundBlockedError('URLs must not carry a user name or password; use the credential fields');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host)) {
    const reason = blockedAddressReason(host, policy.allowPrivateNetworks);
    if (reason) throw new OutboundBlockedError(`${url.origin} is not allowed: ${reason}`);
  }
  return url;
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A DNS lookup that refuses names resolving to any blocked address; used by the connection itself. */
export function guardedLookup(allowPrivateNetworks: boolean) {
  return (hostname: string, options: { all?: boolean } & Record<string, unknown>, callback: LookupCallback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      const list = addresses as LookupAddress[];
      for (const entry of list) {
        const reason = blockedAddressReason(entry.address, allowPrivateNetworks);
        if (reason) {
          const blocked = new OutboundBlockedError(`${hostname} resolves to a blocked address: ${reason}`) as NodeJS.ErrnoException;
          blocked.code = 'EBLOCKED';
          return callback(blocked, []);
        }
      }
      if (options.all) return callback(null, list);
      const first = list[0];
      if (!first) return callback(Object.assign(new Error(`${hostname} has no addresses`), { code: 'ENOTFOUND' }), []);
      callback(null, first.address, first.family);
    });
  };
}

const agents = new Map<string, Agent>();
function agentFor(policy: OutboundPolicy): Agent {
  const id = `${policy.allowPrivateNetworks}:${policy.connectTimeoutMs}`;
  let agent = agents.get(id);
  if (!agent) {
    agent = new Agent({
      connect: { timeout: policy.connectTimeoutMs, lookup: guardedLookup(policy.allowPrivateNetworks) as never },
      headersTimeout: policy.totalTimeoutMs,
      bodyTimeout: policy.totalTimeoutMs,
    });
    agents.set(id, agent);
  }
  return agent;
}

function causeChain(error: unknown): unknown[] {
  const chain: unknown[] = [];
  let current: unknown = error;
  while (current && chain.length < 5) {
    chain.push(current);
    current = (current as { cause?: unknown }).cause;
  }
  return chain;
}

export type SafeFetchInit = RequestInit & { timeoutMs?: number };

/**
 * fetch for user-supplied URLs. Throws OutboundBlockedError (refused by policy: never contacted),
 * OutboundTimeoutError or OutboundUnreachableError; HTTP error statuses come back as responses.
 */
export async function safeFetch(input: string | URL, init: SafeFetchInit = {}, policy: OutboundPolicy = policyFromEnv()): Promise<Response> {
  const { timeoutMs = policy.totalTimeoutMs, ...rest } = init;
  const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(rest.signal ? [rest.signal] : [])]);
  let url = checkUrl(input, policy);
  let method = rest.method ?? 'GET';
  let body = rest.body;
  let headers = new Headers(rest.headers);
  for (let redirects = 0; ; redirects++) {
    let response: Response;
    try {
      response = (await undiciFetch(url, {
        ...(rest as UndiciRequestInit),
        method,
        headers: Object.fromEntries(headers),
        body: body as UndiciRequestInit['body'],
        redirect: 'manual',
        signal,
        dispatcher: agentFor(policy),
      })) as unknown as Response;
    } catch (error) {
      const chain = causeChain(error);
      const blocked = chain.find((e) => e instanceof OutboundBlockedError) as OutboundBlockedError | undefined;
      if (blocked) throw new OutboundBlockedError(blocked.message);
      if (chain.some((e) => (e as Error)?.name === 'TimeoutError' || (e as { code?: string })?.code === 'UND_ERR_CONNECT_TIMEOUT' || (e as { code?: string })?.code === 'UND_ERR_HEADERS_TIMEOUT')) {
        throw new OutboundTimeoutError(`${url.origin} did not answer within ${Math.round(timeoutMs / 1000)} s`);
      }
      const code = chain.map((e) => (e as { code?: string })?.code).find(Boolean);
      throw new OutboundUnreachableError(`${url.origin} is unreachable${code ? ` (${code})` : ''}`);
    }
    if (![301, 302, 303, 307, 308].includes(response.status)) return response;
    const location = response.headers.get('location');
    await response.body?.cancel();
    if (!location) return response;
    if (redirects >= policy.maxRedirects) throw new OutboundBlockedError(`${url.origin} redirected more than ${policy.maxRedirects} times`);
    const next = checkUrl(new URL(location, url), policy);
    // Credentials are for the origin the user configured: never forward them to another one.
    if (next.origin !== url.origin) {
      const kept = new Headers();
      for (const name of ['accept', 'content-type', 'user-agent']) if (headers.has(name)) kept.set(name, headers.get(name)!);
      headers = kept;
    }
    url = next;
    if (response.status === 303 || ((response.status === 301 || response.status === 302) && method === 'POST')) {
      method = 'GET';
      body = undefined;
    }
  }
}

/**
 * A response's body, locked at once and re-exposed through a stream that keeps the Response
 * reachable while it is read. Clients that stream (Octokit with `parseSuccessResponseBody: false`,
 * our GitLab client for archives) hand back only `response.body` and drop the Response; undici
 * cancels the body of a garbage-collected Response that nobody has started reading, and a
 * cancelled stream reads as an empty, *complete* archive (seen under load: whole repositories
 * analysed as empty).
 */
export function heldBody(response: Response): ReadableStream<Uint8Array> | null {
  if (!response.body) return null;
  const reader = response.body.getReader();
  // Referenced from pull(), so the Response stays reachable until the body is read or cancelled.
  const held: { response?: Response } = { response };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) {
        controller.close();
        delete held.response;
      } else controller.enqueue(value);
    },
    cancel: (reason) => {
      delete held.response;
      return reader.cancel(reason);
    },
  });
}
