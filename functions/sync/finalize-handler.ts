/** The Finalize task's Lambda: see finalize.ts. */
import { finalizeSync } from './finalize.ts';
import { taskHandler } from './task-handler.ts';

export const handler = taskHandler((input: unknown) => finalizeSync(input));
