/**
 * The orchestration's infrastructure: one sync Lambda per integration, the schedule, the state
 * machine's Retry/Catch, payloads of ids and cursors only, asl-validator, cdk-nag, and that the
 * local runner runs exactly the definition CDK synthesizes.
 */
import { describe, expect, it } from '@jest/globals';
import { createRequire } from 'node:module';
import { afterBundlingCommands, FunctionWithLogGroup } from '#lib/lambda-function.ts';
import { AwsSolutionsChecks } from 'cdk-nag';
import { StateMachine } from 'aws-local-stepfunctions';
import { syncableTypes } from '#connectors/registry.ts';
import { SCHEDULE_INPUT, TRANSIENT_LAMBDA_ERRORS } from '#lib/sync-orchestration.ts';
import { LIST_PARTITIONS_ACTION, partitionsStateName, STATES, sliceStateName } from '#sync/state-machine-names.ts';
import { definitionFromTemplate, synthesizeDefinition, taskStateNames } from '#local/state-machine-runner.ts';
import { buildSyncStack } from '../support/sync-stack.ts';

type AslValidator = (definition: unknown, options?: { checkPaths: boolean; checkArn: boolean }) => { isValid: boolean; errors: unknown[] };
const aslValidator = createRequire(import.meta.url)('asl-validator') as AslValidator;

const TYPES = ['test-alpha', 'test-beta'];
const { app, sync, template } = buildSyncStack({ integrationTypes: TYPES });
const json = template.toJSON() as Parameters<typeof definitionFromTemplate>[0];
const definition = definitionFromTemplate(json);

type AnyState = Record<string, unknown> & { Type: string };
/** Every state, nested ones included, by name. */
function allStates(states: Record<string, unknown>): Map<string, AnyState> {
  const out = new Map<string, AnyState>();
  for (const [name, raw] of Object.entries(states)) {
    const state = raw as AnyState & { ItemProcessor?: { States: Record<string, unknown> } };
    out.set(name, state);
    if (state.ItemProcessor) for (const [n, s] of allStates(state.ItemProcessor.States)) out.set(n, s);
  }
  return out;
}
const states = allStates(definition.States as Record<string, unknown>);

const functions = Object.values(template.findResources('AWS::Lambda::Function')) as { Properties: { Environment: { Variables: Record<string, unknown> }; Timeout: number; Description: string } }[];

describe('sync Lambdas', () => {
  it('one per integration type, all bundled from the one generic slice handler', () => {
    const slices = functions.filter((fn) => fn.Properties.Environment.Variables.CONNECTOR_TYPE !== undefined);
    expect(slices.map((fn) => fn.Properties.Environment.Variables.CONNECTOR_TYPE).sort()).toEqual(TYPES);
    expect([...sync.syncFunctions.keys()]).toEqual(TYPES);
    for (const fn of slices) expect(fn.Properties.Timeout).toBe(900);
    for (const type of TYPES) expect(states.get(sliceStateName(type))?.Type).toBe('Task');
    // Plan, Finalize, RecordFailure, RemoveConnection and the sync Lambdas: nothing else.
    expect(functions).toHaveLength(4 + TYPES.length);
  });

  it('follows the registry by default', () => {
    const { sync: byDefault } = buildSyncStack();
    expect([...byDefault.syncFunctions.keys()]).toEqual(syncableTypes());
  });

  it('ships a connector\'s run-time files with its own sync Lambda only (GitHub: the tree-sitter runtime and grammars)', () => {
    const { sync: byDefault } = buildSyncStack();
    const github = byDefault.syncFunctions.get('github')!;
    expect(github.bundleFiles.map((file) => file.to)).toEqual(
      expect.arrayContaining(['tree-sitter/web-tree-sitter.wasm', 'tree-sitter/tree-sitter-typescript.wasm', 'tree-sitter/tree-sitter-python.wasm', 'tree-sitter/tree-sitter-go.wasm']),
    );
    expect(byDefault.planFunction.bundleFiles).toEqual([]);
    expect(afterBundlingCommands('/in', '/out', github.bundleFiles)).toContain(
      "mkdir -p '/out/tree-sitter' && cp '/in/node_modules/web-tree-sitter/web-tree-sitter.wasm' '/out/tree-sitter/web-tree-sitter.wasm'",
    );
    // The proto folders still go to every function.
    expect(afterBundlingCommands('/in', '/out')).toEqual([expect.stringContaining('functions/connectors/jaeger/proto/.')]);
  });

  it('tells the plan which types this deployment can sync', () => {
    const plan = functions.find((fn) => fn.Properties.Description === 'functions/sync/plan-handler.ts');
    expect(plan?.Properties.Environment.Variables).toMatchObject({ SYNCABLE_TYPES: TYPES.join(','), SYNC_INTERVAL_MINUTES: '60' });
  });
});

describe('schedule', () => {
  it('starts the state machine hourly with the schedule input', () => {
    const schedules = Object.values(template.findResources('AWS::Scheduler::Schedule'));
    expect(schedules).toHaveLength(1);
    expect(schedules[0]!.Properties).toMatchObject({
      ScheduleExpression: 'rate(1 hour)',
      State: 'ENABLED',
      Target: { Arn: { Ref: expect.stringMatching(/^SyncStateMachine/) }, Input: JSON.stringify(SCHEDULE_INPUT), RetryPolicy: expect.anything() },
    });
  });

  it('takes its rate from the CDK context, and the default interval with it', () => {
    const { template: every15 } = buildSyncStack({ integrationTypes: TYPES }, { 'opentrace:syncScheduleMinutes': 15 });
    every15.hasResourceProperties('AWS::Scheduler::Schedule', { ScheduleExpression: 'rate(15 minutes)' });
    const plan = Object.values(every15.findResources('AWS::Lambda::Function')).find((fn) => fn.Properties.Description === 'functions/sync/plan-handler.ts');
    expect(plan?.Properties.Environment.Variables.SYNC_INTERVAL_MINUTES).toBe('15');
  });
});

describe('state machine', () => {
  it('logs every event and traces with X-Ray', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: true },
      TracingConfiguration: { Enabled: true },
    });
  });

  it('fans out with a Distributed Map whose items catch their own failures', () => {
    const map = states.get(STATES.syncEach) as AnyState & { ItemProcessor: { ProcessorConfig: unknown }; ToleratedFailurePercentage: number };
    expect(map.ItemProcessor.ProcessorConfig).toEqual({ Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' });
    expect(map.ToleratedFailurePercentage).toBe(100);
    expect(map.ResultPath).toBeNull();
  });

  it('fans out over each connection\'s partitions with a second Distributed Map, then finalizes once', () => {
    for (const type of TYPES) {
      expect(states.get(partitionsStateName(type))).toMatchObject({
        Type: 'Task',
        Parameters: { 'tenantId.$': '$.tenantId', 'syncId.$': '$.syncId', 'type.$': '$.type', action: LIST_PARTITIONS_ACTION },
        Next: STATES.syncPartitions,
      });
    }
    const partitions = states.get(STATES.syncPartitions) as AnyState & { ItemProcessor: { ProcessorConfig: unknown; StartAt: string }; ItemSelector: Record<string, string> };
    expect(partitions).toMatchObject({ Type: 'Map', ItemsPath: '$.partitions', MaxConcurrency: 10, ResultPath: null, Next: STATES.finalize });
    expect(partitions.ItemProcessor.ProcessorConfig).toEqual({ Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' });
    expect(partitions.ItemProcessor.StartAt).toBe(STATES.routeSliceByType);
    // A partition that cannot even record its failure fails the Map (tolerance 0), and so the run.
    expect(partitions.ToleratedFailurePercentage).toBeUndefined();
    expect(partitions.ItemSelector).toMatchObject({ 'partition.$': '$$.Map.Item.Value', 'cursor.$': '$.cursor', 'slice.$': '$.slice', 'connectionId.$': '$.connectionId' });
    // The whole connection's run: one Finalize after every partition, nothing per partition.
    expect(states.get(STATES.afterSlice)).toMatchObject({ Choices: [expect.objectContaining({ Next: STATES.partitionDone }), expect.anything()] });
    expect(states.get(STATES.partitionDone)).toEqual({ Type: 'Succeed' });
  });

  it('retries every Lambda task on transient Lambda errors, with backoff and full jitter', () => {
    const tasks = taskStateNames(definition);
    expect(tasks.sort()).toEqual(
      [STATES.finalize, STATES.plan, STATES.recordFailure, STATES.recordPartitionFailure, STATES.removeConnection, ...TYPES.map(sliceStateName), ...TYPES.map(partitionsStateName)].sort(),
    );
    for (const name of tasks) {
      const retry = states.get(name)!.Retry as { ErrorEquals: string[]; BackoffRate: number; JitterStrategy: string; MaxAttempts: number }[];
      expect(retry).toEqual([expect.objectContaining({ ErrorEquals: TRANSIENT_LAMBDA_ERRORS, BackoffRate: 2, JitterStrategy: 'FULL', MaxAttempts: 6 })]);
      expect(TRANSIENT_LAMBDA_ERRORS).toEqual(expect.arrayContaining(['Lambda.ServiceException', 'Lambda.TooManyRequestsException', 'Lambda.SdkClientException']));
    }
  });

  it('catches every error of a connection\'s run into RecordFailure, which itself cannot fail the branch', () => {
    for (const name of [STATES.finalize, STATES.syncPartitions, ...TYPES.map(partitionsStateName)]) {
      expect(states.get(name)!.Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: STATES.recordFailure }]);
    }
    expect(states.get(STATES.unsupportedType)).toMatchObject({ Type: 'Pass', ResultPath: '$.error', Next: STATES.recordFailure });
    expect(states.get(STATES.recordFailure)!.Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.recordFailureError', Next: STATES.failureNotRecorded }]);
  });

  it('catches a partition\'s errors into RecordPartitionFailure, so its siblings go on; an unrecordable one fails the Map', () => {
    for (const name of TYPES.map(sliceStateName)) {
      expect(states.get(name)!.Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: STATES.recordPartitionFailure }]);
    }
    expect(states.get(STATES.recordPartitionFailure)).toMatchObject({
      Parameters: { 'partition.$': '$.partition', 'error.$': '$.error', 'syncId.$': '$.syncId' },
      End: true,
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.recordFailureError', Next: STATES.partitionFailureNotRecorded }],
    });
    expect(states.get(STATES.partitionFailureNotRecorded)).toMatchObject({ Type: 'Fail', Error: 'PartitionFailureNotRecorded' });
    expect(states.get(STATES.unsupportedSliceType)).toMatchObject({ Type: 'Pass', ResultPath: '$.error', Next: STATES.recordPartitionFailure });
  });

  it('waits as long as the connector asked, then loops back to the slice', () => {
    expect(states.get(STATES.waitBeforeNextSlice)).toEqual({ Type: 'Wait', SecondsPath: '$.waitSeconds', Next: STATES.routeSliceByType });
    expect(states.get(STATES.afterSlice)).toMatchObject({
      Choices: [
        { Variable: '$.done', BooleanEquals: true, Next: STATES.partitionDone },
        { Variable: '$.waitSeconds', NumericGreaterThan: 0, Next: STATES.waitBeforeNextSlice },
      ],
      Default: STATES.routeSliceByType,
    });
  });

  it('passes ids, cursors and flags between states, never graph data', () => {
    const allowed = new Set(['tenantId', 'connectionId', 'syncId', 'type', 'mode', 'forceSweep', 'partition', 'cursor', 'slice', 'stopped', 'error', 'disconnect']);
    const templates: [string, Record<string, unknown>][] = [];
    for (const [name, state] of states) {
      for (const field of ['Parameters', 'ItemSelector', 'ResultSelector']) {
        if (state[field]) templates.push([`${name}.${field}`, state[field] as Record<string, unknown>]);
      }
      // No state adds data from anywhere but a Lambda answer or a static error.
      if (state.Type === 'Pass') expect([STATES.unsupportedType, STATES.unsupportedSliceType, STATES.failureNotRecorded]).toContain(name);
    }
    expect(templates.length).toBeGreaterThanOrEqual(TYPES.length + 4);
    const check = (where: string, value: Record<string, unknown>) => {
      for (const [key, path] of Object.entries(value)) {
        // The one static parameter: which role the sync Lambda plays.
        if (key === 'action') {
          expect(path).toBe(LIST_PARTITIONS_ACTION);
          continue;
        }
        const field = key.replace(/\.\$$/, '');
        expect(`${where}: ${field}`).toEqual(`${where}: ${allowed.has(field) ? field : '(not an id or cursor)'}`);
        // A partition key is the partition Map's item itself.
        if (field === 'partition' && path === '$$.Map.Item.Value') continue;
        if (typeof path === 'string') expect(path).toMatch(new RegExp(`^(\\$\\$\\.Map\\.Item\\.Value|\\$)(\\.disconnect)?\\.${field}$`));
        else check(`${where}.${field}`, path as Record<string, unknown>);
      }
    };
    for (const [where, value] of templates) check(where, value);
    // The Plan keeps its answer (ids) under $.plan; the Map drops the item results.
    expect(states.get(STATES.plan)).toMatchObject({ ResultPath: '$.plan' });
    expect(states.get(STATES.plan)!.Parameters).toBeUndefined();
  });

  it('passes the asl-validator, as deployed and with the inline Map', () => {
    expect(aslValidator(structuredClone(definition))).toMatchObject({ isValid: true, errors: [] });
    const { template: inline } = buildSyncStack({ integrationTypes: TYPES, distributedMap: false });
    const inlineDefinition = definitionFromTemplate(inline.toJSON() as Parameters<typeof definitionFromTemplate>[0]);
    expect(aslValidator(structuredClone(inlineDefinition))).toMatchObject({ isValid: true, errors: [] });
    expect((inlineDefinition.States[STATES.syncEach] as { ItemProcessor: { ProcessorConfig?: unknown } }).ItemProcessor.ProcessorConfig).toEqual({ Mode: 'INLINE' });
    expect((allStates(inlineDefinition.States as Record<string, unknown>).get(STATES.syncPartitions) as unknown as { ItemProcessor: { ProcessorConfig?: unknown } }).ItemProcessor.ProcessorConfig).toEqual({ Mode: 'INLINE' });
  });

  it('is valid without any syncable integration (every run then ends in RecordFailure)', () => {
    const { template: none } = buildSyncStack({ integrationTypes: [] });
    const empty = definitionFromTemplate(none.toJSON() as Parameters<typeof definitionFromTemplate>[0]);
    expect(aslValidator(structuredClone(empty))).toMatchObject({ isValid: true, errors: [] });
    expect(() => new StateMachine(empty)).not.toThrow();
    expect((empty.States[STATES.syncEach] as { ItemProcessor: { StartAt: string } }).ItemProcessor.StartAt).toBe(STATES.unsupportedType);
  });

  it('is the very definition the local runner runs', async () => {
    const local = await synthesizeDefinition({ integrationTypes: TYPES });
    const withoutArns = (value: unknown) => JSON.parse(JSON.stringify(value).replace(/"Resource":"[^"]*"/g, '"Resource":"-"'));
    expect(withoutArns(local)).toEqual(withoutArns(definition));
  });
});

describe('wiring', () => {
  it('lets an API function start syncs', () => {
    const { template: resolved } = buildSyncStack({ integrationTypes: TYPES }, {}, (stack, orchestration, storage) => {
      const api = new FunctionWithLogGroup(stack, 'ApiLike', { entry: 'functions/api/health.ts', table: storage.table, serviceName: 'test' });
      orchestration.grantStartSync(api.function);
    });
    const fn = Object.values(resolved.findResources('AWS::Lambda::Function')).find((f) => f.Properties.Description === 'functions/api/health.ts');
    expect(fn?.Properties.Environment.Variables.STATE_MACHINE_ARN).toEqual({ Ref: expect.stringMatching(/^SyncStateMachine/) });
    const statements = Object.values(resolved.findResources('AWS::IAM::Policy')).flatMap((policy) => policy.Properties.PolicyDocument.Statement as { Action: unknown; Resource: unknown }[]);
    expect(statements).toContainEqual(expect.objectContaining({ Action: 'states:StartExecution', Resource: { Ref: expect.stringMatching(/^SyncStateMachine/) } }));
  });

  it('has nothing cdk-nag\'s AwsSolutions pack would flag', () => {
    const report = new AwsSolutionsChecks(app).validateScope(app);
    expect(report.violations.map((v) => `${v.severity} ${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`)).toEqual([]);
  });
});
