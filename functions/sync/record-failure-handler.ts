/** The RecordFailure task's Lambda: see record-failure.ts. */
import { recordFailure } from './record-failure.ts';
import { taskHandler } from './task-handler.ts';

export const handler = taskHandler((input: unknown) => recordFailure(input));
