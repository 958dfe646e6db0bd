import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  blockedAddressReason,
  OutboundBlockedError,
  OutboundTimeoutError,
  OutboundUnreachableError,
  safeFetch,
  type OutboundPolicy,
} from '#platform/outbound.ts';

const closed: OutboundPolicy = { allowPrivateNetworks: false, connectTimeoutMs: 1000, totalTimeoutMs: 2000, maxRedirects: 5 };
const open: OutboundPolicy = { ...closed, allowPrivateNetworks: true };

let server: Server;
let base: string;
let connections = 0;
const requests: { url: string; headers: IncomingHttpHeaders }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    requests.push({ url: req.url ?? '', headers: req.headers });
    if (req.url === '/to-metadata') {
      res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
    } else if (req.url === '/to-self') {
      res.writeHead(302, { location: '/landing' }).end();
    } else if (req.url === '/to-other-origin') {
      res.writeHead(302, { location: `http://localhost:${(server.address() as AddressInfo).port}/landing` }).end();
    } else if (req.url === '/hang') {
      // never answers
    } else {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    }
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('safeFetch refuses what it must never contact', () => {
  it.each([
    ['the cloud metadata address', 'http://169.254.169.254/latest/meta-data/', open],
    ['the IPv6 metadata address', 'http://[fd00:ec2::254]/', open],
    ['a loopback address with private networks off', 'https://127.0.0.1:1/', closed],
    ['a private address with private networks off', 'https://10.1.2.3/', closed],
    ['an IPv4-mapped loopback address', 'https://[::ffff:127.0.0.1]/', closed],
    ['plain http in the cloud', 'http://example.com/', closed],
    ['a URL carrying a password', 'https://user:pw@example.com/', closed],
  ])('refuses %s', async (_label, url, policy) => {
    await expect(safeFetch(url, {}, policy)).rejects.toBeInstanceOf(OutboundBlockedError);
  });

  it('refuses a host name that resolves to a private address, without contacting it', async () => {
    const before = connections;
    const port = (server.address() as AddressInfo).port;
    await expect(safeFetch(`https://localhost:${port}/`, {}, closed)).rejects.toThrow(/resolves to a blocked address/);
    expect(connections).toBe(before);
  });

  it('re-checks every redirect target', async () => {
    await expect(safeFetch(`${base}/to-metadata`, {}, open)).rejects.toThrow(/metadata/);
  });

  it('follows a redirect within the same origin and keeps the credentials', async () => {
    const response = await safeFetch(`${base}/to-self`, { headers: { authorization: 'Bearer keep-me' } }, open);
    expect(response.status).toBe(200);
    expect(requests.at(-1)).toMatchObject({ url: '/landing', headers: { authorization: 'Bearer keep-me' } });
  });

  it('drops credentials when a redirect leaves the origin', async () => {
    const response = await safeFetch(`${base}/to-other-origin`, { headers: { authorization: 'Bearer do-not-forward' } }, open);
    expect(response.status).toBe(200);
    expect(requests.at(-1)?.headers.authorization).toBeUndefined();
  });
});

describe('safeFetch bounds time and explains failures', () => {
  it('times out a server that never answers', async () => {
    await expect(safeFetch(`${base}/hang`, { timeoutMs: 300 }, open)).rejects.toBeInstanceOf(OutboundTimeoutError);
  });

  it('reports an unreachable host', async () => {
    const idle = createServer();
    await new Promise<void>((resolve) => idle.listen(0, '127.0.0.1', resolve));
    const port = (idle.address() as AddressInfo).port;
    await new Promise((resolve) => idle.close(resolve));
    await expect(safeFetch(`http://127.0.0.1:${port}/`, {}, open)).rejects.toBeInstanceOf(OutboundUnreachableError);
  });
});

describe('blockedAddressReason', () => {
  it('allows public addresses and names the range of others', () => {
    expect(blockedAddressReason('93.184.216.34', false)).toBeUndefined();
    expect(blockedAddressReason('192.168.1.1', false)).toMatch(/private/);
    expect(blockedAddressReason('100.64.0.1', false)).toMatch(/carrierGradeNat/);
    expect(blockedAddressReason('192.168.1.1', true)).toBeUndefined();
    expect(blockedAddressReason('169.254.169.254', true)).toMatch(/metadata/);
  });
});
