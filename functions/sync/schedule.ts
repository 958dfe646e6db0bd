/**
 * When a connection syncs next, and whether its next pass is full or incremental.
 */
import type { Connection } from '#platform/connections.ts';
import type { SyncMode } from '#platform/sync-runs.ts';

/**
 * Full on the first pass (nothing to compare against) and once `fullEvery` incremental passes
 * completed since the last full one; incremental otherwise. `fullEvery` 0 makes every pass full.
 */
export function decideMode(connection: Pick<Connection, 'incrementalsSinceFull'>, fullEvery: number): SyncMode {
  if (connection.incrementalsSinceFull === undefined) return 'full';
  return connection.incrementalsSinceFull >= fullEvery ? 'full' : 'incremental';
}

/**
 * The next due time counts from when the run started, not when it finished, so an hourly
 * connection stays on the hourly schedule tick however long its sync took (the plan also treats
 * "due within the slack" as due).
 */
export function nextSyncAt(connection: Pick<Connection, 'syncIntervalMinutes'>, startedAt: Date, defaultIntervalMinutes: number): string {
  const minutes = connection.syncIntervalMinutes && connection.syncIntervalMinutes > 0 ? connection.syncIntervalMinutes : defaultIntervalMinutes;
  return new Date(startedAt.getTime() + minutes * 60_000).toISOString();
}
