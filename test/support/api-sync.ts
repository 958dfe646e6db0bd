/**
 * The end-to-end tests' way through the hosted API (test/support/api.ts): start a sync as a
 * client does and wait for the local state machine to finish it, then read the tenant's graph.
 * Shared by the GitHub and GitLab end-to-end files.
 */
import { expect } from '@jest/globals';
import type { GraphStore } from '#graph/store.ts';
import type { ApiAnswer, TestApi } from './api.ts';

/** POST /v1/connections/{id}/sync (202), waits until the runner is idle, answers GET /v1/syncs/{syncId}. */
export async function syncAndWait(api: TestApi, token: string, connectionId: string, body: Record<string, unknown> = {}): Promise<ApiAnswer['body']> {
  const started = await api.call('POST', `/v1/connections/${connectionId}/sync`, { token, body });
  expect(started.status).toBe(202);
  await api.runner.idle();
  const sync = await api.call('GET', `/v1/syncs/${started.body.id}`, { token });
  expect(sync.status).toBe(200);
  return sync.body;
}

/**
 * A tenant's graph: a node (its contributions merged), and the ids a node points to (`out`) or
 * that point to it (`into`) with one edge type, sorted. `store` is read at each call, so the
 * reader can be made before the file's beforeAll has built the store.
 */
export function graphReader(store: () => GraphStore, tenantId: string) {
  return {
    node: (id: string) => store().getNode(tenantId, id),
    out: async (from: string, type: string) => (await store().edges(tenantId, from, { direction: 'out', type })).map((edge) => edge.to).sort(),
    into: async (to: string, type: string) => (await store().edges(tenantId, to, { direction: 'in', type })).map((edge) => edge.from).sort(),
  };
}

/**
 * DELETE /v1/connections/{id} (202) of a connection that holds part of the graph, waits for the
 * removal to finish, and checks that nothing of the connection is left: no graph contribution,
 * and the connection answers 404.
 */
export async function disconnectAndWait(api: TestApi, graph: GraphStore, tenantId: string, token: string, connectionId: string): Promise<void> {
  const before = await graph.connectionStats(tenantId, connectionId);
  expect(before.nodes).toBeGreaterThan(100);
  const deleted = await api.call('DELETE', `/v1/connections/${connectionId}`, { token });
  expect(deleted.status).toBe(202);
  await api.runner.idle();
  expect(await graph.connectionStats(tenantId, connectionId)).toEqual({ nodes: 0, edges: 0 });
  expect((await api.call('GET', `/v1/connections/${connectionId}`, { token })).status).toBe(404);
}
