/**
 * Errors a sync task throws on purpose. Step Functions catches a Lambda error by its name (the
 * thrown error's `name`), and RecordFailure turns name and message into the run's
 * `error: { code, message }`, so each name here is also the source of a stable error code.
 */
export class SyncTaskError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

/** The run's lease expired and another run took the connection over (or it was released). */
export class LeaseLostError extends SyncTaskError {
  constructor(message: string) {
    super('LeaseLostError', message);
  }
}

export class UnsupportedIntegrationTypeError extends SyncTaskError {
  constructor(message: string) {
    super('UnsupportedIntegrationTypeError', message);
  }
}

export class CredentialsMissingError extends SyncTaskError {
  constructor(message: string) {
    super('CredentialsMissingError', message);
  }
}

/** A connector answered something outside its contract (not a boolean `done`, a huge cursor). */
export class ConnectorContractError extends SyncTaskError {
  constructor(message: string) {
    super('ConnectorContractError', message);
  }
}

const MAX_MESSAGE = 1000;

/** Names whose code (AppError.code in functions/platform/errors.ts) the kebab rule below would not produce. */
const CODES_BY_NAME: Record<string, string> = { ValidationError: 'validation-failed' };

const GENERIC_NAMES = new Set(['Error', 'TypeError', 'RangeError', 'ReferenceError', 'SyntaxError', 'States.TaskFailed']);

/** `UpstreamFailedError` → `upstream-failed`. */
const kebab = (name: string) =>
  name
    .replace(/Error$/, '')
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/[^A-Za-z0-9]+/g, '-')
    .toLowerCase()
    .replace(/^-|-$/g, '');

/**
 * A Catch's `{ Error, Cause }` as the run's `{ code, message }`. Lambda puts
 * `{"errorType","errorMessage","trace"}` in Cause; Step Functions' own errors put text there.
 */
export function failureFromTaskError(error: { Error: string; Cause?: string | null }): { code: string; message: string } {
  let errorType = error.Error;
  let message = error.Cause ?? '';
  try {
    const parsed = JSON.parse(message) as { errorType?: unknown; errorMessage?: unknown };
    if (parsed && typeof parsed === 'object') {
      if (typeof parsed.errorType === 'string') errorType = parsed.errorType;
      if (typeof parsed.errorMessage === 'string') message = parsed.errorMessage;
    }
  } catch {
    // plain text cause
  }
  let code: string;
  if (errorType === 'States.Timeout' || errorType === 'Sandbox.Timedout') {
    code = 'timeout';
    message ||= 'The sync task ran out of time before it could hand back its cursor.';
  } else if (errorType.startsWith('Lambda.') || errorType.startsWith('States.')) {
    code = 'task-failed';
  } else if (GENERIC_NAMES.has(errorType)) {
    code = 'sync-failed';
  } else {
    code = CODES_BY_NAME[errorType] ?? (kebab(errorType) || 'sync-failed');
  }
  if (!message) message = `The sync failed with ${errorType}.`;
  if (message.length > MAX_MESSAGE) message = `${message.slice(0, MAX_MESSAGE - 1)}…`;
  return { code, message };
}
