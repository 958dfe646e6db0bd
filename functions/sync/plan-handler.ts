/** The Plan task's Lambda: see plan.ts. */
import { planSyncs } from './plan.ts';
import { taskHandler } from './task-handler.ts';

export const handler = taskHandler((input: unknown) => planSyncs(input));
