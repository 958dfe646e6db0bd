/** The RemoveConnection task's Lambda (the disconnect branch): see disconnect.ts. */
import { removeConnectionStep } from './disconnect.ts';
import { lambdaDeadline, taskHandler } from './task-handler.ts';

export const handler = taskHandler((input: unknown, context) => removeConnectionStep(input, { remainingMs: lambdaDeadline(context) }));
