/**
 * Logger, tracer and metrics, configured once for every function (Powertools for AWS Lambda).
 * Logs are structured JSON with the tenant, connection and sync ids appended where known.
 * Nothing here ever logs a request body or a credential: handlers log ids and outcomes only.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';

const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? 'opentrace';

// Level from POWERTOOLS_LOG_LEVEL (default INFO).
export const logger = new Logger({ serviceName });
export const tracer = new Tracer({ serviceName, enabled: process.env.AWS_LAMBDA_FUNCTION_NAME !== undefined && process.env.POWERTOOLS_TRACE_ENABLED !== 'false' });
export const metrics = new Metrics({ serviceName, namespace: 'OpenTrace' });
