/**
 * Wraps a sync task as a Lambda handler: Powertools logger (with the Lambda context) and tracer
 * through middy, and the deadline the task gets. Errors are rethrown as they are: Step Functions
 * matches Retry and Catch on the error's name, and RecordFailure reads its message.
 */
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import type { Context } from 'aws-lambda';
import { logger, tracer } from '#platform/observability.ts';
import { syncSettings } from './settings.ts';

/** The task's deadline: the Lambda's remaining time minus the margin for flushing and recording. */
export const lambdaDeadline = (context: Context) => () => context.getRemainingTimeInMillis() - syncSettings().deadlineMarginMs;

export function taskHandler<Input, Output>(task: (input: Input, context: Context) => Promise<Output>) {
  return middy<Input, Output>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(captureLambdaHandler(tracer))
    .handler(task);
}
