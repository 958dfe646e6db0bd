/**
 * `npm start`: the local stack on http://127.0.0.1:${PORT:-3000}, data under
 * ${OPENTRACE_DATA_DIR:-.opentrace}. Set-up failures (port taken, unusable data dir, bad
 * OPENTRACE_DEV_TOKENS) print one line and exit 1; Ctrl+C stops cleanly so LevelDB flushes.
 */
import { DEFAULT_DATA_DIR } from './data-dir.ts';
import { LocalStackError } from './errors.ts';
import { startLocalStack, type LocalStack } from './stack.ts';

function parsePort(value: string | undefined): number {
  if (value === undefined || value === '') return 3000;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new LocalStackError(`PORT must be a port number (0-65535), not "${value}"`);
  return port;
}

function printBanner(stack: LocalStack): void {
  const lines = [
    `OpenTrace local stack is up at ${stack.url}`,
    `  try:      curl -s ${stack.url}/v1/health`,
    `  data:     ${stack.dataDir}`,
    `  DynamoDB: ${stack.dynamoEndpoint} (table ${stack.tableName})`,
    stack.devTenants.length > 0
      ? `  tokens:   from OPENTRACE_DEV_TOKENS for ${stack.devTenants.join(', ')}`
      : '  tokens:   none preset (set OPENTRACE_DEV_TOKENS="acme=tok1" to seed some)',
    `  a token:  npm run token -- create --tenant ${stack.devTenants[0] ?? 'acme'}   (then send "Authorization: Bearer <token>")`,
    ...stack.warnings.map((warning) => `  warning:  ${warning}`),
    'Press Ctrl+C to stop.',
  ];
  console.log(lines.join('\n'));
}

async function main(): Promise<void> {
  const stack = await startLocalStack({
    port: parsePort(process.env.PORT),
    dataDir: process.env.OPENTRACE_DATA_DIR || DEFAULT_DATA_DIR,
    devTokens: process.env.OPENTRACE_DEV_TOKENS,
    log: (line) => console.log(line),
  });
  printBanner(stack);

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      console.error(`${signal} again: exiting without a clean stop`);
      process.exit(130);
    }
    stopping = true;
    console.log(`${signal}: stopping…`);
    setTimeout(() => {
      console.error('the local stack did not stop within 10 s; exiting anyway');
      process.exit(1);
    }, 10_000).unref();
    stack.close().then(
      () => {
        console.log('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        console.error(`stopping failed: ${(error as Error).stack ?? String(error)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: unknown) => {
  if (error instanceof LocalStackError) {
    console.error(error.message);
    process.exit(error.exitCode);
  }
  console.error(`the local stack failed to start: ${(error as Error)?.stack ?? String(error)}`);
  process.exit(1);
});
