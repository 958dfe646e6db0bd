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

const mode = z.enum(['incremental', 'full']);
const trigger = z.enum(['api', 'schedule', 'console']);
const tenantId = z.string().regex(/^[a-z0-9][a-z0-9-]{1,62}$/, 'a tenant id');
const connectionId = z.string().regex(/^conn_[0-9a-z]{1,64}$/, 'a connection id (conn_…)');
const syncId = z.string().regex(/^sync_[0-9a-z]{1,64}$/, 'a sync id (sync_…)');

/** Why a run stopped before its connector said done. */
export const stopReason = z.enum(['paused', 'disconnecting', 'removed']);
export type StopReason = z.infer<typeof stopReason>;

/** One connection's run, as the Map hands it to the item processor and each slice passes it on. */
export const syncItemSchema = z.object({
  tenantId,
  connectionId,
  syncId,
  type: z.string().min(1).max(64),
  mode,
  forceSweep: z.boolean(),
  cursor: z.string().max(MAX_CURSOR_BYTES).nullable(),
  /** How many slices ran before this one (names the slice's "seen" chunks). */
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
  stopped: stopReason.nullable(),
});
export type FinalizeInput = z.infer<typeof finalizeInputSchema>;

/** A Catch's error output: `Error` is the error name, `Cause` the message (for Lambda, a JSON of errorType/errorMessage). */
export const recordFailureInputSchema = z.object({
  tenantId,
  connectionId,
  syncId,
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
  items: SyncItem[];
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
