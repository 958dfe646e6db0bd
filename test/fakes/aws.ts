/**
 * Loopback fakes of the two AWS services the EKS connector talks to, following AWS's documented
 * wire formats so the real SDK v3 clients can talk to them (point them here with
 * AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL_EKS):
 *
 * - STS, Query API: `POST /` with a form body `Action=AssumeRoleWithWebIdentity|AssumeRole|
 *   GetCallerIdentity&Version=2011-06-15…`, XML answers in the
 *   `https://sts.amazonaws.com/doc/2011-06-15/` namespace, errors as
 *   `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>…`. Also
 *   `GET /?Action=GetCallerIdentity&X-Amz-…` presigned URLs, as the EKS authenticator replays
 *   them (JSON when asked with `Accept: application/json`, as aws-iam-authenticator does).
 * - EKS, REST-JSON: `GET /clusters/{name}` (DescribeCluster) and `GET /clusters` (ListClusters);
 *   errors carry `x-amzn-errortype` and a `{ "message" }` body.
 *
 * Both check SigV4 signatures with their own implementation (not the SDK's signer), against the
 * session credentials this STS fake issued: a request signed with anything else is refused as
 * AWS would. One `AwsFakeState` is shared by the two servers (they are separate services, with
 * separate endpoints, like in AWS).
 */
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKubernetesFake, type FakeKubeCluster, type KubernetesFake } from './kubernetes.ts';

export const STS_XMLNS = 'https://sts.amazonaws.com/doc/2011-06-15/';
export const CLUSTER_ID_HEADER = 'x-k8s-aws-id';
/** STS accepts a presigned URL for 15 minutes after X-Amz-Date. */
const PRESIGN_VALIDITY_MS = 15 * 60_000;

export interface FakeRole {
  /** arn:aws:iam::<account>:role/<name> */
  arn: string;
  /** Web identity: the token its trust policy accepts (stands in for `accounts.google.com:aud`). Absent: web identity not trusted. */
  webIdentityToken?: string;
  /** Optional `sts:RoleSessionName` condition in the trust policy. */
  sessionName?: string;
  /** AssumeRole: the `sts:ExternalId` its trust policy requires ('*': any non-empty one, for the local demo). Absent: AssumeRole not trusted. */
  externalId?: string;
  /** Whether the role's permissions allow eks:DescribeCluster (default true). */
  describeCluster?: boolean;
}

export type AuthenticationMode = 'API' | 'API_AND_CONFIG_MAP' | 'CONFIG_MAP';

export interface FakeEksCluster {
  name: string;
  region: string;
  /** The Kubernetes API endpoint DescribeCluster reports (point it at the Kubernetes fake). */
  endpoint: string;
  /** certificateAuthority.data: base64 of the PEM CA. */
  caData: string;
  /** Omitted in the answer when undefined (as for clusters created before access entries). */
  authenticationMode?: AuthenticationMode;
  status?: 'ACTIVE' | 'CREATING' | 'DELETING' | 'FAILED' | 'UPDATING' | 'PENDING';
  version?: string;
  endpointPublicAccess?: boolean;
  /** Account in the cluster ARN (defaults to the first role's account). */
  accountId?: string;
}

export interface IssuedSession {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  roleArn: string;
  sessionName: string;
  assumedRoleArn: string;
  expiration: Date;
  via: 'AssumeRoleWithWebIdentity' | 'AssumeRole';
}

export interface RecordedAwsRequest {
  service: 'sts' | 'eks';
  method: string;
  path: string;
  action?: string;
  params: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  status: number;
  errorCode?: string;
}

export interface AwsFault {
  service: 'sts' | 'eks';
  /** Only requests whose action (STS) or path (EKS) includes this. */
  match?: string;
  /** Answer with this status (and `code`) instead of the real answer. */
  status?: number;
  code?: string;
  /** Delay before answering (the "slowly" case). */
  delayMs?: number;
  /** How many requests it applies to (default 1). */
  times?: number;
}

export interface AwsFakeOptions {
  roles?: FakeRole[];
  clusters?: FakeEksCluster[];
  /** Web identity tokens the fake identity provider considers genuine (default: every role's token). */
  validWebIdentityTokens?: string[];
  /** The OpenTrace account that calls AssumeRole (appears in AccessDenied messages). */
  callerAccountId?: string;
  now?: () => Date;
}

export class AwsFakeState {
  readonly roles = new Map<string, FakeRole>();
  clusters: FakeEksCluster[];
  readonly issued = new Map<string, IssuedSession>();
  readonly requests: RecordedAwsRequest[] = [];
  readonly faults: AwsFault[] = [];
  validWebIdentityTokens: Set<string>;
  callerAccountId: string;
  now: () => Date;

  constructor(options: AwsFakeOptions = {}) {
    for (const role of options.roles ?? []) this.roles.set(role.arn, role);
    this.clusters = [...(options.clusters ?? [])];
    this.validWebIdentityTokens = new Set(options.validWebIdentityTokens ?? (options.roles ?? []).flatMap((r) => (r.webIdentityToken ? [r.webIdentityToken] : [])));
    this.callerAccountId = options.callerAccountId ?? '999988887777';
    this.now = options.now ?? (() => new Date());
  }

  setRole(role: FakeRole): void {
    this.roles.set(role.arn, role);
    if (role.webIdentityToken) this.validWebIdentityTokens.add(role.webIdentityToken);
  }

  setCluster(cluster: FakeEksCluster): void {
    this.clusters = [...this.clusters.filter((c) => !(c.name === cluster.name && c.region === cluster.region)), cluster];
  }

  injectFault(fault: AwsFault): void {
    this.faults.push({ times: 1, ...fault });
  }

  /** Every secret value this fake handed out: tests assert none of them leaks anywhere. */
  secrets(): string[] {
    return [...this.issued.values()].flatMap((s) => [s.secretAccessKey, s.sessionToken]);
  }

  takeFault(service: 'sts' | 'eks', subject: string): AwsFault | undefined {
    const index = this.faults.findIndex((f) => f.service === service && (!f.match || subject.includes(f.match)) && (f.times ?? 1) > 0);
    if (index < 0) return undefined;
    const fault = this.faults[index]!;
    fault.times = (fault.times ?? 1) - 1;
    if (fault.times <= 0) this.faults.splice(index, 1);
    return fault;
  }
}

// ---------------------------------------------------------------------------------------------
// SigV4, written from the AWS documentation (independent of the SDK's signer under test).

function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}
function rfc3986(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Raw query string → decoded [key, value] pairs (`+` is a literal plus in SigV4 URLs, not a space). */
function queryPairs(rawQuery: string): Array<[string, string]> {
  if (!rawQuery) return [];
  return rawQuery.split('&').filter(Boolean).map((part) => {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    return [decodeURIComponent(key), decodeURIComponent(value)];
  });
}

function canonicalQuery(pairs: Array<[string, string]>): string {
  return pairs
    .map(([k, v]) => [rfc3986(k), rfc3986(v)] as const)
    .sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

function headerValue(headers: IncomingMessage['headers'], name: string): string | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  return (Array.isArray(value) ? value.join(',') : value).trim().replace(/\s+/g, ' ');
}

interface SigV4Input {
  method: string;
  path: string;
  query: Array<[string, string]>;
  headers: IncomingMessage['headers'];
  signedHeaders: string[];
  payloadHash: string;
  amzDate: string;
  scope: string;
  secretAccessKey: string;
}

function sigV4Signature(input: SigV4Input): string {
  const canonicalHeaders = input.signedHeaders.map((name) => `${name}:${headerValue(input.headers, name) ?? ''}\n`).join('');
  const canonicalRequest = [input.method, input.path, canonicalQuery(input.query), canonicalHeaders, input.signedHeaders.join(';'), input.payloadHash].join('\n');
  const stringToSign = ['AWS4-HMAC-SHA256', input.amzDate, input.scope, sha256Hex(canonicalRequest)].join('\n');
  const [date, region, service] = input.scope.split('/');
  const key = hmac(hmac(hmac(hmac(`AWS4${input.secretAccessKey}`, date!), region!), service!), 'aws4_request');
  return hmac(key, stringToSign).toString('hex');
}

function sameHex(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

function parseAmzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  return m ? new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!)) : undefined;
}

export interface SigV4Result {
  ok: boolean;
  code?: string;
  message?: string;
  accessKeyId?: string;
  region?: string;
  service?: string;
  signedHeaders?: string[];
  session?: IssuedSession;
}

/** Verifies an `Authorization: AWS4-HMAC-SHA256 …` request against the issued sessions. */
function verifyHeaderSigned(state: AwsFakeState, req: IncomingMessage, path: string, rawQuery: string, body: Buffer, expectService: string): SigV4Result {
  const auth = headerValue(req.headers, 'authorization');
  if (!auth) return { ok: false, code: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' };
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return { ok: false, code: 'IncompleteSignatureException', message: 'Authorization header requires Credential, SignedHeaders and Signature.' };
  const [, accessKeyId, date, region, service, signedHeadersRaw, signature] = m;
  if (service !== expectService) return { ok: false, code: 'InvalidSignatureException', message: `Credential should be scoped to correct service: '${expectService}'.` };
  const session = state.issued.get(accessKeyId!);
  if (!session) return { ok: false, code: 'UnrecognizedClientException', message: 'The security token included in the request is invalid.' };
  if (headerValue(req.headers, 'x-amz-security-token') !== session.sessionToken) {
    return { ok: false, code: 'UnrecognizedClientException', message: 'The security token included in the request is invalid.' };
  }
  if (session.expiration.getTime() < state.now().getTime()) return { ok: false, code: 'ExpiredTokenException', message: 'The security token included in the request is expired' };
  const amzDate = headerValue(req.headers, 'x-amz-date') ?? '';
  const signedHeaders = signedHeadersRaw!.split(';');
  const expected = sigV4Signature({
    method: req.method ?? 'GET',
    path,
    query: queryPairs(rawQuery),
    headers: req.headers,
    signedHeaders,
    payloadHash: headerValue(req.headers, 'x-amz-content-sha256') ?? sha256Hex(body),
    amzDate,
    scope: `${date}/${region}/${service}/aws4_request`,
    secretAccessKey: session.secretAccessKey,
  });
  if (!sameHex(expected, signature!)) {
    return { ok: false, code: 'InvalidSignatureException', message: 'The request signature we calculated does not match the signature you provided.' };
  }
  return { ok: true, accessKeyId: accessKeyId!, region: region!, service: service!, signedHeaders, session };
}

/** Verifies a presigned URL (`X-Amz-Signature` in the query) against the issued sessions. */
export function verifyPresigned(state: AwsFakeState, req: IncomingMessage, path: string, rawQuery: string): SigV4Result {
  const pairs = queryPairs(rawQuery);
  const param = (name: string) => pairs.find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];
  if (param('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') return { ok: false, code: 'IncompleteSignature', message: 'X-Amz-Algorithm must be AWS4-HMAC-SHA256' };
  const credential = param('X-Amz-Credential') ?? '';
  const [accessKeyId, date, region, service, terminator] = credential.split('/');
  if (!accessKeyId || !date || !region || service !== 'sts' || terminator !== 'aws4_request') {
    return { ok: false, code: 'IncompleteSignature', message: 'X-Amz-Credential is malformed' };
  }
  const amzDate = param('X-Amz-Date') ?? '';
  const signedAt = parseAmzDate(amzDate);
  if (!signedAt) return { ok: false, code: 'IncompleteSignature', message: 'X-Amz-Date is missing or malformed' };
  if (state.now().getTime() - signedAt.getTime() > PRESIGN_VALIDITY_MS) return { ok: false, code: 'ExpiredToken', message: 'The security token included in the request is expired' };
  const session = state.issued.get(accessKeyId);
  if (!session || param('X-Amz-Security-Token') !== session.sessionToken) {
    return { ok: false, code: 'InvalidClientTokenId', message: 'The security token included in the request is invalid.' };
  }
  const signedHeaders = (param('X-Amz-SignedHeaders') ?? '').split(';').filter(Boolean);
  const signature = param('X-Amz-Signature') ?? '';
  const unsigned = pairs.filter(([k]) => k !== 'X-Amz-Signature');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const matches = [sha256Hex(''), 'UNSIGNED-PAYLOAD'].some((payloadHash) =>
    sameHex(sigV4Signature({ method: req.method ?? 'GET', path, query: unsigned, headers: req.headers, signedHeaders, payloadHash, amzDate, scope, secretAccessKey: session.secretAccessKey }), signature),
  );
  if (!matches) return { ok: false, code: 'SignatureDoesNotMatch', message: 'The request signature we calculated does not match the signature you provided.' };
  return { ok: true, accessKeyId, region, service, signedHeaders, session };
}

// ---------------------------------------------------------------------------------------------

function escapeXml(value: string): string {
  return value.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Timers of delayed ("slow") answers; cleared when a server closes so nothing outlives a test run. */
const pendingDelays = new WeakMap<Server, Set<NodeJS.Timeout>>();
function delay(server: Server, ms: number): Promise<void> {
  let timers = pendingDelays.get(server);
  if (!timers) pendingDelays.set(server, (timers = new Set()));
  const set = timers;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      set.delete(timer);
      resolve();
    }, ms);
    set.add(timer);
  });
}

export interface RunningFake {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

async function listen(server: Server, port: number, host: string): Promise<RunningFake> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${actual}`,
    port: actual,
    server,
    close: async () => {
      for (const timer of pendingDelays.get(server) ?? []) clearTimeout(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const ROLE_ARN = /^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):role\/(?:.*\/)?([\w+=,.@-]{1,64})$/;
const SESSION_NAME = /^[\w+=,.@-]{2,64}$/;
const STS_STATUS: Record<string, number> = {
  AccessDenied: 403,
  InvalidIdentityToken: 400,
  ExpiredTokenException: 400,
  IDPCommunicationError: 400,
  ValidationError: 400,
  InvalidAction: 400,
  MissingAuthenticationToken: 403,
  InvalidClientTokenId: 403,
  SignatureDoesNotMatch: 403,
  ExpiredToken: 403,
  IncompleteSignature: 400,
  RegionDisabledException: 403,
  Throttling: 400,
  InternalFailure: 500,
  ServiceUnavailable: 503,
};

function assumedRoleArnFor(roleArn: string, sessionName: string): string {
  const m = ROLE_ARN.exec(roleArn)!;
  return `arn:${m[1]}:sts::${m[2]}:assumed-role/${m[3]}/${sessionName}`;
}

function issueSession(state: AwsFakeState, roleArn: string, sessionName: string, durationSeconds: number, via: IssuedSession['via']): IssuedSession {
  const session: IssuedSession = {
    accessKeyId: `ASIA${randomBytes(8).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString('base64'),
    sessionToken: `FwoGZXIvYXdzEFAKE${randomBytes(120).toString('base64')}`,
    roleArn,
    sessionName,
    assumedRoleArn: assumedRoleArnFor(roleArn, sessionName),
    expiration: new Date(state.now().getTime() + durationSeconds * 1000),
    via,
  };
  state.issued.set(session.accessKeyId, session);
  return session;
}

function roleId(roleArn: string): string {
  return `AROA${createHash('sha256').update(roleArn).digest('hex').slice(0, 16).toUpperCase()}`;
}

function credentialsXml(session: IssuedSession): string {
  return (
    `<AssumedRoleUser><AssumedRoleId>${roleId(session.roleArn)}:${escapeXml(session.sessionName)}</AssumedRoleId><Arn>${escapeXml(session.assumedRoleArn)}</Arn></AssumedRoleUser>` +
    `<Credentials><AccessKeyId>${session.accessKeyId}</AccessKeyId><SecretAccessKey>${escapeXml(session.secretAccessKey)}</SecretAccessKey>` +
    `<SessionToken>${escapeXml(session.sessionToken)}</SessionToken><Expiration>${session.expiration.toISOString().replace(/\.\d{3}Z$/, 'Z')}</Expiration></Credentials>`
  );
}

class StsError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** STS Query API: AssumeRoleWithWebIdentity, AssumeRole, GetCallerIdentity (POST and presigned GET). */
export function createStsServer(state: AwsFakeState): Server {
  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://sts.local');
    const rawQuery = (req.url ?? '').includes('?') ? (req.url ?? '').slice((req.url ?? '').indexOf('?') + 1) : '';
    const body = await readBody(req);
    const params: Record<string, string> =
      req.method === 'POST' ? Object.fromEntries(new URLSearchParams(body.toString('utf8'))) : Object.fromEntries(queryPairs(rawQuery));
    const action = params.Action ?? '';
    const record: RecordedAwsRequest = { service: 'sts', method: req.method ?? 'GET', path: url.pathname, action, params, headers: req.headers, status: 200 };
    state.requests.push(record);
    const requestId = randomUUID();
    const wantsJson = (req.headers.accept ?? '').includes('application/json');

    const sendError = (code: string, message: string, status = STS_STATUS[code] ?? 400) => {
      record.status = status;
      record.errorCode = code;
      if (wantsJson) {
        res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-requestid': requestId });
        res.end(JSON.stringify({ Error: { Code: code, Message: message, Type: status >= 500 ? 'Receiver' : 'Sender' }, RequestId: requestId }));
        return;
      }
      res.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId });
      res.end(
        `<ErrorResponse xmlns="${STS_XMLNS}">\n  <Error>\n    <Type>${status >= 500 ? 'Receiver' : 'Sender'}</Type>\n    <Code>${code}</Code>\n    <Message>${escapeXml(message)}</Message>\n  </Error>\n  <RequestId>${requestId}</RequestId>\n</ErrorResponse>\n`,
      );
    };
    const sendResult = (name: string, inner: string) => {
      res.writeHead(200, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId });
      res.end(
        `<${name}Response xmlns="${STS_XMLNS}">\n  <${name}Result>${inner}</${name}Result>\n  <ResponseMetadata>\n    <RequestId>${requestId}</RequestId>\n  </ResponseMetadata>\n</${name}Response>\n`,
      );
    };
    const callerIdentity = (session: IssuedSession) => {
      const account = ROLE_ARN.exec(session.roleArn)![2]!;
      const userId = `${roleId(session.roleArn)}:${session.sessionName}`;
      if (wantsJson) {
        res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-requestid': requestId });
        res.end(JSON.stringify({ GetCallerIdentityResponse: { GetCallerIdentityResult: { Account: account, Arn: session.assumedRoleArn, UserId: userId }, ResponseMetadata: { RequestId: requestId } } }));
        return;
      }
      sendResult('GetCallerIdentity', `<Arn>${escapeXml(session.assumedRoleArn)}</Arn><UserId>${escapeXml(userId)}</UserId><Account>${account}</Account>`);
    };

    try {
      const fault = state.takeFault('sts', action);
      if (fault?.delayMs) await delay(server, fault.delayMs);
      if (fault?.status) throw new StsError(fault.code ?? (fault.status >= 500 ? 'InternalFailure' : 'Throttling'), 'Injected fault');
      if (params.Version && params.Version !== '2011-06-15') throw new StsError('InvalidAction', `Could not find operation ${action} for version ${params.Version}`);

      switch (action) {
        case 'AssumeRoleWithWebIdentity': {
          if (req.method !== 'POST') throw new StsError('InvalidAction', 'AssumeRoleWithWebIdentity must be a POST');
          const { RoleArn = '', RoleSessionName = '', WebIdentityToken = '' } = params;
          if (!ROLE_ARN.test(RoleArn)) throw new StsError('ValidationError', `1 validation error detected: Value '${RoleArn}' at 'roleArn' failed to satisfy constraint`);
          if (!SESSION_NAME.test(RoleSessionName)) throw new StsError('ValidationError', "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint");
          if (!state.validWebIdentityTokens.has(WebIdentityToken)) throw new StsError('InvalidIdentityToken', "Couldn't verify the token: it is not a valid ID token from accounts.google.com");
          const role = state.roles.get(RoleArn);
          if (!role || role.webIdentityToken !== WebIdentityToken || (role.sessionName && role.sessionName !== RoleSessionName)) {
            throw new StsError('AccessDenied', 'Not authorized to perform sts:AssumeRoleWithWebIdentity');
          }
          const session = issueSession(state, RoleArn, RoleSessionName, Number(params.DurationSeconds ?? 3600), 'AssumeRoleWithWebIdentity');
          sendResult(
            'AssumeRoleWithWebIdentity',
            `<SubjectFromWebIdentityToken>104651234567890123456</SubjectFromWebIdentityToken><Audience>opentrace-client-id</Audience>${credentialsXml(session)}<Provider>accounts.google.com</Provider>`,
          );
          return;
        }
        case 'AssumeRole': {
          if (req.method !== 'POST') throw new StsError('InvalidAction', 'AssumeRole must be a POST');
          const auth = headerValue(req.headers, 'authorization') ?? '';
          if (!/^AWS4-HMAC-SHA256 Credential=[^/]+\/\d{8}\/[^/]+\/sts\/aws4_request/.test(auth)) throw new StsError('MissingAuthenticationToken', 'Request is missing Authentication Token');
          const { RoleArn = '', RoleSessionName = '', ExternalId } = params;
          if (!ROLE_ARN.test(RoleArn)) throw new StsError('ValidationError', `1 validation error detected: Value '${RoleArn}' at 'roleArn' failed to satisfy constraint`);
          if (!SESSION_NAME.test(RoleSessionName)) throw new StsError('ValidationError', "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint");
          const role = state.roles.get(RoleArn);
          if (!role || role.externalId === undefined || (role.externalId === '*' ? !ExternalId : role.externalId !== ExternalId) || (role.sessionName && role.sessionName !== RoleSessionName)) {
            throw new StsError('AccessDenied', `User: arn:aws:iam::${state.callerAccountId}:user/opentrace is not authorized to perform: sts:AssumeRole on resource: ${RoleArn}`);
          }
          const session = issueSession(state, RoleArn, RoleSessionName, Number(params.DurationSeconds ?? 3600), 'AssumeRole');
          sendResult('AssumeRole', credentialsXml(session));
          return;
        }
        case 'GetCallerIdentity': {
          if (req.method === 'GET') {
            const verified = verifyPresigned(state, req, url.pathname, rawQuery);
            if (!verified.ok) throw new StsError(verified.code!, verified.message!);
            if (!verified.signedHeaders!.includes(CLUSTER_ID_HEADER)) {
              throw new StsError('AccessDenied', `the presigned URL does not sign the ${CLUSTER_ID_HEADER} header (X-Amz-SignedHeaders=${verified.signedHeaders!.join(';')})`);
            }
            callerIdentity(verified.session!);
            return;
          }
          const verified = verifyHeaderSigned(state, req, url.pathname, rawQuery, body, 'sts');
          if (!verified.ok) throw new StsError(verified.code === 'UnrecognizedClientException' ? 'InvalidClientTokenId' : 'SignatureDoesNotMatch', verified.message!);
          callerIdentity(verified.session!);
          return;
        }
        default:
          throw new StsError('InvalidAction', `Could not find operation ${action} for version 2011-06-15`);
      }
    } catch (error) {
      if (error instanceof StsError) return sendError(error.code, error.message);
      sendError('InternalFailure', 'The request processing has failed because of an unknown error.', 500);
    }
  });
  return server;
}

function clusterJson(cluster: FakeEksCluster, accountId: string) {
  return {
    name: cluster.name,
    arn: `arn:aws:eks:${cluster.region}:${accountId}:cluster/${cluster.name}`,
    createdAt: 1_735_689_600.123,
    version: cluster.version ?? '1.31',
    endpoint: cluster.status && cluster.status !== 'ACTIVE' && cluster.status !== 'UPDATING' ? undefined : cluster.endpoint,
    roleArn: `arn:aws:iam::${accountId}:role/eks-cluster-role`,
    resourcesVpcConfig: {
      subnetIds: ['subnet-0a1b2c3d4e5f60718', 'subnet-0b1c2d3e4f5a60718'],
      securityGroupIds: [],
      clusterSecurityGroupId: 'sg-0123456789abcdef0',
      vpcId: 'vpc-0123456789abcdef0',
      endpointPublicAccess: cluster.endpointPublicAccess ?? true,
      endpointPrivateAccess: true,
      publicAccessCidrs: ['0.0.0.0/0'],
    },
    kubernetesNetworkConfig: { serviceIpv4Cidr: '172.20.0.0/16', ipFamily: 'ipv4' },
    logging: { clusterLogging: [{ types: ['api', 'audit', 'authenticator', 'controllerManager', 'scheduler'], enabled: false }] },
    identity: { oidc: { issuer: `https://oidc.eks.${cluster.region}.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF` } },
    status: cluster.status ?? 'ACTIVE',
    certificateAuthority: { data: cluster.caData },
    platformVersion: 'eks.12',
    tags: {},
    ...(cluster.authenticationMode ? { accessConfig: { bootstrapClusterCreatorAdminPermissions: true, authenticationMode: cluster.authenticationMode } } : {}),
  };
}

/** EKS REST-JSON: DescribeCluster and ListClusters, SigV4-checked with the sessions STS issued. */
export function createEksServer(state: AwsFakeState): Server {
  const server: Server = createServer(async (req, res) => {
    const rawUrl = req.url ?? '/';
    const path = rawUrl.split('?')[0]!;
    const rawQuery = rawUrl.includes('?') ? rawUrl.slice(rawUrl.indexOf('?') + 1) : '';
    const body = await readBody(req);
    const record: RecordedAwsRequest = { service: 'eks', method: req.method ?? 'GET', path, params: Object.fromEntries(queryPairs(rawQuery)), headers: req.headers, status: 200 };
    state.requests.push(record);
    const requestId = randomUUID();
    const send = (status: number, payload: unknown, errorType?: string) => {
      record.status = status;
      if (errorType) record.errorCode = errorType;
      res.writeHead(status, {
        'content-type': 'application/json',
        'x-amzn-requestid': requestId,
        ...(errorType ? { 'x-amzn-errortype': `${errorType}:http://internal.amazon.com/coral/com.amazonaws.eks/` } : {}),
      });
      res.end(JSON.stringify(payload));
    };

    const fault = state.takeFault('eks', path);
    if (fault?.delayMs) await delay(server, fault.delayMs);
    if (fault?.status) return send(fault.status, { message: 'Injected fault' }, fault.code ?? (fault.status >= 500 ? 'ServerException' : 'ThrottlingException'));

    const verified = verifyHeaderSigned(state, req, path, rawQuery, body, 'eks');
    if (!verified.ok) return send(403, { message: verified.message }, verified.code);
    const session = verified.session!;
    const region = verified.region!;
    const account = ROLE_ARN.exec(session.roleArn)![2]!;

    const describe = /^\/clusters\/([^/]+)$/.exec(path);
    if (req.method === 'GET' && describe) {
      const name = decodeURIComponent(describe[1]!);
      const role = state.roles.get(session.roleArn);
      if (role?.describeCluster === false) {
        return send(
          403,
          { message: `User: ${session.assumedRoleArn} is not authorized to perform: eks:DescribeCluster on resource: arn:aws:eks:${region}:${account}:cluster/${name}` },
          'AccessDeniedException',
        );
      }
      const cluster = state.clusters.find((c) => c.name === name && c.region === region);
      if (!cluster) return send(404, { message: `No cluster found for name: ${name}.`, clusterName: name }, 'ResourceNotFoundException');
      return send(200, { cluster: clusterJson(cluster, cluster.accountId ?? account) });
    }
    if (req.method === 'GET' && path === '/clusters') {
      return send(200, { clusters: state.clusters.filter((c) => c.region === region).map((c) => c.name), nextToken: null });
    }
    return send(404, { message: `No route for ${req.method} ${path}` }, 'ResourceNotFoundException');
  });
  return server;
}

export async function startStsFake(state: AwsFakeState, options: { port?: number; host?: string } = {}): Promise<RunningFake> {
  return listen(createStsServer(state), options.port ?? 0, options.host ?? '127.0.0.1');
}

export async function startEksFake(state: AwsFakeState, options: { port?: number; host?: string } = {}): Promise<RunningFake> {
  return listen(createEksServer(state), options.port ?? 0, options.host ?? '127.0.0.1');
}

// ---------------------------------------------------------------------------------------------
// All three together, wired like AWS: for the start-fakes script and the README walkthrough.

export const DEMO_ACCOUNT_ID = '111122223333';
export const DEMO_ROLE_ARN = `arn:aws:iam::${DEMO_ACCOUNT_ID}:role/OpenTraceEKS`;
export const DEMO_WEB_IDENTITY_TOKEN = 'opentrace-local-web-identity-token';

export interface EksFakes {
  state: AwsFakeState;
  sts: RunningFake;
  eks: RunningFake;
  kube: KubernetesFake;
  /** What the API process needs to use them: endpoint overrides, the token file, private networks on. */
  env: Record<string, string>;
  close(): Promise<void>;
}

/**
 * STS, EKS and a Kubernetes API with a demo role (trusting web identity with
 * DEMO_WEB_IDENTITY_TOKEN for any tenant, and AssumeRole with any ExternalId) and two clusters,
 * prod-eu (eu-west-1, API_AND_CONFIG_MAP) and prod-us (us-east-1, API), both with an access entry
 * for the role, plus `no-access` (eu-west-1): an access entry without a view policy (403).
 */
export async function startEksFakes(options: { stsPort?: number; eksPort?: number; kubePort?: number; host?: string; tokenFile?: string } = {}): Promise<EksFakes> {
  const host = options.host ?? '127.0.0.1';
  const state = new AwsFakeState({ roles: [{ arn: DEMO_ROLE_ARN, webIdentityToken: DEMO_WEB_IDENTITY_TOKEN, externalId: '*' }] });
  const sts = await startStsFake(state, { port: options.stsPort ?? 0, host });
  const eks = await startEksFake(state, { port: options.eksPort ?? 0, host });
  const kubeClusters: FakeKubeCluster[] = [
    { name: 'prod-eu', authenticationMode: 'API_AND_CONFIG_MAP', accessEntries: { [DEMO_ROLE_ARN]: ['AmazonEKSViewPolicy'] } },
    { name: 'prod-us', authenticationMode: 'API', accessEntries: { [DEMO_ROLE_ARN]: ['AmazonEKSViewPolicy'] } },
    { name: 'no-access', authenticationMode: 'API', accessEntries: { [DEMO_ROLE_ARN]: [] } },
  ];
  const kube = await startKubernetesFake({ stsUrl: sts.url, clusters: kubeClusters, port: options.kubePort ?? 0, host });
  const regions: Record<string, string> = { 'prod-eu': 'eu-west-1', 'prod-us': 'us-east-1', 'no-access': 'eu-west-1' };
  for (const cluster of kubeClusters) {
    state.setCluster({ name: cluster.name, region: regions[cluster.name]!, endpoint: kube.endpointFor(cluster.name), caData: kube.caData, authenticationMode: cluster.authenticationMode! });
  }
  const tokenFile = options.tokenFile ?? join(mkdtempSync(join(tmpdir(), 'opentrace-eks-fakes-')), 'web-identity-token');
  writeFileSync(tokenFile, DEMO_WEB_IDENTITY_TOKEN);
  return {
    state,
    sts,
    eks,
    kube,
    env: {
      AWS_ENDPOINT_URL_STS: sts.url,
      AWS_ENDPOINT_URL_EKS: eks.url,
      OPENTRACE_WEB_IDENTITY_TOKEN_FILE: tokenFile,
      OPENTRACE_ALLOW_PRIVATE_NETWORKS: 'true',
    },
    close: async () => {
      await Promise.all([sts.close(), eks.close(), kube.close()]);
    },
  };
}
