/**
 * One sync per connection at a time: the lease `sync:<connectionId>`, owned by the run's syncId.
 * Every slice renews it (for the lease duration plus any wait the connector asked for); finalize
 * and RecordFailure release it; a killed run's lease simply expires. Whoever takes over an
 * expired lease marks the run that held it as failed, so no run stays "running" forever.
 */
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { keys } from '#platform/keys.ts';
import { LeaseStore } from '#platform/leases.ts';
import type { Runtime } from '#platform/runtime.ts';
import { SyncRunStore } from '#platform/sync-runs.ts';

export const syncLeaseName = (connectionId: string) => `sync:${connectionId}`;

/** Owner of the lease while a disconnect removes the connection's data. */
export const DISCONNECT_OWNER = 'disconnect';

export type LeaseOutcome = { taken: true } | { taken: false; holder: string | undefined };

export async function takeSyncLease(
  rt: Runtime,
  tenantId: string,
  connectionId: string,
  owner: string,
  durationMs: number,
): Promise<LeaseOutcome> {
  const name = syncLeaseName(connectionId);
  const { Item: previous } = await rt.table.client.send(
    new GetCommand({ TableName: rt.table.tableName, Key: keys.lease(tenantId, name), ConsistentRead: true }),
  );
  const leases = new LeaseStore(rt.table, rt.now);
  if (!(await leases.acquire(tenantId, name, owner, durationMs))) {
    return { taken: false, holder: typeof previous?.owner === 'string' ? previous.owner : undefined };
  }
  const previousOwner = typeof previous?.owner === 'string' ? previous.owner : undefined;
  if (previousOwner && previousOwner !== owner && previousOwner.startsWith('sync_')) {
    await markAbandoned(rt, tenantId, previousOwner, String(previous?.expiresAt));
  }
  return { taken: true };
}

/**
 * Renews a lease this run holds; false when someone else holds it now. A lease that expired
 * with nobody taking it is taken back: the slice separately refuses a run already marked failed.
 * Never shortens it: a run's partitions renew concurrently, and one partition waiting out a rate
 * limit must keep its longer renewal when a sibling renews for the usual duration. The lease
 * then lasts at least `durationMs` minus the renewal slack.
 */
export async function renewSyncLease(rt: Runtime, tenantId: string, connectionId: string, owner: string, durationMs: number): Promise<boolean> {
  // A lease that still lasts all but the slack of what is asked is not rewritten: a no-change pass
  // over many partitions then costs reads, not a write per slice.
  const slack = Math.min(RENEWAL_SLACK_MS, durationMs / 4);
  return new LeaseStore(rt.table, rt.now).extend(tenantId, syncLeaseName(connectionId), owner, durationMs, { skipIfRemainingMs: durationMs - slack });
}

/** A renewal is skipped while the lease still lasts its duration minus this (5 min of the 20-minute default). */
export const RENEWAL_SLACK_MS = 5 * 60_000;

export async function releaseSyncLease(rt: Runtime, tenantId: string, connectionId: string, owner: string): Promise<void> {
  await new LeaseStore(rt.table, rt.now).release(tenantId, syncLeaseName(connectionId), owner);
}

async function markAbandoned(rt: Runtime, tenantId: string, syncId: string, expiredAt: string): Promise<void> {
  const runs = new SyncRunStore(rt.table);
  const run = await runs.get(tenantId, syncId);
  if (!run || (run.status !== 'queued' && run.status !== 'running')) return;
  await runs.update(tenantId, syncId, {
    status: 'failed',
    finishedAt: rt.now().toISOString(),
    progress: { ...run.progress, phase: 'failed' },
    error: {
      code: 'abandoned',
      message: `This sync stopped without finishing (its worker was stopped or timed out) and its lease expired at ${expiredAt}; a later sync took over. Nothing was swept.`,
    },
  });
}
