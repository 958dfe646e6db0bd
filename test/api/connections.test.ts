import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { GraphStore } from '#graph/store.ts';
import { DEFAULT_GRAFANA_TOKEN, startGrafanaFake, type GrafanaFake } from '../fakes/grafana.ts';
import { startTestApi, type TestApi } from '../support/api.ts';

let api: TestApi;
let grafana: GrafanaFake;
let acme: string;
let globex: string;

beforeAll(async () => {
  process.env.OPENTRACE_ALLOW_PRIVATE_NETWORKS = 'true';
  api = await startTestApi();
  grafana = await startGrafanaFake();
  acme = await api.tokenFor('acme');
  globex = await api.tokenFor('globex');
});
afterAll(async () => {
  await api.close();
  await grafana.close();
});
afterEach(() => {
  grafana.set({ mode: 'normal' });
  process.env.OPENTRACE_ALLOW_PRIVATE_NETWORKS = 'true';
});

const grafanaBody = (overrides: Record<string, unknown> = {}) => ({
  type: 'grafana',
  name: 'Production Grafana',
  config: { url: grafana.url },
  credentials: { token: DEFAULT_GRAFANA_TOKEN },
  ...overrides,
});

async function connectGrafana(token = acme) {
  const created = await api.call('POST', '/v1/connections', { token, body: grafanaBody() });
  expect(created.status).toBe(201);
  return created.body as { id: string; config: Record<string, unknown> };
}

describe('POST /v1/connections', () => {
  it('connects Grafana after a live check and keeps the token out of everything but the secret store', async () => {
    const created = await api.call('POST', '/v1/connections', { token: acme, body: grafanaBody() });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ type: 'grafana', name: 'Production Grafana', status: 'connected', paused: false, config: { url: grafana.url } });
    expect(created.body.id).toMatch(/^conn_[0-9a-z]{26}$/);
    expect(created.headers.get('location')).toBe(`/v1/connections/${created.body.id}`);
    expect(created.text).not.toContain(DEFAULT_GRAFANA_TOKEN);
    expect(JSON.stringify(created.body.config.datasources)).toMatch(/loki/);
    expect([...api.secrets.values.values()]).toContainEqual({ token: DEFAULT_GRAFANA_TOKEN });
  });

  it('answers 422 with the upstream reason and stores nothing when Grafana rejects the token', async () => {
    const before = await api.call('GET', '/v1/connections', { token: globex });
    const secretsBefore = api.secrets.values.size;
    const rejected = await api.call('POST', '/v1/connections', { token: globex, body: grafanaBody({ credentials: { token: 'glsa_wrong_token_123' } }) });
    expect(rejected.status).toBe(422);
    expect(rejected.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(rejected.body.detail).toMatch(/Grafana rejected the token \(401\)/);
    expect(rejected.text).not.toContain('glsa_wrong_token_123');
    expect((await api.call('GET', '/v1/connections', { token: globex })).body.items).toEqual(before.body.items);
    expect(api.secrets.values.size).toBe(secretsBefore);
  });

  it('skips the live check with ?verify=false', async () => {
    grafana.set({ mode: 500 });
    const created = await api.call('POST', '/v1/connections?verify=false', { token: acme, body: grafanaBody() });
    expect(created.status).toBe(201);
  });

  it('answers 400 with field paths for invalid input', async () => {
    const missing = await api.call('POST', '/v1/connections', { token: acme, body: { type: 'grafana', config: {}, credentials: {} } });
    expect(missing.status).toBe(400);
    expect(missing.body.errors.map((e: { path: string }) => e.path)).toEqual(expect.arrayContaining(['body.config.url', 'body.credentials.token']));

    const wrongType = await api.call('POST', '/v1/connections', { token: acme, body: { type: 'grafana', config: 'x', credentials: {} } });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.errors[0].path).toBe('body.config');

    const unknownType = await api.call('POST', '/v1/connections', { token: acme, body: { type: 'datadog', config: {}, credentials: {} } });
    expect(unknownType.status).toBe(400);
    expect(unknownType.body.errors[0]).toMatchObject({ path: 'body.type' });

    const oauth = await api.call('POST', '/v1/connections', { token: acme, body: { ...grafanaBody(), type: 'no-such' } });
    expect(oauth.status).toBe(400);

    const notJson = await api.call('POST', '/v1/connections', { token: acme, rawBody: '{"type": ', headers: { 'content-type': 'application/json' } });
    expect(notJson.status).toBe(400);
    expect(notJson.body.detail).toMatch(/not valid JSON/);

    const extraField = await api.call('POST', '/v1/connections', { token: acme, body: { ...grafanaBody(), tenantId: 'globex' } });
    expect(extraField.status).toBe(400);
    expect(extraField.body.errors[0].message).toMatch(/tenantId|Unrecognized/);
  });

  it('answers 413 for a body over 256 KiB', async () => {
    const huge = await api.call('POST', '/v1/connections', { token: acme, body: grafanaBody({ name: 'x'.repeat(300 * 1024) }) });
    expect(huge.status).toBe(413);
    expect(huge.headers.get('content-type')).toMatch(/application\/problem\+json/);
  });

  it('refuses metadata, loopback and privately resolving URLs without contacting them', async () => {
    const metadata = await api.call('POST', '/v1/connections', { token: acme, body: grafanaBody({ config: { url: 'http://169.254.169.254/' } }) });
    expect(metadata.status).toBe(400);
    expect(metadata.body.errors[0].path).toBe('body.config.url');

    process.env.OPENTRACE_ALLOW_PRIVATE_NETWORKS = 'false';
    const requestsBefore = grafana.requests.length;
    const loopback = await api.call('POST', '/v1/connections', { token: acme, body: grafanaBody({ config: { url: grafana.url.replace('http:', 'https:') } }) });
    expect(loopback.status).toBe(400);
    const named = await api.call('POST', '/v1/connections', { token: acme, body: grafanaBody({ config: { url: `https://localhost:${new URL(grafana.url).port}` } }) });
    expect(named.status).toBe(400);
    expect(named.body.detail).toMatch(/resolves to a blocked address/);
    expect(grafana.requests.length).toBe(requestsBefore);
  });

  it('answers 401 without a valid token', async () => {
    expect((await api.call('POST', '/v1/connections', { body: grafanaBody() })).status).toBe(401);
    const bad = await api.call('GET', '/v1/connections', { token: 'ot_not-a-token' });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('content-type')).toMatch(/application\/problem\+json/);
  });
});

describe('connection lifecycle', () => {
  it('lists, gets with stats, renames and pauses a connection', async () => {
    const { id } = await connectGrafana();
    const list = await api.call('GET', '/v1/connections?type=grafana', { token: acme });
    expect(list.status).toBe(200);
    expect(list.body.items.map((c: { id: string }) => c.id)).toContain(id);

    const one = await api.call('GET', `/v1/connections/${id}`, { token: acme });
    expect(one.body).toMatchObject({ id, type: 'grafana', stats: { nodes: 0, edges: 0 } });

    const renamed = await api.call('PATCH', `/v1/connections/${id}`, { token: acme, body: { name: 'Staging Grafana', paused: true } });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ name: 'Staging Grafana', paused: true });
  });

  it('pages through connections with limit and nextToken', async () => {
    const tenant = await api.tokenFor('pager');
    for (let i = 0; i < 3; i++) await connectGrafana(tenant);
    const first = await api.call('GET', '/v1/connections?limit=2', { token: tenant });
    expect(first.body.items).toHaveLength(2);
    const second = await api.call('GET', `/v1/connections?limit=2&nextToken=${first.body.nextToken}`, { token: tenant });
    expect(second.body.items).toHaveLength(1);
    expect((await api.call('GET', '/v1/connections?limit=9999', { token: tenant })).status).toBe(400);
    expect((await api.call('GET', '/v1/connections?nextToken=bogus', { token: tenant })).status).toBe(400);
  });

  it('verifies a changed credential first and keeps the old one when the check fails', async () => {
    const { id } = await connectGrafana();
    const failed = await api.call('PATCH', `/v1/connections/${id}`, { token: acme, body: { credentials: { token: 'glsa_rotated_but_wrong' } } });
    expect(failed.status).toBe(422);
    expect((await api.call('POST', `/v1/connections/${id}/test`, { token: acme })).body.ok).toBe(true);

    grafana.set({ token: 'glsa_rotated_token_456' });
    const rotated = await api.call('PATCH', `/v1/connections/${id}`, { token: acme, body: { credentials: { token: 'glsa_rotated_token_456' } } });
    expect(rotated.status).toBe(200);
    expect([...api.secrets.values.values()]).toContainEqual({ token: 'glsa_rotated_token_456' });
    // The old secret version is gone once the record points at the new one.
    expect(api.secrets.namesOf('acme').filter((name) => name.startsWith(id))).toEqual([`${id}-v2`]);
    grafana.set({ token: DEFAULT_GRAFANA_TOKEN });
  });

  it('tests a connection and records a failure on it', async () => {
    const { id } = await connectGrafana();
    const ok = await api.call('POST', `/v1/connections/${id}/test`, { token: acme });
    expect(ok.body).toMatchObject({ ok: true });
    expect(ok.body.checks.length).toBeGreaterThan(0);

    grafana.set({ mode: 401 });
    const failed = await api.call('POST', `/v1/connections/${id}/test`, { token: acme });
    expect(failed.status).toBe(200);
    expect(failed.body.ok).toBe(false);
    const after = await api.call('GET', `/v1/connections/${id}`, { token: acme });
    expect(after.body).toMatchObject({ status: 'error' });
    expect(after.body.lastError).toMatch(/401/);
  });

  it('disconnects: secret and graph contribution removed, shared nodes keep their other source', async () => {
    const first = await connectGrafana();
    const second = await connectGrafana();
    const graph = new GraphStore(api.table);
    for (const connectionId of [first.id, second.id]) {
      const writer = graph.writer('acme', connectionId);
      await writer.upsertNode({ id: 'grafana:service:checkout', type: 'service', name: 'checkout' });
      await writer.upsertNode({ id: `grafana:datasource:${connectionId}`, type: 'datasource', name: 'Loki' });
      await writer.flush();
    }
    const removed = await api.call('DELETE', `/v1/connections/${first.id}`, { token: acme });
    expect(removed.status).toBe(202);
    expect(removed.body).toMatchObject({ id: first.id, status: 'disconnecting' });
    await api.runner.idle();
    expect((await api.call('GET', `/v1/connections/${first.id}`, { token: acme })).status).toBe(404);
    expect(api.secrets.namesOf('acme').some((name) => name.startsWith(first.id))).toBe(false);
    expect(await graph.getNode('acme', `grafana:datasource:${first.id}`)).toBeUndefined();
    expect((await graph.getNode('acme', 'grafana:service:checkout'))?.sources).toEqual([second.id]);
  });

  it("answers 404 for another tenant's connection on every route", async () => {
    const { id } = await connectGrafana(acme);
    expect((await api.call('GET', `/v1/connections/${id}`, { token: globex })).status).toBe(404);
    expect((await api.call('PATCH', `/v1/connections/${id}`, { token: globex, body: { name: 'mine now' } })).status).toBe(404);
    expect((await api.call('POST', `/v1/connections/${id}/test`, { token: globex })).status).toBe(404);
    expect((await api.call('DELETE', `/v1/connections/${id}`, { token: globex })).status).toBe(404);
    expect((await api.call('GET', `/v1/connections/${id}`, { token: acme })).body.name).toBe('Production Grafana');
  });

  it('answers 400 for a malformed connection id and an empty patch', async () => {
    expect((await api.call('GET', '/v1/connections/not-an-id', { token: acme })).status).toBe(400);
    const { id } = await connectGrafana();
    const empty = await api.call('PATCH', `/v1/connections/${id}`, { token: acme, body: {} });
    expect(empty.status).toBe(400);
  });
});

describe('sync routes', () => {
  it('explains that a live-only integration has nothing to sync, and validates sync ids', async () => {
    const { id } = await connectGrafana();
    const sync = await api.call('POST', `/v1/connections/${id}/sync`, { token: acme, body: { mode: 'full' } });
    expect(sync.status).toBe(400);
    expect(sync.body.detail).toMatch(/nothing to sync/);
    expect((await api.call('POST', `/v1/connections/${id}/sync`, { token: acme, body: { mode: 'sometimes' } })).status).toBe(400);
    expect((await api.call('GET', `/v1/connections/${id}/syncs`, { token: acme })).body).toEqual({ items: [], nextToken: null });
    expect((await api.call('GET', '/v1/syncs/not-a-sync', { token: acme })).status).toBe(400);
    expect((await api.call('GET', '/v1/syncs/sync_00000000000000000000000000', { token: acme })).status).toBe(404);
    expect((await api.call('GET', `/v1/connections/${id}/syncs`, { token: globex })).status).toBe(404);
  });
});
