/**
 * What travels between the states of the sync state machine: ids, a cursor and a few flags,
 * never graph data (a Step Functions payload is capped at 256 KB, and these stay far below).
 * Every task validates its input with these schemas, so a hand-edited console input fails early
 * with a clear message.
 */
import { z } from 'zod';
import { ValidationError } from '#platform/errors.ts';
import type { SyncMode } from '#platform/sync-runs.ts';

/** Connector cursors are page tokens and ids: anything bigger belongs in the sync state store. */
export const MAX_CURSOR_BYTES = 8 * 1024;

/**
 * Partitions one pass syncs at most (GitHub: repositories). They travel in the state as a list,
 * so the list is capped by count and by size: a connection with more is synced partly, with a
 * warning on the run, and nothing is swept (the unsynced partitions' items must not look stale).
 */
export const MAX_PARTITIONS = 5000;
/** Bytes of the partition list as JSON: far below Step Functions' 256 KB with the ids around it. */
export const MAX_PARTITION_LIST_BYTES = 200 * 1024;
/** One partition key (a repository's full name, a GitLab project path). */
export const MAX_PARTITION_KEY_BYTES = 512;
/** The partition of a connector without partitions: the whole connection. */
export const WHOLE_CONNECTION = '*';

const mode = z.enum(['incremental', 'full']);
const trigger = z.enum(['api', 'schedule', 'console']);
const tenantId = z.string().regex(/^[a-z0-9][a-z0-9-]{1,62}$/, 'a tenant id');
const connectionId = z.string().regex(/^conn_[0-9a-z]{1,64}$/, 'a connection id (conn_…)');
const syncId = z.string().regex(/^sync_[0-9a-z]{1,64}$/, 'a sync id (sync_…)');

/** Why a run stopped before its connector said done. */
export const stopReason = z.enum(['paused', 'disconnecting', 'removed']);
export type StopReason = z.infer<typeof stopReason>;

const partition = z.string().min(1).refine((value) => Buffer.byteLength(value) <= MAX_PARTITION_KEY_BYTES, `a partition key of at most ${MAX_PARTITION_KEY_BYTES} bytes`);

/** One connection's run, as the plan hands it to the Map (and the Map to ListPartitions). */
export const runItemSchema = z.object({
  tenantId,
  connectionId,
  syncId,
  type: z.string().min(1).max(64),
  mode,
  forceSweep: z.boolean(),
});
export type RunItem = z.infer<typeof runItemSchema>;

/** The plan's items: a run, with the cursor and slice counter its first partition starts from. */
export type PlannedItem = RunItem & { cursor: null; slice: 0 };

/** What ListPartitions answers: the run, and the partitions its Map fans out over (with the starting cursor and slice). */
export interface PartitionsOutput extends RunItem {
  partitions: string[];
  cursor: null;
  slice: 0;
}

/** One partition's slice loop, as the inner Map hands it to the slice task and each slice passes it on. */
export const syncItemSchema = runItemSchema.extend({
  /** The part of the connection this loop syncs (a repository), `*` for the whole connection. */
  partition: partition.default(WHOLE_CONNECTION),
  cursor: z.string().max(MAX_CURSOR_BYTES).nullable(),
  /** How many slices of this partition ran before this one (names the slice's "seen" chunks). */
  slice: z.number().int().min(0),
});
export type SyncItem = z.infer<typeof syncItemSchema>;

export interface SliceResult extends SyncItem {
  done: boolean;
  /** Seconds to wait before the next slice (0: go on at once). */
  waitSeconds: number;
  stopped: StopReason | null;
}

export const finalizeInputSchema = z.object({
  tenantId,
  connectionId,
  syncId,
  mode,
  forceSweep: z.boolean(),
  /** Absent after the partition Map: the slice that stopped recorded why on the run. */
  stopped: stopReason.nullable().optional(),
});
export type FinalizeInput = z.infer<typeof finalizeInputSchema>;

/** A Catch's error output: `Error` is the error name, `Cause` the message (for Lambda, a JSON of errorType/errorMessage). */
export const recordFailureInputSchema = z.object({
  tenantId,
  connectionId,
  syncId,
  /** Present when one partition failed (RecordPartitionFailure): noted on the run, its siblings go on. */
  partition: partition.optional(),
  error: z.object({ Error: z.string(), Cause: z.string().optional().nullable() }),
});
export type RecordFailureInput = z.infer<typeof recordFailureInputSchema>;

/**
 * The state machine's input for a sync (console, schedule, API). `connectionIds` entries are
 * `conn_…` together with `tenantId`, or `<tenantId>/conn_…` on their own.
 */
export const planInputSchema = z
  .object({
    tenantId: tenantId.optional(),
    connectionIds: z.array(z.string().min(1)).min(1).optional(),
    mode: mode.optional(),
    trigger: trigger.optional(),
    /** Lets a full pass's sweep go past the threshold (the operator checked the upstream really lost those items). */
    forceSweep: z.boolean().optional(),
    /** Runs the API already created (with their leases taken): the plan hands them on instead of creating new ones. */
    preplanned: z.array(z.object({ tenantId, connectionId, syncId })).min(1).optional(),
    /** The previous plan round's output, when the state machine loops for more connections. */
    plan: z.looseObject({ next: z.string().optional() }).optional(),
  })
  .strict();
export type PlanInput = z.infer<typeof planInputSchema>;

export interface PlanOutput {
  items: PlannedItem[];
  /** Present when more connections remain: the state machine plans again after this round. */
  next?: string;
  /** Connections not planned and why (first 50), for the console's eyes. */
  skipped: { connectionId: string; reason: string }[];
}

export const removalInputSchema = z.object({ disconnect: z.object({ tenantId, connectionId }) });
export type RemovalInput = z.infer<typeof removalInputSchema>;

export interface RemovalOutput extends RemovalInput {
  done: boolean;
  waitSeconds: number;
}

export type { SyncMode };

/** Parses a task's input, turning schema failures into a ValidationError that names the fields. */
export function parseTaskInput<T>(schema: z.ZodType<T>, value: unknown, task: string): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new ValidationError(
      `${task}: the input is not valid: ${result.error.issues.map((issue) => `${issue.path.join('.') || '(input)'}: ${issue.message}`).join('; ')}`,
      result.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })),
    );
  }
  return result.data;
}
