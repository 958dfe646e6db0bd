/**
 * OAuth tests' helpers: the environment that points the providers at the fakes, and the
 * browser's part of a round trip (follow the provider's authorize redirect, hand the callback
 * URL to the API) so a test reads like the user's clicks.
 */
import { expect } from '@jest/globals';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { keys } from '#platform/keys.ts';
import { configureRuntime } from '#platform/runtime.ts';
import type { ApiAnswer, TestApi } from '../support/api.ts';
import { checkForSecrets, rememberSecret } from '../support/secrets.ts';

export const RETURN_ORIGIN = 'https://app.opentrace.test';
export const RETURN_URL = `${RETURN_ORIGIN}/integrations/done?from=oauth`;

/** Sets environment variables for this file; the returned function restores them. */
export function setEnv(values: Record<string, string | undefined>): () => void {
  const previous = new Map<string, string | undefined>();
  for (const [name, value] of Object.entries(values)) {
    previous.set(name, process.env[name]);
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  return () => {
    for (const [name, value] of previous) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
}

/** The environment every OAuth test file shares; app secrets are marked for the suite's leak check. */
export function oauthEnv(values: Record<string, string>): () => void {
  for (const [name, value] of Object.entries(values)) if (name.endsWith('_CLIENT_SECRET')) rememberSecret(value);
  return setEnv({ OPENTRACE_ALLOW_PRIVATE_NETWORKS: 'true', OPENTRACE_ALLOWED_RETURN_ORIGINS: `${RETURN_ORIGIN},http://localhost:3000`, OPENTRACE_API_URL: undefined, ...values });
}

/** Moves the API's clock (state expiry, token expiry); `shiftClock(0)` puts it back. */
export function shiftClock(ms: number): void {
  configureRuntime({ now: () => new Date(Date.now() + ms) });
}

export interface RoundTrip {
  authorize: ApiAnswer;
  /** Where the provider sent the browser (our callback, with code and state, or the error). */
  providerRedirect: URL;
  callback: ApiAnswer;
}

/** POST …/authorize, then what the browser does: open the provider URL, follow its redirect to the callback. */
export async function startFlow(api: TestApi, token: string, type: string, body: Record<string, unknown> = {}): Promise<{ authorize: ApiAnswer; providerRedirect: URL }> {
  const authorize = await api.call('POST', `/v1/integrations/${type}/authorize`, { token, body });
  expect(authorize.status).toBe(200);
  const provider = await fetch(authorize.body.authorizeUrl, { redirect: 'manual' });
  await provider.text();
  expect(provider.status).toBe(302);
  return { authorize, providerRedirect: new URL(provider.headers.get('location')!) };
}

/**
 * The callback as the browser calls it: a public route (no token), and its redirect is not
 * followed (it goes to the UI). The body goes through the suite's secret-leak check.
 */
export async function callCallback(api: TestApi, redirect: URL): Promise<ApiAnswer> {
  const response = await fetch(`${api.url}${redirect.pathname}${redirect.search}`, { redirect: 'manual' });
  const text = await response.text();
  checkForSecrets(text, `the response to GET ${redirect.pathname}`);
  checkForSecrets(response.headers.get('location') ?? '', `the redirect of GET ${redirect.pathname}`);
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { status: response.status, headers: response.headers, body, text };
}

export async function roundTrip(api: TestApi, token: string, type: string, body: Record<string, unknown> = {}): Promise<RoundTrip> {
  const { authorize, providerRedirect } = await startFlow(api, token, type, body);
  expect(`${providerRedirect.origin}${providerRedirect.pathname}`).toBe(`${api.url}/v1/oauth/${type}/callback`);
  return { authorize, providerRedirect, callback: await callCallback(api, providerRedirect) };
}

/** The query of a redirect to the return URL, as an object. */
export function returnParams(answer: ApiAnswer): Record<string, string> {
  expect(answer.status).toBe(302);
  const location = new URL(answer.headers.get('location')!);
  expect(`${location.origin}${location.pathname}`).toBe(`${RETURN_ORIGIN}/integrations/done`);
  return Object.fromEntries(location.searchParams);
}

/** Every string value of the stored secrets of a tenant (to assert tokens exist there and nowhere else). */
export function storedSecretStrings(api: TestApi): string[] {
  const out: string[] = [];
  for (const value of api.secrets.values.values()) for (const v of Object.values(value)) if (typeof v === 'string') out.push(v);
  return out;
}

/** Every item of a tenant's partition, as text (a Query: the suite forbids Scans). */
export async function tenantRecordsText(api: TestApi, tenantId: string): Promise<string> {
  const items: unknown[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await api.table.client.send(
      new QueryCommand({ TableName: api.table.tableName, KeyConditionExpression: 'PK = :pk', ExpressionAttributeValues: { ':pk': keys.tenant(tenantId).PK }, ...(startKey ? { ExclusiveStartKey: startKey } : {}) }),
    );
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return JSON.stringify(items);
}

/** A tick of the event loop: lets other promises (a second "process" polling) make progress without a timed sleep. */
export const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
