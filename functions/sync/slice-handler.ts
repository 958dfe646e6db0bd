/**
 * Every integration's sync Lambda: this one file, bundled once per integration type with
 * CONNECTOR_TYPE set (lib/sync-orchestration.ts). Two tasks call it: ListPartitions-<type>
 * (`"action": "list-partitions"`) and SyncSlice-<type> (one slice of one partition). See slice.ts.
 */
import { listPartitions, runSlice } from './slice.ts';
import { LIST_PARTITIONS_ACTION } from './state-machine-names.ts';
import { lambdaDeadline, taskHandler } from './task-handler.ts';

export const handler = taskHandler<unknown, unknown>((input: unknown, context) => {
  const connectorType = process.env.CONNECTOR_TYPE;
  if (!connectorType) throw new Error('CONNECTOR_TYPE is not set');
  const options = { connectorType, remainingMs: lambdaDeadline(context) };
  const action = input && typeof input === 'object' ? (input as { action?: unknown }).action : undefined;
  return action === LIST_PARTITIONS_ACTION ? listPartitions(input, options) : runSlice(input, options);
});
