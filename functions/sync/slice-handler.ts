/**
 * Every integration's sync Lambda: this one file, bundled once per integration type with
 * CONNECTOR_TYPE set (lib/sync-orchestration.ts). See slice.ts.
 */
import { runSlice } from './slice.ts';
import { lambdaDeadline, taskHandler } from './task-handler.ts';

export const handler = taskHandler((input: unknown, context) => {
  const connectorType = process.env.CONNECTOR_TYPE;
  if (!connectorType) throw new Error('CONNECTOR_TYPE is not set');
  return runSlice(input, { connectorType, remainingMs: lambdaDeadline(context) });
});
