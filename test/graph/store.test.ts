import { beforeAll, describe, expect, it } from '@jest/globals';
import { GraphStore } from '#graph/store.ts';
import { PROPS_BUDGET_BYTES } from '#graph/model.ts';
import { ValidationError } from '#platform/errors.ts';
import type { TableRef } from '#platform/dynamo.ts';
import { countRequests, createTestTable, writesIn } from '../support/dynamo.ts';

let table: TableRef;
let graph: GraphStore;
beforeAll(async () => {
  table = await createTestTable();
  graph = new GraphStore(table);
});

const repo = (name: string) => ({ id: `github:repository:acme/${name}`, type: 'repository', name: `acme/${name}`, props: { defaultBranch: 'main' } });

describe('GraphStore provenance', () => {
  it('keeps a node two connections contributed when one of them is removed', async () => {
    const express = { id: 'package:npm:express', type: 'package', name: 'express', props: { ecosystem: 'npm' } };
    for (const conn of ['conn_github', 'conn_gitlab']) {
      const writer = graph.writer('prov', conn);
      await writer.upsertNode(express);
      await writer.upsertNode(repo(`app-${conn}`));
      await writer.upsertEdge({ from: repo(`app-${conn}`).id, type: 'DEPENDS_ON', to: express.id, props: { version: '^4.19.0' } });
      await writer.flush();
    }
    expect((await graph.getNode('prov', express.id))?.sources).toEqual(['conn_github', 'conn_gitlab']);

    const removed = await graph.removeContribution('prov', 'conn_github');
    expect(removed).toEqual({ nodes: 2, edges: 1 });

    const after = await graph.getNode('prov', express.id);
    expect(after?.sources).toEqual(['conn_gitlab']);
    expect(after?.props).toEqual({ ecosystem: 'npm' });
    expect(await graph.getNode('prov', repo('app-conn_github').id)).toBeUndefined();
    expect(await graph.edges('prov', express.id, { direction: 'in' })).toEqual([
      { from: repo('app-conn_gitlab').id, type: 'DEPENDS_ON', to: express.id, props: { version: '^4.19.0' }, sources: ['conn_gitlab'] },
    ]);
    expect(await graph.connectionStats('prov', 'conn_github')).toEqual({ nodes: 0, edges: 0 });
    expect(await graph.connectionStats('prov', 'conn_gitlab')).toEqual({ nodes: 2, edges: 1 });
  });
});

describe('GraphStore edges and traversal', () => {
  beforeAll(async () => {
    const writer = graph.writer('edges', 'conn_a');
    for (const name of ['checkout', 'payments', 'ledger', 'fraud']) {
      await writer.upsertNode({ id: `jaeger:service:${name}`, type: 'service', name });
    }
    await writer.upsertNode({ id: 'jaeger:operation:checkout/POST /pay', type: 'operation', name: 'POST /pay' });
    await writer.upsertEdge({ from: 'jaeger:service:checkout', type: 'CALLS', to: 'jaeger:service:payments', props: { callCount: 12 } });
    await writer.upsertEdge({ from: 'jaeger:service:payments', type: 'CALLS', to: 'jaeger:service:ledger', props: { callCount: 3 } });
    await writer.upsertEdge({ from: 'jaeger:service:ledger', type: 'CALLS', to: 'jaeger:service:fraud' });
    await writer.upsertEdge({ from: 'jaeger:service:checkout', type: 'HAS_OPERATION', to: 'jaeger:operation:checkout/POST /pay' });
    await writer.flush();
  });

  it('lists out-edges by type and in-edges', async () => {
    const out = await graph.edges('edges', 'jaeger:service:checkout', { direction: 'out', type: 'CALLS' });
    expect(out.map((edge) => [edge.to, edge.props.callCount])).toEqual([['jaeger:service:payments', 12]]);
    const all = await graph.edges('edges', 'jaeger:service:checkout', { direction: 'out' });
    expect(all.map((edge) => edge.type).sort()).toEqual(['CALLS', 'HAS_OPERATION']);
    const incoming = await graph.edges('edges', 'jaeger:service:payments', { direction: 'in' });
    expect(incoming.map((edge) => edge.from)).toEqual(['jaeger:service:checkout']);
    const both = await graph.edges('edges', 'jaeger:service:payments', { direction: 'both' });
    expect(both.map((edge) => `${edge.from}>${edge.to}`).sort()).toEqual([
      'jaeger:service:checkout>jaeger:service:payments',
      'jaeger:service:payments>jaeger:service:ledger',
    ]);
  });

  it('walks at most `depth` hops and only the edge types asked for', async () => {
    const twoHops = await graph.traverse('edges', { from: 'jaeger:service:checkout', depth: 2, edgeTypes: ['CALLS'] });
    expect(twoHops.nodes.map((node) => node.name).sort()).toEqual(['checkout', 'ledger', 'payments']);
    expect(twoHops.edges).toHaveLength(2);
    const capped = await graph.traverse('edges', { from: 'jaeger:service:checkout', depth: 4, limit: 2 });
    expect(capped.nodes).toHaveLength(2);
    expect(capped.truncated).toBe(true);
  });
});

describe('GraphStore listing', () => {
  beforeAll(async () => {
    const a = graph.writer('list', 'conn_a');
    const b = graph.writer('list', 'conn_b');
    for (const name of ['api', 'api-gateway', 'billing', 'Apollo', 'worker', 'apiary', 'web']) await a.upsertNode(repo(name));
    // Shared by two connections: must come back once, with both sources, on whichever page it lands.
    for (const name of ['api-gateway', 'apiary', 'web']) await b.upsertNode(repo(name));
    await a.upsertNode({ id: 'github:issue:acme/api#1', type: 'issue', name: 'Crash on start' });
    await Promise.all([a.flush(), b.flush()]);
  });

  it('pages through a type without duplicates or gaps, each node with all its sources', async () => {
    const seen: string[] = [];
    let nextToken: string | undefined;
    let pages = 0;
    do {
      const page = await graph.listNodes('list', { type: 'repository', limit: 2, ...(nextToken ? { nextToken } : {}) });
      expect(page.items.length).toBeLessThanOrEqual(2);
      for (const node of page.items) {
        seen.push(node.name);
        if (['acme/api-gateway', 'acme/apiary', 'acme/web'].includes(node.name)) expect(node.sources).toEqual(['conn_a', 'conn_b']);
      }
      nextToken = page.nextToken;
      pages++;
    } while (nextToken && pages < 10);
    expect(seen).toEqual(['acme/api', 'acme/api-gateway', 'acme/apiary', 'acme/apollo', 'acme/billing', 'acme/web', 'acme/worker'].map((n) => n.replace('apollo', 'Apollo')));
  });

  it('filters by case-insensitive name prefix', async () => {
    const page = await graph.listNodes('list', { type: 'repository', prefix: 'ACME/AP' });
    expect(page.items.map((node) => node.name)).toEqual(['acme/api', 'acme/api-gateway', 'acme/apiary', 'acme/Apollo']);
  });

  it('filters by contributing connection and still reports every source', async () => {
    const page = await graph.listNodes('list', { type: 'repository', source: 'conn_b' });
    expect(page.items.map((node) => [node.name, node.sources])).toEqual([
      ['acme/api-gateway', ['conn_a', 'conn_b']],
      ['acme/apiary', ['conn_a', 'conn_b']],
      ['acme/web', ['conn_a', 'conn_b']],
    ]);
  });

  it('lists across every type when no type is given', async () => {
    const page = await graph.listNodes('list', { limit: 500 });
    expect(page.items.map((node) => node.type).sort()).toEqual(['issue', ...Array(7).fill('repository')]);
    expect(page.nextToken).toBeUndefined();
  });

  it('refuses a token from another query', async () => {
    const page = await graph.listNodes('list', { type: 'repository', limit: 1 });
    await expect(graph.listNodes('list', { type: 'issue', nextToken: page.nextToken! })).rejects.toBeInstanceOf(ValidationError);
    await expect(graph.listNodes('other-tenant', { type: 'repository', nextToken: page.nextToken! })).rejects.toBeInstanceOf(ValidationError);
    await expect(graph.listNodes('list', { type: 'repository', nextToken: 'garbage' })).rejects.toBeInstanceOf(ValidationError);
  });

  it('counts distinct nodes and edges per type', async () => {
    expect(await graph.stats('list')).toEqual({ nodes: { issue: 1, repository: 7 }, edges: {} });
  });
});

describe('GraphStore tenant isolation', () => {
  it('never shows one tenant another tenant\'s items', async () => {
    const writer = graph.writer('tenant-a', 'conn_a');
    await writer.upsertNode(repo('secret-project'));
    await writer.upsertNode(repo('other'));
    await writer.upsertEdge({ from: repo('secret-project').id, type: 'DEPENDS_ON', to: repo('other').id });
    await writer.flush();

    expect(await graph.getNode('tenant-a', repo('secret-project').id)).toBeDefined();
    expect(await graph.getNode('tenant-b', repo('secret-project').id)).toBeUndefined();
    expect((await graph.listNodes('tenant-b', { type: 'repository' })).items).toEqual([]);
    expect(await graph.edges('tenant-b', repo('secret-project').id, { direction: 'both' })).toEqual([]);
    expect(await graph.stats('tenant-b')).toEqual({ nodes: {}, edges: {} });
    expect(await graph.removeContribution('tenant-b', 'conn_a')).toEqual({ nodes: 0, edges: 0 });
    expect(await graph.getNode('tenant-a', repo('secret-project').id)).toBeDefined();
  });
});

describe('GraphWriter', () => {
  const items = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `github:file:acme/app/src/f${i}.ts`, type: 'file', name: `src/f${i}.ts`, props: { size: i } }));

  it('sends zero write requests when re-upserting unchanged items', async () => {
    const first = graph.writer('noop', 'conn_a', { flushAt: 100 });
    for (const node of items(260)) await first.upsertNode(node);
    await first.upsertEdge({ from: items(1)[0]!.id, type: 'IMPORTS', to: 'package:npm:zod' });
    await first.flush();
    expect(first.stats.nodesUpserted).toBe(260);

    const again = graph.writer('noop', 'conn_a', { flushAt: 100 });
    const { counts } = await countRequests(async () => {
      for (const node of items(260)) await again.upsertNode(node);
      await again.upsertEdge({ from: items(1)[0]!.id, type: 'IMPORTS', to: 'package:npm:zod' });
      await again.flush();
    });
    expect(writesIn(counts)).toBe(0);
    expect(again.stats).toMatchObject({ nodesUpserted: 0, nodesUnchanged: 260, edgesUnchanged: 1, writeRequests: 0 });
    expect(again.seen.size).toBe(261);
  });

  it('rewrites only the items whose content changed', async () => {
    const writer = graph.writer('noop', 'conn_a');
    const changed = items(260).map((node, i) => (i === 7 ? { ...node, props: { size: 9999 } } : node));
    const { counts } = await countRequests(async () => {
      for (const node of changed) await writer.upsertNode(node);
      await writer.flush();
    });
    expect(writer.stats.nodesUpserted).toBe(1);
    expect(writesIn(counts)).toBe(1);
    expect((await graph.getNode('noop', changed[7]!.id))?.props).toEqual({ size: 9999 });
  });

  it('rejects props over the budget with a clear error and writes nothing of them', async () => {
    const writer = graph.writer('big', 'conn_a');
    const huge = { id: 'github:file:acme/app/big.ts', type: 'file', name: 'big.ts', props: { blob: 'x'.repeat(PROPS_BUDGET_BYTES) } };
    await expect(writer.upsertNode(huge)).rejects.toThrow(/over the 4096-byte budget/);
    await writer.flush();
    expect(await graph.getNode('big', huge.id)).toBeUndefined();
  });

  it('rejects malformed items before buffering them', async () => {
    const writer = graph.writer('bad', 'conn_a');
    await expect(writer.upsertNode({ id: '', type: 'file', name: 'x' })).rejects.toBeInstanceOf(ValidationError);
    await expect(writer.upsertNode({ id: 'x', type: 'Not A Type', name: 'x' })).rejects.toBeInstanceOf(ValidationError);
    await expect(writer.upsertEdge({ from: 'a', type: 'calls', to: 'b' })).rejects.toBeInstanceOf(ValidationError);
  });
});
