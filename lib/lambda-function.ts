/**
 * Every Lambda function of the stack is built here, so runtime, architecture, tracing, logging
 * and bundling are decided once (the `FunctionWithLogGroup` construct of Powertools' sample app).
 */
import { Duration, Validations } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, LoggingFormat, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, SourceMapMode } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: function entries are given relative to it. */
export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * The newest Node.js runtime aws-cdk-lib offers. Pinned rather than `NODEJS_LATEST` so an
 * aws-cdk-lib upgrade never changes the runtime silently; test/infra pins it against the
 * newest `Runtime.NODEJS_*_X` and cdk-nag's AwsSolutions-L1 fails synth when a newer one appears.
 */
export const NODE_RUNTIME = Runtime.NODEJS_24_X;

/** Every `functions/connectors/<type>/proto` folder, relative to the project root. */
function connectorProtoDirs(): string[] {
  const connectors = join(PROJECT_ROOT, 'functions', 'connectors');
  return readdirSync(connectors, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(connectors, entry.name, 'proto')))
    .map((entry) => join('functions', 'connectors', entry.name, 'proto'));
}

/** Powertools metrics namespace shared by every function (service name differs per function). */
export const METRICS_NAMESPACE = 'OpenTrace';

export interface FunctionWithLogGroupProps {
  /** Handler module relative to the project root, e.g. `functions/api/health.ts`. */
  readonly entry: string;
  /** Exported handler name. @default 'handler' */
  readonly handler?: string;
  /** The single table; its name goes into TABLE_NAME. Access is granted by the caller. */
  readonly table: ITable;
  /** POWERTOOLS_SERVICE_NAME: which part of the system a log line or metric came from. */
  readonly serviceName: string;
  readonly description?: string;
  /** @default 10 seconds */
  readonly timeout?: Duration;
  /** @default 1024 MB */
  readonly memorySize?: number;
  readonly environment?: Record<string, string>;
  /**
   * Files read at run time rather than imported (esbuild cannot bundle them), copied into the
   * bundle after esbuild: `from` relative to the project root, `to` relative to the bundle
   * (e.g. the code analysis' `.wasm` grammars into `tree-sitter/`). Checked at synth.
   */
  readonly bundleFiles?: readonly BundleFile[];
}

export interface BundleFile {
  readonly from: string;
  readonly to: string;
}

const quote = (path: string) => `'${path.replace(/'/g, `'\\''`)}'`;

/** The shell commands the afterBundling hook runs: every connector's proto/ folder, then the function's own bundle files. */
export function afterBundlingCommands(inputDir: string, outputDir: string, bundleFiles: readonly BundleFile[] = []): string[] {
  return [
    ...connectorProtoDirs().map((dir) => `mkdir -p "${outputDir}/proto" && cp -R "${join(inputDir, dir)}/." "${outputDir}/proto/"`),
    ...bundleFiles.map((file) => `mkdir -p ${quote(dirname(join(outputDir, file.to)))} && cp ${quote(join(inputDir, file.from))} ${quote(join(outputDir, file.to))}`),
  ];
}

export class FunctionWithLogGroup extends Construct {
  readonly function: NodejsFunction;
  readonly logGroup: LogGroup;
  readonly role: Role;
  /** What the bundle carries besides the code (see FunctionWithLogGroupProps.bundleFiles). */
  readonly bundleFiles: readonly BundleFile[];

  constructor(scope: Construct, id: string, props: FunctionWithLogGroupProps) {
    super(scope, id);
    const entry = join(PROJECT_ROOT, props.entry);
    if (!existsSync(entry)) throw new Error(`Lambda entry ${props.entry} does not exist`);
    this.bundleFiles = [...(props.bundleFiles ?? [])];
    for (const file of this.bundleFiles) {
      if (!existsSync(join(PROJECT_ROOT, file.from))) throw new Error(`${props.entry}: bundle file ${file.from} does not exist (npm install?)`);
      if (isAbsolute(file.to) || normalize(file.to).startsWith('..')) throw new Error(`${props.entry}: bundle file target ${file.to} must stay inside the bundle`);
    }

    // An explicit log group: retention is set here instead of "never expire", and the group is
    // part of the stack rather than created lazily by Lambda on first invocation.
    this.logGroup = new LogGroup(this, 'LogGroup', { retention: RetentionDays.ONE_MONTH });

    // Our own role instead of Lambda's default one: the default attaches the AWS managed
    // AWSLambdaBasicExecutionRole (logs on every log group in the account, AwsSolutions-IAM4);
    // this role may write to its own log group only.
    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of ${props.entry}`,
    });
    this.logGroup.grantWrite(this.role);

    this.function = new NodejsFunction(this, 'Function', {
      entry,
      handler: props.handler ?? 'handler',
      description: props.description ?? props.entry,
      runtime: NODE_RUNTIME,
      // Graviton: ~20% cheaper per GB-second than x86 and as fast or faster for Node.js.
      architecture: Architecture.ARM_64,
      tracing: Tracing.ACTIVE,
      timeout: props.timeout ?? Duration.seconds(10),
      // CPU scales with memory; 1 GB keeps cold starts and SDK/crypto work short for little cost.
      memorySize: props.memorySize ?? 1024,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: LoggingFormat.JSON,
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: join(PROJECT_ROOT, 'package-lock.json'),
      environment: {
        TABLE_NAME: props.table.tableName,
        POWERTOOLS_SERVICE_NAME: props.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        // Stack traces point at the .ts sources through the bundled source map.
        NODE_OPTIONS: '--enable-source-maps',
        ...props.environment,
      },
      bundling: {
        format: OutputFormat.ESM,
        target: 'node24',
        // Prefer packages' ESM builds: they tree-shake, which keeps bundles (and cold starts) small.
        mainFields: ['module', 'main'],
        // CJS dependencies bundled into an ESM file still call require(); give them one.
        banner: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
        minify: true,
        sourceMap: true,
        sourceMapMode: SourceMapMode.DEFAULT,
        // Line mappings are enough for stack traces; embedding the sources would double the asset.
        sourcesContent: false,
        // Bundle the AWS SDK instead of using the runtime's copy: the deployed code runs the SDK
        // versions the tests ran, and a minified, tree-shaken bundle loads faster than the
        // runtime's full node_modules.
        bundleAwsSDK: true,
        // Files loaded at run time rather than imported cannot be bundled by esbuild: every
        // connector's `proto/` folder (Jaeger's .proto definitions) is copied next to the bundle,
        // where `new URL('./proto/', import.meta.url)` finds it, and so are the function's own
        // `bundleFiles` (a code-analysing sync's tree-sitter grammars).
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (inputDir: string, outputDir: string) => afterBundlingCommands(inputDir, outputDir, this.bundleFiles),
        },
      },
    });

    // Acknowledged here because every function gets it from `tracing: ACTIVE`.
    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'X-Ray tracing (tracing: ACTIVE) adds xray:PutTraceSegments and xray:PutTelemetryRecords, which support no resource-level permissions; "*" is the only valid resource.',
    });
  }
}
