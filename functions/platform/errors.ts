/**
 * Errors the domain throws and the HTTP layer maps to RFC 9457 problem+json in one place.
 * Messages are written for the person reading them and never carry a secret.
 */
export interface FieldError {
  path: string;
  message: string;
}

export class AppError extends Error {
  readonly status: number;
  readonly title: string;
  readonly errors?: FieldError[];
  readonly code: string;

  constructor(status: number, code: string, title: string, detail: string, errors?: FieldError[]) {
    super(detail);
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.title = title;
    if (errors) this.errors = errors;
  }
}

export class ValidationError extends AppError {
  constructor(detail: string, errors: FieldError[] = []) {
    super(400, 'validation-failed', 'Invalid request', detail, errors);
  }
}
export class UnauthorizedError extends AppError {
  constructor(detail = 'A valid API token is required: send "Authorization: Bearer <token>".') {
    super(401, 'unauthorized', 'Unauthorized', detail);
  }
}
export class ForbiddenError extends AppError {
  constructor(detail: string) {
    super(403, 'forbidden', 'Forbidden', detail);
  }
}
export class NotFoundError extends AppError {
  constructor(detail: string) {
    super(404, 'not-found', 'Not found', detail);
  }
}
export class ConflictError extends AppError {
  constructor(detail: string) {
    super(409, 'conflict', 'Conflict', detail);
  }
}
export class PayloadTooLargeError extends AppError {
  constructor(detail: string) {
    super(413, 'payload-too-large', 'Payload too large', detail);
  }
}
/** The request was well formed, but the upstream service's live check rejected it. */
export class UpstreamRejectedError extends AppError {
  constructor(detail: string, errors?: FieldError[]) {
    super(422, 'upstream-rejected', 'Rejected by the upstream check', detail, errors);
  }
}
export class ThrottledError extends AppError {
  readonly retryAfterSeconds?: number;
  constructor(detail: string, retryAfterSeconds?: number) {
    super(429, 'throttled', 'Too many requests', detail);
    if (retryAfterSeconds !== undefined) this.retryAfterSeconds = retryAfterSeconds;
  }
}
export class UpstreamFailedError extends AppError {
  constructor(detail: string) {
    super(502, 'upstream-failed', 'Upstream service failed', detail);
  }
}
export class UpstreamTimeoutError extends AppError {
  constructor(detail: string) {
    super(504, 'upstream-timeout', 'Upstream service timed out', detail);
  }
}
