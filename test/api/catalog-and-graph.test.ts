import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { GraphStore } from '#graph/store.ts';
import { ROUTES } from '#api/routes.ts';
import { DEMO_ROLE_ARN, startEksFakes, type EksFakes } from '../fakes/aws.ts';
import { startTestApi, type TestApi } from '../support/api.ts';

let api: TestApi;
let acme: string;
let eks: EksFakes;
const savedEnv = { ...process.env };

beforeAll(async () => {
  api = await startTestApi();
  acme = await api.tokenFor('acme');
  eks = await startEksFakes();
  Object.assign(process.env, eks.env, { OPENTRACE_AWS_ACCOUNT_ID: '123456789012', AWS_ACCESS_KEY_ID: 'test-access-key', AWS_SECRET_ACCESS_KEY: 'test-secret-key' });
});
afterAll(async () => {
  process.env = savedEnv;
  await api.close();
  await eks.close();
});

describe('health and OpenAPI', () => {
  it('answers health without a token', async () => {
    const health = await api.call('GET', '/v1/health');
    expect(health).toMatchObject({ status: 200, body: { status: 'ok' } });
  });

  it('describes every route of the route table in its OpenAPI document', async () => {
    const doc = await api.call('GET', '/v1/openapi.json');
    expect(doc.body.openapi).toBe('3.1.0');
    for (const route of ROUTES) expect(doc.body.paths[route.path]?.[route.method.toLowerCase()]).toBeDefined();
    const create = doc.body.paths['/v1/connections'].post;
    expect(create.requestBody.content['application/json'].schema.required).toEqual(expect.arrayContaining(['type', 'config']));
    expect(Object.keys(create.responses)).toEqual(expect.arrayContaining(['201', '400', '401', '413', '422']));
  });
});

describe('GET /v1/integrations', () => {
  it('needs a token', async () => {
    expect((await api.call('GET', '/v1/integrations')).status).toBe(401);
  });

  it('lists all seven integrations with their auth kind and config schema', async () => {
    const catalog = await api.call('GET', '/v1/integrations', { token: acme });
    expect(catalog.status).toBe(200);
    const byType = Object.fromEntries(catalog.body.items.map((item: { type: string }) => [item.type, item]));
    expect(Object.keys(byType).sort()).toEqual(['aws-eks', 'github', 'gitlab', 'grafana', 'jaeger', 'opensearch', 'slack']);
    for (const type of ['github', 'gitlab', 'slack']) expect(byType[type].auth).toBe('oauth');
    expect(byType.grafana).toMatchObject({ title: 'Grafana', auth: 'api-key' });
    expect(byType.grafana.configSchema.properties.url).toBeDefined();
    expect(byType['aws-eks']).toMatchObject({ auth: 'iam-role' });
    expect(byType.jaeger.configSchema.properties.protocol.enum).toEqual(['http', 'grpc']);
    expect(byType.opensearch.provides.length).toBeGreaterThan(0);
  });

  it('renders the aws-eks IAM policy and trust policies for this tenant', async () => {
    const eksEntry = await api.call('GET', '/v1/integrations/aws-eks', { token: acme });
    expect(eksEntry.status).toBe(200);
    const text = JSON.stringify(eksEntry.body.setup);
    expect(text).toContain('eks:DescribeCluster');
    expect(text).toContain('sts:AssumeRoleWithWebIdentity');
    expect(text).toMatch(/sts:ExternalId/);
    const other = await api.call('GET', '/v1/integrations/aws-eks', { token: await api.tokenFor('globex') });
    expect(JSON.stringify(other.body.setup)).not.toEqual(text);
    expect((await api.call('GET', '/v1/integrations/datadog', { token: acme })).status).toBe(404);
  });
});

describe('connecting AWS EKS through the API', () => {
  it.each(['web-identity', 'assume-role'])('connects with %s against the STS, EKS and Kubernetes fakes', async (authMode) => {
    const created = await api.call('POST', '/v1/connections', {
      token: acme,
      body: { type: 'aws-eks', config: { roleArn: DEMO_ROLE_ARN, authMode, clusters: [{ name: 'prod-eu', region: 'eu-west-1' }] }, credentials: {} },
    });
    expect(created.status).toBe(201);
    const token = eks.kube.requests.at(-1)?.authorization;
    expect(token).toMatch(/^Bearer k8s-aws-v1\.[A-Za-z0-9_-]+$/);
  });

  it('answers 422 naming the cluster whose access entry is missing', async () => {
    const refused = await api.call('POST', '/v1/connections', {
      token: acme,
      body: { type: 'aws-eks', config: { roleArn: DEMO_ROLE_ARN, clusters: [{ name: 'no-access', region: 'eu-west-1' }] }, credentials: {} },
    });
    expect(refused.status).toBe(422);
    expect(refused.body.detail).toMatch(/no-access/);
  });
});

describe('graph routes', () => {
  beforeAll(async () => {
    const writer = new GraphStore(api.table).writer('acme', 'conn_00000000000000000000000001');
    await writer.upsertNode({ id: 'github:repository:acme/payments', type: 'repository', name: 'acme/payments' });
    await writer.upsertNode({ id: 'package:npm:express', type: 'package', name: 'express' });
    await writer.upsertEdge({ from: 'github:repository:acme/payments', type: 'DEPENDS_ON', to: 'package:npm:express', props: { version: '^4.19.0' } });
    await writer.flush();
  });

  it('gets a node by its URL-encoded id, its edges, a traversal and the stats', async () => {
    const id = encodeURIComponent('github:repository:acme/payments');
    const node = await api.call('GET', `/v1/graph/nodes/${id}`, { token: acme });
    expect(node.body).toMatchObject({ id: 'github:repository:acme/payments', type: 'repository', sources: ['conn_00000000000000000000000001'] });
    const edges = await api.call('GET', `/v1/graph/nodes/${id}/edges?direction=out&type=DEPENDS_ON`, { token: acme });
    expect(edges.body.items).toEqual([expect.objectContaining({ to: 'package:npm:express', props: { version: '^4.19.0' } })]);
    const walk = await api.call('POST', '/v1/graph/traverse', { token: acme, body: { from: 'github:repository:acme/payments', depth: 1 } });
    expect(walk.body.nodes).toHaveLength(2);
    const stats = await api.call('GET', '/v1/graph/stats', { token: acme });
    expect(stats.body).toEqual({ nodes: { package: 1, repository: 1 }, edges: { DEPENDS_ON: 1 } });
    const list = await api.call('GET', '/v1/graph/nodes?type=repository&q=ACME', { token: acme });
    expect(list.body.items.map((n: { name: string }) => n.name)).toEqual(['acme/payments']);
  });

  it("keeps tenants apart and validates queries", async () => {
    const globex = await api.tokenFor('globex');
    expect((await api.call('GET', `/v1/graph/nodes/${encodeURIComponent('github:repository:acme/payments')}`, { token: globex })).status).toBe(404);
    expect((await api.call('POST', '/v1/graph/traverse', { token: acme, body: { from: 'x', depth: 9 } })).status).toBe(400);
    expect((await api.call('GET', '/v1/graph/nodes?direction=sideways', { token: acme })).status).toBe(400);
  });
});
