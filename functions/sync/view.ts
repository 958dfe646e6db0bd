/**
 * A sync run as the API shows it (GET /v1/syncs/{id}, GET /v1/connections/{id}/syncs, the 202 of
 * POST …/sync): the spec's fields, plus `warnings` when there are any (a held-back sweep, a pause).
 */
import type { SyncRun } from '#platform/sync-runs.ts';

export interface SyncView {
  id: string;
  connectionId: string;
  status: SyncRun['status'];
  trigger: SyncRun['trigger'];
  mode: SyncRun['mode'];
  startedAt: string;
  finishedAt?: string;
  progress: SyncRun['progress'];
  stats: { nodesUpserted: number; edgesUpserted: number; nodesDeleted: number; edgesDeleted: number; requests: number; rateLimitedRequests?: number };
  error?: { code: string; message: string };
  warnings?: string[];
}

export function toSyncView(run: SyncRun): SyncView {
  return {
    id: run.id,
    connectionId: run.connectionId,
    status: run.status,
    trigger: run.trigger,
    mode: run.mode,
    startedAt: run.startedAt,
    ...(run.finishedAt ? { finishedAt: run.finishedAt } : {}),
    progress: run.progress,
    stats: {
      nodesUpserted: run.stats.nodesUpserted,
      edgesUpserted: run.stats.edgesUpserted,
      nodesDeleted: run.stats.nodesDeleted,
      edgesDeleted: run.stats.edgesDeleted ?? 0,
      requests: run.stats.requests,
      // Connectors that can tell (GitHub) count what the provider charged: a 304 is a request, not a charge.
      ...(run.stats.rateLimitedRequests !== undefined ? { rateLimitedRequests: run.stats.rateLimitedRequests } : {}),
    },
    ...(run.error ? { error: run.error } : {}),
    ...(run.warnings && run.warnings.length > 0 ? { warnings: run.warnings } : {}),
  };
}
