/**
 * Knobs of the sync orchestration, read from the environment the CDK construct sets on each
 * function (lib/sync-orchestration.ts) and overridable at an edge (the local stack, tests) with
 * `configureSync`, the way `configureRuntime` picks adapters. Domain code reads `syncSettings()`.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { OutboundFetch } from '#connectors/types.ts';
import { logger as defaultLogger } from '#platform/observability.ts';
import { safeFetch } from '#platform/outbound.ts';

export interface SyncSettings {
  /** How long a sync lease lasts after each renewal (every slice renews it); a killed run frees its connection after this. */
  leaseMs: number;
  /** A full pass (which sweeps) runs once this many incremental passes have completed since the last full one. */
  fullSyncEvery: number;
  /** Minutes between scheduled syncs of a connection without its own `syncIntervalMinutes`. */
  defaultIntervalMinutes: number;
  /** A connection due this soon counts as due now, so a start-based interval never slips a whole schedule tick. */
  dueSlackMs: number;
  /** A full pass's sweep that would remove more than this share of the connection's items is held back. */
  sweepThreshold: number;
  /** Deadline of a slice when there is no Lambda context (local stack, tests). */
  sliceBudgetMs: number;
  /** Taken off the Lambda's remaining time: what flushing the writer and recording the slice may need. */
  deadlineMarginMs: number;
  /** Progress is written at most this often while a slice runs (and always at its end). */
  progressIntervalMs: number;
  /** Connections one plan round hands to the Map (the plan loops for more): keeps the state payload far below 256 KB. */
  planMaxItems: number;
  /** Partitions (repositories) one pass syncs at most; more are left out with a warning and nothing is swept. At most MAX_PARTITIONS. */
  maxPartitions: number;
  /** Days the per-run "seen" chunks are kept (TTL) after they are written. */
  seenTtlDays: number;
  /** The longest wait a connector may ask for between slices; longer asks are cut to this. */
  maxWaitSeconds: number;
  /** Integration types this deployment has a sync Lambda for; undefined = every type is planned. */
  syncableTypes: string[] | undefined;
  /** Powertools' logger; each run logs through a child carrying its tenant, connection and sync ids. */
  logger: Logger;
  /** The outbound-safe fetch connectors get (counted per request by the slice). */
  fetch: OutboundFetch;
}

const number = (name: string, fallback: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got "${raw}"`);
  return value;
};

function fromEnv(): SyncSettings {
  const types = process.env.SYNCABLE_TYPES;
  return {
    leaseMs: number('SYNC_LEASE_SECONDS', 20 * 60) * 1000,
    fullSyncEvery: number('FULL_SYNC_EVERY', 24),
    defaultIntervalMinutes: number('SYNC_INTERVAL_MINUTES', 60),
    dueSlackMs: number('SYNC_DUE_SLACK_SECONDS', 120) * 1000,
    sweepThreshold: number('SWEEP_THRESHOLD', 0.5),
    sliceBudgetMs: number('SYNC_SLICE_BUDGET_SECONDS', 5 * 60) * 1000,
    deadlineMarginMs: number('SYNC_DEADLINE_MARGIN_SECONDS', 60) * 1000,
    progressIntervalMs: number('SYNC_PROGRESS_INTERVAL_MS', 1000),
    planMaxItems: number('SYNC_PLAN_MAX_ITEMS', 1000),
    seenTtlDays: number('SYNC_SEEN_TTL_DAYS', 3),
    maxPartitions: number('SYNC_MAX_PARTITIONS', 5000),
    maxWaitSeconds: number('SYNC_MAX_WAIT_SECONDS', 3600),
    syncableTypes: types === undefined ? undefined : types.split(',').map((type) => type.trim()).filter(Boolean),
    logger: defaultLogger,
    fetch: (url, init) => safeFetch(url, init),
  };
}

let overrides: Partial<SyncSettings> = {};
let built: SyncSettings | undefined;

export function configureSync(changes: Partial<SyncSettings>): void {
  overrides = { ...overrides, ...changes };
  built = undefined;
}

/** Forgets every override (tests). */
export function resetSyncSettings(): void {
  overrides = {};
  built = undefined;
}

export function syncSettings(): SyncSettings {
  built ??= { ...fromEnv(), ...overrides };
  return built;
}
