/**
 * The local stack's Step Functions: runs the sync state machine's definition, as CDK synthesizes
 * it (lib/sync-orchestration.ts), with aws-local-stepfunctions, every Lambda Task state mapped to
 * its handler in this process. So a local sync and the tests exercise the deployed logic: the
 * same states, choices, retries, catches and waits, only the Lambda invocations are local calls.
 *
 * - `synthesizeDefinition()` builds a stack holding the orchestration (bundling skipped), takes
 *   the state machine's DefinitionString and replaces the Lambda ARN tokens with placeholders.
 *   `loadDefinition()` caches the result in the data dir, keyed by a hash of lib/, the state
 *   names, the connector registry and the integration types, since synthesis costs seconds.
 * - `LocalStateMachineRunner` runs executions (`startExecution`), is the local `SyncLauncher`
 *   for the API's POST …/sync and DELETE, and runs the schedule on a timer (`startSchedule`).
 *
 * aws-local-stepfunctions runs the Distributed Maps' item processors (connections, and each
 * connection's partitions) as inline Maps, concurrently up to their MaxConcurrency, and ignores
 * ToleratedFailurePercentage; the definition does not depend on either (each item catches its own
 * errors), so the local run takes the same paths as the cloud.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { syncableTypes } from '#connectors/registry.ts';
import { runtime } from '#platform/runtime.ts';
import { finalizeSync } from '#sync/finalize.ts';
import { configureSyncLauncher, type StateMachineInput, type SyncLauncher } from '#sync/launcher.ts';
import { planSyncs } from '#sync/plan.ts';
import { recordFailure } from '#sync/record-failure.ts';
import { removeConnectionStep } from '#sync/disconnect.ts';
import { configureSync, syncSettings } from '#sync/settings.ts';
import { listPartitions, runSlice } from '#sync/slice.ts';
import { STATES, typeOfPartitionsState, typeOfSliceState } from '#sync/state-machine-names.ts';

export type { StateMachineDefinition };

const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
const PLACEHOLDER_ACCOUNT = '123456789012';
const PLACEHOLDER_REGION = 'us-east-1';
/** The schedule's input (lib/sync-orchestration.ts SCHEDULE_INPUT), repeated here so a cached definition needs no aws-cdk-lib. */
const SCHEDULE_INPUT = { trigger: 'schedule' } as const;

export interface SynthesisOptions {
  /** @default syncableTypes() from the connector registry */
  integrationTypes?: readonly string[];
  /** @default true, as deployed */
  distributedMap?: boolean;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Replaces CloudFormation intrinsics in a DefinitionString with placeholder values. */
function resolvePart(part: Json): string {
  if (typeof part === 'string') return part;
  if (part && typeof part === 'object' && !Array.isArray(part)) {
    const getAtt = part['Fn::GetAtt'];
    if (Array.isArray(getAtt)) return `arn:aws:lambda:${PLACEHOLDER_REGION}:${PLACEHOLDER_ACCOUNT}:function:${String(getAtt[0])}`;
    const ref = part.Ref;
    if (ref === 'AWS::Partition') return 'aws';
    if (ref === 'AWS::Region') return PLACEHOLDER_REGION;
    if (ref === 'AWS::AccountId') return PLACEHOLDER_ACCOUNT;
    if (ref === 'AWS::URLSuffix') return 'amazonaws.com';
    if (typeof ref === 'string') return ref;
  }
  throw new Error(`cannot resolve ${JSON.stringify(part)} in the state machine definition`);
}

/** The sync state machine's definition from a synthesized template, its ARN tokens replaced by placeholders. */
export function definitionFromTemplate(template: { Resources?: Record<string, { Type: string; Properties?: Record<string, Json> }> }): StateMachineDefinition {
  const machines = Object.values(template.Resources ?? {}).filter((resource) => resource.Type === 'AWS::StepFunctions::StateMachine');
  if (machines.length !== 1) throw new Error(`expected one state machine in the template, found ${machines.length}`);
  const body = machines[0]!.Properties?.DefinitionString;
  let text: string;
  if (typeof body === 'string') text = body;
  else if (body && typeof body === 'object' && !Array.isArray(body) && Array.isArray(body['Fn::Join'])) {
    const [separator, parts] = body['Fn::Join'] as [string, Json[]];
    text = parts.map(resolvePart).join(separator);
  } else throw new Error('the state machine has no DefinitionString');
  return JSON.parse(text) as StateMachineDefinition;
}

/** Synthesizes the orchestration (bundling skipped) and returns its definition. Takes a few seconds. */
export async function synthesizeDefinition(options: SynthesisOptions = {}): Promise<StateMachineDefinition> {
  const [{ App, Stack }, { Storage }, { TenantSecrets }, { SyncOrchestration }] = await Promise.all([
    import('aws-cdk-lib'),
    import('#lib/storage.ts'),
    import('#lib/secrets.ts'),
    import('#lib/sync-orchestration.ts'),
  ]);
  const cdkJson = JSON.parse(await readFile(join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { context?: Record<string, unknown> };
  const app = new App({ context: { ...(cdkJson.context ?? {}), 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'OpenTraceLocalSync');
  new SyncOrchestration(stack, 'Sync', {
    storage: new Storage(stack, 'Storage'),
    secrets: new TenantSecrets(stack, 'TenantSecrets'),
    integrationTypes: options.integrationTypes ?? syncableTypes(),
    ...(options.distributedMap === false ? { distributedMap: false } : {}),
  });
  const template = app.synth().getStackByName(stack.stackName).template as Parameters<typeof definitionFromTemplate>[0];
  return definitionFromTemplate(template);
}

/** What the cached definition depends on: the infrastructure code, the state names, the registry and the types. */
async function definitionKey(options: SynthesisOptions, types: readonly string[]): Promise<string> {
  const hash = createHash('sha256');
  const libDir = join(PROJECT_ROOT, 'lib');
  const files = [
    ...(await readdir(libDir)).filter((name) => name.endsWith('.ts')).sort().map((name) => join(libDir, name)),
    join(PROJECT_ROOT, 'functions/sync/state-machine-names.ts'),
    join(PROJECT_ROOT, 'functions/connectors/registry.ts'),
    join(PROJECT_ROOT, 'cdk.json'),
    join(PROJECT_ROOT, 'node_modules/aws-cdk-lib/package.json'),
  ];
  for (const file of files) hash.update(file).update(await readFile(file).catch(() => Buffer.alloc(0)));
  hash.update(JSON.stringify({ types, distributedMap: options.distributedMap !== false }));
  return hash.digest('hex').slice(0, 24);
}

/** The definition, from `<cacheDir>/state-machine/` when nothing it depends on changed, else synthesized and cached. */
export async function loadDefinition(cacheDir: string, options: SynthesisOptions = {}): Promise<StateMachineDefinition> {
  const types = [...(options.integrationTypes ?? syncableTypes())];
  const dir = join(cacheDir, 'state-machine');
  const file = join(dir, `definition-${await definitionKey(options, types)}.json`);
  try {
    return JSON.parse(await readFile(file, 'utf8')) as StateMachineDefinition;
  } catch {
    // not cached yet (or unreadable): synthesize
  }
  const definition = await synthesizeDefinition({ ...options, integrationTypes: types });
  await mkdir(dir, { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, JSON.stringify(definition));
  await rename(temporary, file);
  return definition;
}

/** Every Task state name in a definition, nested ones (Map item processors, Parallel branches) included. */
export function taskStateNames(definition: { States: Record<string, unknown> }): string[] {
  const names: string[] = [];
  for (const [name, raw] of Object.entries(definition.States)) {
    const state = raw as { Type: string; ItemProcessor?: { States: Record<string, unknown> }; Iterator?: { States: Record<string, unknown> }; Branches?: { States: Record<string, unknown> }[] };
    if (state.Type === 'Task') names.push(name);
    for (const nested of [state.ItemProcessor, state.Iterator, ...(state.Branches ?? [])]) if (nested) names.push(...taskStateNames(nested));
  }
  return names;
}

export type TaskHandler = (input: unknown) => Promise<unknown>;
/** Replaces or wraps one Task state's handler (tests): gets the input and the default handler. */
export type TaskHandlerOverride = (input: unknown, handler: TaskHandler) => Promise<unknown>;

export interface LocalRunnerOptions {
  definition: StateMachineDefinition;
  /** How long a slice (or a removal step) may run before handing back, like a Lambda's remaining time. @default syncSettings().sliceBudgetMs */
  sliceBudgetMs?: number;
  /** Milliseconds per Wait state instead of the definition's seconds (tests: 0). */
  waitTimeOverrides?: Record<string, number>;
  /** Milliseconds before a Retry instead of the definition's backoff (tests: 0). */
  retryIntervalOverrides?: Record<string, number | number[]>;
  handlerOverrides?: Record<string, TaskHandlerOverride>;
  log?: (line: string) => void;
}

export interface LocalExecution {
  executionId: string;
  /** The execution's output; rejects when the execution fails or is aborted. */
  result: Promise<unknown>;
  /** Stops the execution (as StopExecution would): no further state runs. */
  abort(): void;
  /** The execution's event log (states entered, retried, caught...). */
  events: AsyncGenerator<{ type: string; state?: { name: string; input?: unknown } }>;
}

/**
 * A Lambda error as Step Functions reports it to Retry/Catch: `Error` is the error's name and
 * `Cause` the JSON Lambda writes (`errorType`, `errorMessage`), so RecordFailure parses both alike.
 */
class LambdaLikeError extends Error {
  constructor(error: unknown) {
    const name = error instanceof Error ? error.name : 'Error';
    const message = error instanceof Error ? error.message : String(error);
    super(JSON.stringify({ errorType: name, errorMessage: message }));
    this.name = name;
  }
}

export class LocalStateMachineRunner implements SyncLauncher {
  readonly definition: StateMachineDefinition;
  /** Integration types the definition has a sync state for. */
  readonly integrationTypes: string[];
  readonly #machine: StateMachine;
  readonly #handlers: Record<string, (input: unknown) => Promise<unknown>>;
  readonly #options: LocalRunnerOptions;
  readonly #running = new Map<string, LocalExecution>();
  #timer: NodeJS.Timeout | undefined;
  #counter = 0;

  constructor(options: LocalRunnerOptions) {
    this.#options = options;
    this.definition = options.definition;
    this.#machine = new StateMachine(options.definition);
    const names = taskStateNames(options.definition);
    this.integrationTypes = names.map(typeOfSliceState).filter((type): type is string => type !== undefined);
    this.#handlers = {};
    for (const name of names) {
      const handler = this.#handlerFor(name);
      const override = options.handlerOverrides?.[name];
      const chosen: TaskHandler = override ? (input) => override(input, handler) : handler;
      this.#handlers[name] = async (input) => {
        try {
          return await chosen(input);
        } catch (error) {
          throw new LambdaLikeError(error);
        }
      };
    }
  }

  /** A slice's deadline, counted from when the task starts (like a fresh Lambda invocation). */
  #deadline(): () => number {
    const budget = this.#options.sliceBudgetMs ?? syncSettings().sliceBudgetMs;
    const started = Date.now();
    return () => budget - (Date.now() - started);
  }

  #handlerFor(name: string): TaskHandler {
    const type = typeOfSliceState(name);
    if (type) return (input) => runSlice(input, { connectorType: type, remainingMs: this.#deadline() });
    const listing = typeOfPartitionsState(name);
    if (listing) return (input) => listPartitions(input, { connectorType: listing, remainingMs: this.#deadline() });
    switch (name) {
      // The deployed Plan gets SYNCABLE_TYPES from the stack: here, the types the definition routes.
      case STATES.plan:
        return (input) => planSyncs(input, runtime(), { ...syncSettings(), syncableTypes: this.integrationTypes });
      case STATES.finalize:
        return (input) => finalizeSync(input);
      case STATES.recordFailure:
      case STATES.recordPartitionFailure:
        return (input) => recordFailure(input);
      case STATES.removeConnection:
        return (input) => removeConnectionStep(input, { remainingMs: this.#deadline() });
      default:
        // Never fall through to aws-local-stepfunctions' real Lambda invoke.
        throw new Error(`no local handler for the Task state "${name}": add it to local/state-machine-runner.ts`);
    }
  }

  /** Starts an execution and returns at once; `result` settles when it ends. */
  startExecution(input: StateMachineInput | Record<string, unknown>, name?: string): LocalExecution {
    const executionId = name ?? `local-${Date.now()}-${++this.#counter}`;
    const run = this.#machine.run(input as never, {
      overrides: {
        taskResourceLocalHandlers: this.#handlers as never,
        ...(this.#options.waitTimeOverrides ? { waitTimeOverrides: this.#options.waitTimeOverrides } : {}),
        ...(this.#options.retryIntervalOverrides ? { retryIntervalOverrides: this.#options.retryIntervalOverrides } : {}),
      },
      context: { Execution: { Id: executionId, Name: executionId, Input: input as never, StartTime: new Date().toISOString() } },
    });
    const execution: LocalExecution = { executionId, result: run.result, abort: run.abort, events: run.eventLogs as LocalExecution['events'] };
    this.#running.set(executionId, execution);
    const forget = () => this.#running.delete(executionId);
    run.result.then(forget, (error: unknown) => {
      forget();
      this.#options.log?.(`sync execution ${executionId} failed: ${(error as Error).message}`);
    });
    return execution;
  }

  /** SyncLauncher: what the API's POST …/sync and DELETE call on the local stack. */
  async start(input: StateMachineInput, name?: string): Promise<{ executionId: string }> {
    const { executionId } = this.startExecution(input, name);
    return { executionId };
  }

  /** Starts the schedule's execution (every due connection) now and then every `intervalMs`. */
  startSchedule(intervalMs: number): void {
    this.stopSchedule();
    const tick = () => {
      this.startExecution({ ...SCHEDULE_INPUT });
    };
    this.#timer = setInterval(tick, intervalMs);
    this.#timer.unref();
    tick();
  }

  stopSchedule(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Resolves when no execution is running (those started meanwhile included). */
  async idle(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running.values()].map((execution) => execution.result));
  }

  /** Stops the schedule and every running execution. */
  async close(): Promise<void> {
    this.stopSchedule();
    for (const execution of this.#running.values()) execution.abort();
    await Promise.allSettled([...this.#running.values()].map((execution) => execution.result));
    this.#running.clear();
  }
}

/**
 * `SYNC_INTERVAL`: how often the local schedule looks for due connections. Seconds, or a number
 * with s/m/h ("30s", "15m", "1h"); "0" or "off" turns the schedule off. @default 1h, as deployed
 */
export function parseSyncInterval(value: string | undefined): number | undefined {
  const raw = (value ?? '').trim().toLowerCase();
  if (raw === '') return 60 * 60_000;
  if (raw === '0' || raw === 'off' || raw === 'false') return undefined;
  const match = /^(\d+(?:\.\d+)?)\s*(s|m|h)?$/.exec(raw);
  if (!match) throw new Error(`SYNC_INTERVAL: expected seconds or a duration like 30s, 15m, 1h (or "off"), got "${value}"`);
  const unit = { s: 1000, m: 60_000, h: 3_600_000 }[match[2] as 's' | 'm' | 'h' | undefined ?? 's'];
  const ms = Number(match[1]) * unit;
  if (ms < 1000) throw new Error('SYNC_INTERVAL: at least one second');
  return ms;
}

export interface LocalSyncOrchestration {
  runner: LocalStateMachineRunner;
  /** The schedule's period in ms, undefined when off. */
  intervalMs: number | undefined;
  close(): Promise<void>;
}

/**
 * What the local stack calls once at start: loads (or synthesizes) the definition, installs the
 * runner as the SyncLauncher the API uses, and starts the schedule every SYNC_INTERVAL. As in
 * the cloud, a connection without its own interval syncs once per schedule period, unless
 * SYNC_INTERVAL_MINUTES says otherwise.
 */
export async function startLocalSyncOrchestration(options: { dataDir: string; syncInterval?: string; log?: (line: string) => void }): Promise<LocalSyncOrchestration> {
  const intervalMs = parseSyncInterval(options.syncInterval ?? process.env.SYNC_INTERVAL);
  if (intervalMs !== undefined && process.env.SYNC_INTERVAL_MINUTES === undefined) configureSync({ defaultIntervalMinutes: intervalMs / 60_000 });
  const definition = await loadDefinition(options.dataDir);
  const runner = new LocalStateMachineRunner({ definition, ...(options.log ? { log: options.log } : {}) });
  configureSyncLauncher(runner);
  if (intervalMs !== undefined) runner.startSchedule(intervalMs);
  return {
    runner,
    intervalMs,
    close: async () => {
      configureSyncLauncher(undefined);
      await runner.close();
    },
  };
}
