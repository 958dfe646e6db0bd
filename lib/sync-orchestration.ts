/**
 * Sync orchestration: the state machine that plans syncs, fans out over connections (Distributed
 * Map), routes each run to its integration's sync Lambda, lists the run's partitions (one per
 * repository for GitHub; the whole connection otherwise), fans out again over them (a second
 * Distributed Map), loops on each partition's cursor (waiting when a connector asks), finalizes
 * once per connection (sweep over what every partition saw, stats, lease) and catches every error
 * per partition and per connection; plus the disconnect branch, and the EventBridge Scheduler
 * schedule that starts it. The diagram and the console inputs are in docs/orchestration.md.
 *
 * The local stack runs this same definition (local/state-machine-runner.ts extracts it from the
 * synthesized template), so the Task states carry only ids and cursors in JSONPath mode, and every
 * path (failure, wait, unknown type, plan loop, disconnect) is reachable without AWS.
 */
import { Duration, Stack, Validations } from 'aws-cdk-lib';
import type { IGrantable, Policy } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Schedule, ScheduleExpression, ScheduleTargetInput } from 'aws-cdk-lib/aws-scheduler';
import { StepFunctionsStartExecution } from 'aws-cdk-lib/aws-scheduler-targets';
import {
  Choice,
  Condition,
  DefinitionBody,
  DistributedMap,
  Fail,
  JitterType,
  JsonPath,
  LogLevel,
  Map as MapState,
  Pass,
  Result,
  type State,
  StateMachine,
  StateMachineType,
  Succeed,
  TaskInput,
  Timeout,
  Wait,
  WaitTime,
  type IChainable,
  type INextable,
} from 'aws-cdk-lib/aws-stepfunctions';
import { LambdaInvoke } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { findConnector, syncableTypes } from '#connectors/registry.ts';
import { INTEGRATION_TYPE_PATTERN, LIST_PARTITIONS_ACTION, partitionsStateName, sliceStateName, STATES } from '#sync/state-machine-names.ts';
import { FunctionWithLogGroup, type BundleFile } from './lambda-function.ts';
import { wildcardResourceFinding } from './nag.ts';
import type { TenantSecrets } from './secrets.ts';
import type { Storage } from './storage.ts';

export { STATES, sliceStateName, partitionsStateName };

/** Service name of the sync functions in logs, traces and metrics. */
export const SYNC_SERVICE_NAME = 'opentrace-sync';
/** CDK context key: minutes between schedule ticks (`cdk deploy -c opentrace:syncScheduleMinutes=30`). */
export const SCHEDULE_CONTEXT_KEY = 'opentrace:syncScheduleMinutes';
export const DEFAULT_SCHEDULE = Duration.hours(1);
/** The input the schedule starts the state machine with: every due connection. */
export const SCHEDULE_INPUT = { trigger: 'schedule' } as const;

/**
 * Lambda invoke errors worth retrying (service hiccups and throttling), never the function's own
 * errors: those go to RecordFailure with their reason.
 */
export const TRANSIENT_LAMBDA_ERRORS = [
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
  'Lambda.ClientExecutionTimeoutException',
];

const SLICE_TIMEOUT = Duration.minutes(15);

export interface SyncOrchestrationProps {
  readonly storage: Storage;
  readonly secrets: TenantSecrets;
  /** One sync Lambda per type. @default syncableTypes() from functions/connectors/registry.ts */
  readonly integrationTypes?: readonly string[];
  /** How often the schedule looks for due connections. @default context `opentrace:syncScheduleMinutes`, else 1 hour */
  readonly scheduleRate?: Duration;
  /** Interval of a connection without its own `syncIntervalMinutes`. @default the schedule rate */
  readonly defaultSyncInterval?: Duration;
  /** Distributed Map (child executions, for fan-outs of thousands) or an inline Map. @default true */
  readonly distributedMap?: boolean;
  /** Connections synced at once per execution. @default 40 */
  readonly maxConcurrency?: number;
  /**
   * Partitions (repositories) of one connection synced at once. GitHub's secondary limits allow
   * at most 100 concurrent requests per token; each partition's loop sends one at a time.
   * @default 10
   */
  readonly partitionConcurrency?: number;
}

const pascalCase = (value: string) =>
  value
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join('');

/** `{ "name.$": "$.name" }` for each name: Task parameters that pass ids on, nothing else. */
const pick = (...names: string[]) => Object.fromEntries(names.map((name) => [name, JsonPath.stringAt(`$.${name}`)]));

export class SyncOrchestration extends Construct {
  readonly stateMachine: StateMachine;
  readonly logGroup: LogGroup;
  readonly schedule: Schedule;
  readonly planFunction: FunctionWithLogGroup;
  readonly finalizeFunction: FunctionWithLogGroup;
  readonly recordFailureFunction: FunctionWithLogGroup;
  readonly removeConnectionFunction: FunctionWithLogGroup;
  /** The sync Lambda of each integration type. */
  readonly syncFunctions = new Map<string, FunctionWithLogGroup>();
  readonly integrationTypes: readonly string[];

  readonly #props: SyncOrchestrationProps;

  constructor(scope: Construct, id: string, props: SyncOrchestrationProps) {
    super(scope, id);
    this.#props = props;
    this.integrationTypes = [...(props.integrationTypes ?? syncableTypes())];
    for (const type of this.integrationTypes) {
      if (!INTEGRATION_TYPE_PATTERN.test(type)) throw new Error(`integration type "${type}" cannot name a sync Lambda and state (${INTEGRATION_TYPE_PATTERN})`);
    }
    const contextMinutes = Number(this.node.tryGetContext(SCHEDULE_CONTEXT_KEY));
    const scheduleRate = props.scheduleRate ?? (contextMinutes > 0 ? Duration.minutes(contextMinutes) : DEFAULT_SCHEDULE);
    const defaultInterval = props.defaultSyncInterval ?? scheduleRate;
    const scheduleEnvironment = { SYNC_INTERVAL_MINUTES: String(defaultInterval.toMinutes()) };

    this.planFunction = this.#function('PlanFunction', 'functions/sync/plan-handler.ts', Duration.minutes(5), {
      ...scheduleEnvironment,
      SYNCABLE_TYPES: this.integrationTypes.join(','),
    });
    this.finalizeFunction = this.#function('FinalizeFunction', 'functions/sync/finalize-handler.ts', SLICE_TIMEOUT, scheduleEnvironment);
    this.recordFailureFunction = this.#function('RecordFailureFunction', 'functions/sync/record-failure-handler.ts', Duration.minutes(1), scheduleEnvironment);
    this.removeConnectionFunction = this.#function('RemoveConnectionFunction', 'functions/sync/remove-connection-handler.ts', SLICE_TIMEOUT, {});
    props.secrets.grantTenantSecretsAccess(this.removeConnectionFunction.function);
    for (const type of this.integrationTypes) {
      // A connector's run-time files (the code analysis' grammars) ship with its own sync Lambda only.
      const fn = this.#function(`Sync${pascalCase(type)}Function`, 'functions/sync/slice-handler.ts', SLICE_TIMEOUT, { CONNECTOR_TYPE: type }, `Sync Lambda of the ${type} integration`, findConnector(type)?.bundleFiles);
      props.secrets.grantTenantSecretsAccess(fn.function);
      this.syncFunctions.set(type, fn);
    }

    this.logGroup = new LogGroup(this, 'StateMachineLogs', { retention: RetentionDays.ONE_MONTH });
    this.stateMachine = new StateMachine(this, 'StateMachine', {
      comment: 'OpenTrace syncs: plan, fan out per connection, slice loop per integration, finalize; and disconnect removals',
      definitionBody: DefinitionBody.fromChainable(this.#definition(props)),
      stateMachineType: StateMachineType.STANDARD,
      // Payloads are ids and cursors only, so execution data in the logs holds no tenant data.
      logs: { destination: this.logGroup, level: LogLevel.ALL, includeExecutionData: true },
      tracingEnabled: true,
    });

    this.schedule = new Schedule(this, 'Schedule', {
      description: `OpenTrace: sync every due connection (rate ${scheduleRate.toMinutes()} min)`,
      schedule: ScheduleExpression.rate(scheduleRate),
      target: new StepFunctionsStartExecution(this.stateMachine, { input: ScheduleTargetInput.fromObject(SCHEDULE_INPUT), retryAttempts: 3 }),
    });

    this.#acknowledgeFindings();
  }

  /** Lets an API function start syncs and disconnect removals (POST …/sync, DELETE …): StartExecution and STATE_MACHINE_ARN. */
  grantStartSync(fn: IGrantable & { addEnvironment(key: string, value: string): unknown }): void {
    this.stateMachine.grantStartExecution(fn);
    fn.addEnvironment('STATE_MACHINE_ARN', this.stateMachine.stateMachineArn);
  }

  #function(id: string, entry: string, timeout: Duration, environment: Record<string, string>, description?: string, bundleFiles?: readonly BundleFile[]): FunctionWithLogGroup {
    const fn = new FunctionWithLogGroup(this, id, {
      entry,
      table: this.#props.storage.table,
      serviceName: SYNC_SERVICE_NAME,
      timeout,
      environment,
      ...(description ? { description } : {}),
      ...(bundleFiles && bundleFiles.length > 0 ? { bundleFiles } : {}),
    });
    this.#props.storage.grantItemReadWrite(fn.function);
    return fn;
  }

  /** A Lambda task whose input is exactly `parameters` and whose output is the function's answer. */
  #task(name: string, fn: IFunction, parameters: Record<string, unknown> | undefined, timeout: Duration, resultPath?: string): LambdaInvoke {
    const task = new LambdaInvoke(this, name, {
      stateName: name,
      lambdaFunction: fn,
      payloadResponseOnly: true,
      retryOnServiceExceptions: false,
      ...(parameters ? { payload: TaskInput.fromObject(parameters) } : {}),
      ...(resultPath ? { resultPath } : {}),
      taskTimeout: Timeout.duration(timeout.plus(Duration.seconds(30))),
    });
    task.addRetry({
      errors: TRANSIENT_LAMBDA_ERRORS,
      interval: Duration.seconds(2),
      maxAttempts: 6,
      backoffRate: 2,
      maxDelay: Duration.seconds(60),
      jitterStrategy: JitterType.FULL,
    });
    return task;
  }

  #definition(props: SyncOrchestrationProps): IChainable {
    const run = ['tenantId', 'connectionId', 'syncId', 'type', 'mode', 'forceSweep'];

    // --- one connection's run (the outer Map's item processor) ---
    const recordFailure = this.#task(
      STATES.recordFailure,
      this.recordFailureFunction.function,
      { ...pick('tenantId', 'connectionId', 'syncId'), error: JsonPath.objectAt('$.error') },
      Duration.minutes(1),
    );
    // Even when the failure cannot be recorded the branch ends quietly: the lease expires and the
    // next run marks this one abandoned. Siblings never see it.
    recordFailure.addCatch(new Pass(this, STATES.failureNotRecorded, { stateName: STATES.failureNotRecorded }), { resultPath: '$.recordFailureError' });

    const unsupported = new Pass(this, STATES.unsupportedType, {
      stateName: STATES.unsupportedType,
      result: Result.fromObject({ Error: 'UnsupportedIntegrationTypeError', Cause: 'This deployment has no sync Lambda for the connection\'s integration type.' }),
      resultPath: '$.error',
    }).next(recordFailure);
    const processor: IChainable = this.integrationTypes.length > 0 ? this.#connectionRun(run, recordFailure, unsupported, props) : unsupported;

    // --- the fan-out over connections ---
    const itemSelector = Object.fromEntries(run.map((name) => [name, JsonPath.stringAt(`$$.Map.Item.Value.${name}`)]));
    const mapProps = {
      stateName: STATES.syncEach,
      itemsPath: '$.plan.items',
      itemSelector,
      maxConcurrency: props.maxConcurrency ?? 40,
      resultPath: JsonPath.DISCARD,
    };
    const map: State & INextable =
      props.distributedMap === false
        ? new MapState(this, STATES.syncEach, mapProps).itemProcessor(processor)
        : new DistributedMap(this, STATES.syncEach, {
            ...mapProps,
            mapExecutionType: StateMachineType.STANDARD,
            // Each item catches its own errors (RecordFailure); should one still fail, the others go on.
            toleratedFailurePercentage: 100,
          }).itemProcessor(processor);

    const plan = this.#task(STATES.plan, this.planFunction.function, undefined, Duration.minutes(5), '$.plan');
    const morePlanned = new Choice(this, STATES.morePlanned, { stateName: STATES.morePlanned })
      .when(Condition.isPresent('$.plan.next'), plan)
      .otherwise(new Succeed(this, STATES.allPlanned, { stateName: STATES.allPlanned }));
    plan.next(map).next(morePlanned);

    // --- disconnect: remove the connection's data in steps ---
    const removeConnection = this.#task(
      STATES.removeConnection,
      this.removeConnectionFunction.function,
      { disconnect: { tenantId: JsonPath.stringAt('$.disconnect.tenantId'), connectionId: JsonPath.stringAt('$.disconnect.connectionId') } },
      SLICE_TIMEOUT,
    );
    const waitForSync = new Wait(this, STATES.waitForRunningSync, { stateName: STATES.waitForRunningSync, time: WaitTime.secondsPath('$.waitSeconds') });
    removeConnection.next(
      new Choice(this, STATES.afterRemoval, { stateName: STATES.afterRemoval })
        .when(Condition.booleanEquals('$.done', true), new Succeed(this, STATES.disconnected, { stateName: STATES.disconnected }))
        .when(Condition.numberGreaterThan('$.waitSeconds', 0), waitForSync.next(removeConnection))
        .otherwise(removeConnection),
    );

    return new Choice(this, STATES.route, { stateName: STATES.route }).when(Condition.isPresent('$.disconnect'), removeConnection).otherwise(plan);
  }

  /**
   * One connection's run: Choice by type → that type's ListPartitions → a Map over the partitions
   * (each a slice loop, see #sliceLoop) → one Finalize. Any error of the listing, the Map or
   * Finalize ends in RecordFailure; a partition's own errors end in RecordPartitionFailure, so
   * its siblings go on and Finalize fails the run instead of sweeping.
   */
  #connectionRun(run: string[], recordFailure: LambdaInvoke, unsupported: IChainable, props: SyncOrchestrationProps): IChainable {
    const finalize = this.#task(STATES.finalize, this.finalizeFunction.function, pick('tenantId', 'connectionId', 'syncId', 'mode', 'forceSweep'), SLICE_TIMEOUT);
    finalize.addCatch(recordFailure, { resultPath: '$.error' });

    // The partition list is capped (functions/sync/payloads.ts MAX_PARTITIONS, MAX_PARTITION_LIST_BYTES)
    // so this state stays far below the 256 KB payload limit; each item is ids + one partition key.
    const itemSelector = {
      ...Object.fromEntries(run.map((name) => [name, JsonPath.stringAt(`$.${name}`)])),
      partition: JsonPath.stringAt('$$.Map.Item.Value'),
      cursor: JsonPath.stringAt('$.cursor'),
      slice: JsonPath.numberAt('$.slice'),
    };
    const mapProps = {
      stateName: STATES.syncPartitions,
      itemsPath: '$.partitions',
      itemSelector,
      maxConcurrency: props.partitionConcurrency ?? 10,
      resultPath: JsonPath.DISCARD,
    };
    const loop = this.#sliceLoop(run);
    // Every partition catches its own errors (RecordPartitionFailure); only one whose failure could
    // not even be recorded fails the Map (tolerance 0), and so the run, so that nothing is swept.
    const partitionMap: MapState | DistributedMap =
      props.distributedMap === false
        ? new MapState(this, STATES.syncPartitions, mapProps).itemProcessor(loop)
        : new DistributedMap(this, STATES.syncPartitions, { ...mapProps, mapExecutionType: StateMachineType.STANDARD }).itemProcessor(loop);
    partitionMap.addCatch(recordFailure, { resultPath: '$.error' });
    partitionMap.next(finalize);

    const routeByType = new Choice(this, STATES.routeByType, { stateName: STATES.routeByType });
    for (const type of this.integrationTypes) {
      const list = this.#task(partitionsStateName(type), this.syncFunctions.get(type)!.function, { ...pick(...run), action: LIST_PARTITIONS_ACTION }, SLICE_TIMEOUT);
      list.addCatch(recordFailure, { resultPath: '$.error' });
      routeByType.when(Condition.stringEquals('$.type', type), list.next(partitionMap));
    }
    routeByType.otherwise(unsupported);
    return routeByType;
  }

  /** One partition: Choice by type → that type's sync Lambda → done? end : (wait?) → back to the Choice. */
  #sliceLoop(run: string[]): IChainable {
    const item = [...run, 'partition', 'cursor', 'slice'];
    const recordPartitionFailure = this.#task(
      STATES.recordPartitionFailure,
      this.recordFailureFunction.function,
      { ...pick('tenantId', 'connectionId', 'syncId', 'partition'), error: JsonPath.objectAt('$.error') },
      Duration.minutes(1),
    );
    // A partition failure that cannot be noted on the run must fail the run (Map → RecordFailure):
    // otherwise Finalize would sweep what this partition never saw.
    recordPartitionFailure.addCatch(
      new Fail(this, STATES.partitionFailureNotRecorded, {
        stateName: STATES.partitionFailureNotRecorded,
        error: 'PartitionFailureNotRecorded',
        cause: 'A partition of this sync failed and the failure could not be recorded on the run; the run stops without sweeping.',
      }),
      { resultPath: '$.recordFailureError' },
    );
    const unsupported = new Pass(this, STATES.unsupportedSliceType, {
      stateName: STATES.unsupportedSliceType,
      result: Result.fromObject({ Error: 'UnsupportedIntegrationTypeError', Cause: 'This deployment has no sync Lambda for the connection\'s integration type.' }),
      resultPath: '$.error',
    }).next(recordPartitionFailure);

    const routeByType = new Choice(this, STATES.routeSliceByType, { stateName: STATES.routeSliceByType });
    const afterSlice = new Choice(this, STATES.afterSlice, { stateName: STATES.afterSlice });
    const wait = new Wait(this, STATES.waitBeforeNextSlice, { stateName: STATES.waitBeforeNextSlice, time: WaitTime.secondsPath('$.waitSeconds') });
    for (const type of this.integrationTypes) {
      const slice = this.#task(sliceStateName(type), this.syncFunctions.get(type)!.function, pick(...item), SLICE_TIMEOUT);
      slice.addCatch(recordPartitionFailure, { resultPath: '$.error' });
      routeByType.when(Condition.stringEquals('$.type', type), slice.next(afterSlice));
    }
    routeByType.otherwise(unsupported);
    afterSlice
      .when(Condition.booleanEquals('$.done', true), new Succeed(this, STATES.partitionDone, { stateName: STATES.partitionDone }))
      .when(Condition.numberGreaterThan('$.waitSeconds', 0), wait.next(routeByType))
      .otherwise(routeByType);
    return routeByType;
  }

  #acknowledgeFindings(): void {
    const stack = Stack.of(this);
    const role = this.stateMachine.role;
    const invoked = [this.planFunction, this.finalizeFunction, this.recordFailureFunction, this.removeConnectionFunction, ...this.syncFunctions.values()];
    for (const fn of invoked) {
      Validations.of(role).acknowledge({
        id: wildcardResourceFinding(stack, `${fn.function.functionArn}:*`),
        reason: `The state machine invokes ${fn.node.id}: the generated grant covers the function and its versions/aliases (":*"), the form Step Functions' Lambda integration documents; nothing outside that function.`,
      });
    }
    // The Distributed Map's own policy: child executions of this state machine, whose names
    // Step Functions generates at run time.
    const mapPolicy = this.stateMachine.node.tryFindChild('DistributedMapPolicy') as Policy | undefined;
    if (mapPolicy) {
      const { Statement } = stack.resolve(mapPolicy.document) as { Statement: { Resource: unknown }[] };
      const wildcards = new Set(Statement.flatMap((statement) => (Array.isArray(statement.Resource) ? statement.Resource : [statement.Resource])).filter((resource) => JSON.stringify(resource).includes('*')));
      for (const resource of wildcards) {
        Validations.of(mapPolicy).acknowledge({
          id: wildcardResourceFinding(stack, resource as string),
          reason:
            'The Distributed Map starts, describes, stops and redrives its child executions of this one state machine; their names are generated at run time, so only the execution-name wildcard under this state machine can name them.',
        });
      }
    }
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Step Functions logging (logs:CreateLogDelivery and the other log-delivery actions) and X-Ray tracing (xray:PutTraceSegments, GetSampling*) support no resource-level permissions; "*" is the only valid resource.',
    });
  }
}
