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
  afterSlice: 'AfterSlice',
  waitBeforeNextSlice: 'WaitBeforeNextSlice',
  finalize: 'Finalize',
  recordFailure: 'RecordFailure',
  failureNotRecorded: 'FailureNotRecorded',
  // --- disconnect: the connection's graph contribution, state, secret and record go ---
  removeConnection: 'RemoveConnection',
  afterRemoval: 'AfterRemoval',
  waitForRunningSync: 'WaitForRunningSync',
  disconnected: 'Disconnected',
} as const;

const SLICE_PREFIX = 'SyncSlice-';

/** The Task state that runs one slice of `type`'s sync Lambda. */
export const sliceStateName = (type: string): string => `${SLICE_PREFIX}${type}`;

/** The integration type a slice state runs, or undefined for any other state. */
export const typeOfSliceState = (stateName: string): string | undefined =>
  stateName.startsWith(SLICE_PREFIX) ? stateName.slice(SLICE_PREFIX.length) : undefined;

/** Integration types become state names and construct ids: keep them to what both accept. */
export const INTEGRATION_TYPE_PATTERN = /^[a-z][a-z0-9-]{0,39}$/;
