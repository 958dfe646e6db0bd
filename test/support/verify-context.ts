/**
 * What the connector tests need to call `verify` / `setup` directly, outside a handler: a
 * context whose fetch applies a loopback-friendly outbound policy (the fakes listen on 127.0.0.1),
 * and a port with nothing behind it for "unreachable" cases.
 */
import { createServer } from 'node:net';
import type { VerifyContext } from '#connectors/types.ts';
import { safeFetch, type OutboundPolicy } from '#platform/outbound.ts';

/** Private addresses allowed, short timeouts: a test that waits, waits for at most a second. */
export const loopbackPolicy: OutboundPolicy = { allowPrivateNetworks: true, connectTimeoutMs: 500, totalTimeoutMs: 1000, maxRedirects: 5 };

export const silentLogger = { debug() {}, info() {}, warn() {}, error() {} };

export function verifyContext<C, K>(config: C, credentials: K, fetchPolicy: OutboundPolicy = loopbackPolicy): VerifyContext<C, K> {
  return { tenantId: 'tenant-a', externalId: 'ext-a', config, credentials, logger: silentLogger, fetch: (url, init) => safeFetch(url, init, fetchPolicy) };
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
