/**
 * A failure of the local stack's own set-up (port, data dir, arguments) whose message is meant
 * for the person at the terminal: the entry points print it on one line, without a stack trace.
 */
export class LocalStackError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'LocalStackError';
    this.exitCode = exitCode;
  }
}

export class PortInUseError extends LocalStackError {
  readonly port: number;
  constructor(port: number) {
    super(`port ${port} is already in use: set PORT to another port`);
    this.name = 'PortInUseError';
    this.port = port;
  }
}

/** Another process (or another stack in this process) has the data directory open. */
export class DataDirInUseError extends LocalStackError {
  constructor(message: string) {
    super(message);
    this.name = 'DataDirInUseError';
  }
}

/** Duck-typed errno check: under jest, node's errors come from another realm and fail `instanceof Error`. */
export function errnoCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}
