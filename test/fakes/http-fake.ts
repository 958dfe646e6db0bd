/**
 * The small base every HTTP fake under test/fakes/ shares: a loopback node:http server that
 * records each request (so a test can assert what was sent, e.g. the auth header), can be told to
 * answer every guarded route with a failure status (`mode`: 401/403/404/429/500/503) or to be
 * slow (`mode: 'slow'`: each answer waits `delayMs`), and closes cleanly (pending slow answers
 * included). Each fake adds its own routes and its own error bodies, shaped like the real server's.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FakeMode = 'normal' | 'slow' | 401 | 403 | 404 | 429 | 500 | 502 | 503;

export interface RecordedRequest {
  method: string;
  /** Path and query as received (`/api/datasources?x=1`). */
  url: string;
  /** Decoded path without the query. */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface CommonFakeOptions {
  /** Fixed port (the start-fakes script); 0 or absent picks a free one. */
  port?: number;
  /** Listen address, 127.0.0.1 unless told otherwise. */
  host?: string;
  /** How to answer guarded routes; 'normal' by default. */
  mode?: FakeMode;
  /** When set, `mode` applies only to paths matching it (e.g. /^\/_cat\//), the rest answers normally. */
  modePaths?: RegExp;
  /** How long 'slow' waits before answering normally (default 5,000 ms). */
  delayMs?: number;
  /** Retry-After sent with 429 (default 7). */
  retryAfterSeconds?: number;
  /**
   * Echo the presented credentials in error messages, as some misbehaving proxies do: lets a test
   * prove that check details never carry a secret even when the upstream repeats it.
   */
  echoCredentials?: boolean;
}

export interface FakeReply {
  status: number;
  headers?: Record<string, string>;
  /** A string or bytes (a Buffer: an archive download) are sent as is; anything else as JSON. */
  body?: unknown;
}

export interface HttpFakeDefinition<Options extends CommonFakeOptions> {
  options: Options;
  /** The failure answer for a mode status, shaped like the real server's error bodies. */
  errorReply(status: number, request: RecordedRequest, options: Options): FakeReply;
  /** Routes the modes do not touch (an anonymous health route the real server always answers). */
  isUnguarded?(request: RecordedRequest): boolean;
  /** The fake's routes. */
  handle(request: RecordedRequest, options: Options): FakeReply | Promise<FakeReply>;
}

export interface HttpFake<Options extends CommonFakeOptions> {
  url: string;
  port: number;
  /** Every request received, in order. */
  requests: RecordedRequest[];
  /** Changes options (mode, expected credentials…) for the following requests. */
  set(changes: Partial<Options>): void;
  close(): Promise<void>;
}

export function reply(status: number, body?: unknown, headers: Record<string, string> = {}): FakeReply {
  return { status, body, headers };
}

export function html(status: number, text: string, headers: Record<string, string> = {}): FakeReply {
  return { status, body: text, headers: { 'content-type': 'text/html; charset=utf-8', ...headers } };
}

export const NGINX_404 = '<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';
export const SPA_PAGE = '<!doctype html><html><head><title>Acme Portal</title></head><body><div id="root"></div><script src="/static/main.js"></script></body></html>';

function write(res: ServerResponse, result: FakeReply): void {
  const headers: Record<string, string> = { ...(result.headers ?? {}) };
  let payload: string | Uint8Array = '';
  if (typeof result.body === 'string' || result.body instanceof Uint8Array) payload = result.body;
  else if (result.body !== undefined) {
    payload = JSON.stringify(result.body);
    if (!Object.keys(headers).some((name) => name.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json; charset=utf-8';
  }
  headers['content-length'] = String(Buffer.byteLength(payload));
  res.writeHead(result.status, headers).end(payload);
}

async function readRequest(req: IncomingMessage): Promise<RecordedRequest> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const parsed = new URL(req.url ?? '/', 'http://fake.invalid');
  let path = parsed.pathname;
  try {
    path = decodeURIComponent(parsed.pathname);
  } catch {
    // keep the raw path
  }
  return { method: req.method ?? 'GET', url: req.url ?? '/', path, query: parsed.searchParams, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
}

export async function startHttpFake<Options extends CommonFakeOptions>(definition: HttpFakeDefinition<Options>): Promise<HttpFake<Options>> {
  // The definition's own object: a fake that serves other protocols too (Jaeger's gRPC) sees every set().
  const options = definition.options;
  const requests: RecordedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const server = createServer((req, res) => {
    void (async () => {
      const request = await readRequest(req);
      requests.push(request);
      const guarded = !definition.isUnguarded?.(request) && (!options.modePaths || options.modePaths.test(request.path));
      const mode = options.mode ?? 'normal';
      if (guarded && mode === 'slow') {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            timers.delete(timer);
            resolve();
          }, options.delayMs ?? 5000);
          timers.add(timer);
        });
        if (res.destroyed) return;
      }
      if (guarded && typeof mode === 'number') {
        const failure = definition.errorReply(mode, request, options);
        if (mode === 429) failure.headers = { 'retry-after': String(options.retryAfterSeconds ?? 7), ...(failure.headers ?? {}) };
        write(res, failure);
        return;
      }
      write(res, await definition.handle(request, options));
    })().catch((error: unknown) => {
      if (!res.headersSent) write(res, reply(500, { message: `fake failed: ${(error as Error).message}` }));
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    requests,
    set(changes) {
      Object.assign(options, changes);
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The bearer token of a request, if any. */
export function bearerToken(request: RecordedRequest): string | undefined {
  const header = request.headers.authorization;
  return typeof header === 'string' && /^bearer\s+/i.test(header) ? header.replace(/^bearer\s+/i, '') : undefined;
}
