/**
 * The state names of the sync state machine. lib/sync-orchestration.ts builds the definition with
 * them and local/state-machine-runner.ts maps each Task state to its local handler by them, so
 * the two cannot drift. Kept free of aws-cdk-lib so the local stack can read it cheaply.
 */
export const STATES = {
  /** Choice at the start: a disconnect request or a sync request. */
  route: 'Route',
  plan: 'Plan',
  syncEach: 'SyncEach',
  morePlanned: 'MorePlanned',
  allPlanned: 'AllPlanned',
  // --- inside the Map's item processor, one connection's run ---
  routeByType: 'RouteByType',
  unsupportedType: 'UnsupportedType',
  /** The Map over the run's partitions (one slice loop each). */
  syncPartitions: 'SyncPartitions',
  finalize: 'Finalize',
  recordFailure: 'RecordFailure',
  failureNotRecorded: 'FailureNotRecorded',
  // --- inside the partition Map's item processor, one partition's slice loop ---
  routeSliceByType: 'RouteSliceByType',
  unsupportedSliceType: 'UnsupportedSliceType',
  afterSlice: 'AfterSlice',
  waitBeforeNextSlice: 'WaitBeforeNextSlice',
  partitionDone: 'PartitionDone',
  recordPartitionFailure: 'RecordPartitionFailure',
  partitionFailureNotRecorded: 'PartitionFailureNotRecorded',
  // --- disconnect: the connection's graph contribution, state, secret and record go ---
  removeConnection: 'RemoveConnection',
  afterRemoval: 'AfterRemoval',
  waitForRunningSync: 'WaitForRunningSync',
  disconnected: 'Disconnected',
} as const;

const SLICE_PREFIX = 'SyncSlice-';
const PARTITIONS_PREFIX = 'ListPartitions-';

/** The Task state that runs one slice of `type`'s sync Lambda. */
export const sliceStateName = (type: string): string => `${SLICE_PREFIX}${type}`;

/** The Task state that lists the partitions of a `type` run (the same sync Lambda, `action: "list-partitions"`). */
export const partitionsStateName = (type: string): string => `${PARTITIONS_PREFIX}${type}`;

/** The integration type a slice state runs, or undefined for any other state. */
export const typeOfSliceState = (stateName: string): string | undefined =>
  stateName.startsWith(SLICE_PREFIX) ? stateName.slice(SLICE_PREFIX.length) : undefined;

/** The integration type a ListPartitions state serves, or undefined for any other state. */
export const typeOfPartitionsState = (stateName: string): string | undefined =>
  stateName.startsWith(PARTITIONS_PREFIX) ? stateName.slice(PARTITIONS_PREFIX.length) : undefined;

/** The static `action` the ListPartitions task sends its sync Lambda (slices send none). */
export const LIST_PARTITIONS_ACTION = 'list-partitions';

/** Integration types become state names and construct ids: keep them to what both accept. */
export const INTEGRATION_TYPE_PATTERN = /^[a-z][a-z0-9-]{0,39}$/;
