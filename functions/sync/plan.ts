/**
 * The Plan task: which connections this execution syncs. It takes each one's lease, creates its
 * queued SyncRun, and hands the Map a small list of ids. Input (console, schedule or API):
 * - `{}`: every connection due (the sparse schedule index, GSI2PK = "SCHEDULE", due time first);
 * - `{ "tenantId" }`: every connection of that tenant;
 * - `{ "connectionIds": ["<tenantId>/conn_…"] }`, or `conn_…` ids with `"tenantId"`;
 * - `{ "preplanned": [...] }` (the API): runs already opened, handed on as they are.
 * Plus optional `mode`, `trigger`, `forceSweep`. Paused and disconnecting connections are
 * skipped, and so are connections whose sync is running. At most `planMaxItems` per round; when
 * more remain the output carries `next` and the state machine plans again after the Map.
 */
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { ConnectionStore, type Connection } from '#platform/connections.ts';
import { runtime, type Runtime } from '#platform/runtime.ts';
import { SyncRunStore, type SyncTrigger } from '#platform/sync-runs.ts';
import { ValidationError } from '#platform/errors.ts';
import { openRun } from './open-run.ts';
import { parseTaskInput, planInputSchema, type PlanInput, type PlanOutput, type PlannedItem } from './payloads.ts';
import { decideMode } from './schedule.ts';
import { syncSettings, type SyncSettings } from './settings.ts';
import { renewSyncLease } from './sync-lease.ts';

const MAX_SKIPPED_REPORTED = 50;

type Continuation = { due: Record<string, unknown> } | { tenant: string };

const encode = (value: Continuation) => Buffer.from(JSON.stringify(value)).toString('base64url');
function decode(token: string | undefined): Continuation | undefined {
  if (!token) return undefined;
  try {
    return JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Continuation;
  } catch {
    throw new ValidationError('plan.next is not a continuation this plan returned');
  }
}

class Planner {
  readonly items: PlannedItem[] = [];
  readonly skipped: PlanOutput['skipped'] = [];
  readonly #rt: Runtime;
  readonly #settings: SyncSettings;
  readonly #input: PlanInput;
  readonly #trigger: SyncTrigger;

  constructor(rt: Runtime, settings: SyncSettings, input: PlanInput) {
    this.#rt = rt;
    this.#settings = settings;
    this.#input = input;
    this.#trigger = input.trigger ?? 'console';
  }

  get full(): boolean {
    return this.items.length >= this.#settings.planMaxItems;
  }

  skip(connectionId: string, reason: string): void {
    if (this.skipped.length < MAX_SKIPPED_REPORTED) this.skipped.push({ connectionId, reason });
  }

  /** Plans one connection unless it must be skipped. `dueBy`: only if due by then (schedule scans). */
  async consider(connection: Connection | undefined, connectionId: string, dueBy?: string): Promise<void> {
    if (!connection) return this.skip(connectionId, 'not found');
    if (connection.status === 'disconnecting') return this.skip(connectionId, 'disconnecting');
    if (connection.paused) return this.skip(connectionId, 'paused');
    const syncable = this.#settings.syncableTypes;
    if (syncable && !syncable.includes(connection.type)) return this.skip(connectionId, `no sync for integration type ${connection.type}`);
    // The index is eventually consistent: the record itself decides whether the connection is due.
    if (dueBy !== undefined && (!connection.nextSyncAt || connection.nextSyncAt > dueBy)) return this.skip(connectionId, 'not due');
    const mode = this.#input.mode ?? decideMode(connection, this.#settings.fullSyncEvery);
    const opened = await openRun(this.#rt, connection, { mode, trigger: this.#trigger, leaseMs: this.#settings.leaseMs });
    if (!opened.opened) return this.skip(connectionId, `a sync is running${opened.holder ? ` (${opened.holder})` : ''}`);
    this.items.push(this.#item(connection, opened.run.id, mode));
  }

  #item(connection: Connection, syncId: string, mode: PlannedItem['mode']): PlannedItem {
    return {
      tenantId: connection.tenantId,
      connectionId: connection.id,
      syncId,
      type: connection.type,
      mode,
      forceSweep: this.#input.forceSweep ?? false,
      cursor: null,
      slice: 0,
    };
  }

  /** Hands on runs the API opened (POST …/sync), after checking each is still queued and holds its lease. */
  async preplanned(entries: NonNullable<PlanInput['preplanned']>): Promise<void> {
    const runs = new SyncRunStore(this.#rt.table);
    const connections = new ConnectionStore(this.#rt.table);
    for (const entry of entries) {
      const run = await runs.get(entry.tenantId, entry.syncId);
      if (!run || run.connectionId !== entry.connectionId || run.status !== 'queued') {
        this.skip(entry.connectionId, `run ${entry.syncId} is ${run ? run.status : 'missing'}`);
        continue;
      }
      const connection = await connections.get(entry.tenantId, entry.connectionId, true);
      if (!connection || !(await renewSyncLease(this.#rt, entry.tenantId, entry.connectionId, entry.syncId, this.#settings.leaseMs))) {
        await runs.update(entry.tenantId, entry.syncId, {
          status: 'failed',
          finishedAt: this.#rt.now().toISOString(),
          error: connection
            ? { code: 'lease-lost', message: 'Another sync of this connection took over before this one started.' }
            : { code: 'connection-removed', message: 'The connection was removed before the sync started.' },
        });
        this.skip(entry.connectionId, connection ? 'lease lost' : 'not found');
        continue;
      }
      this.items.push(this.#item(connection, run.id, run.mode));
    }
  }

  async named(ids: string[]): Promise<void> {
    const connections = new ConnectionStore(this.#rt.table);
    if (ids.length > this.#settings.planMaxItems) {
      throw new ValidationError(`connectionIds: at most ${this.#settings.planMaxItems} per execution; start several executions or use {"tenantId"}`);
    }
    for (const raw of ids) {
      const slash = raw.indexOf('/');
      const tenantId = slash === -1 ? this.#input.tenantId : raw.slice(0, slash);
      const connectionId = slash === -1 ? raw : raw.slice(slash + 1);
      if (!tenantId) throw new ValidationError(`connectionIds: "${raw}" needs a tenant: give "tenantId" too, or write it as "<tenantId>/${raw}"`);
      if (!/^conn_[0-9a-z]+$/.test(connectionId)) throw new ValidationError(`connectionIds: "${raw}" is not a connection id (conn_…)`);
      await this.consider(await connections.get(tenantId, connectionId, true), connectionId);
    }
  }

  /** Every connection of one tenant, a page at a time; returns a continuation when the round is full. */
  async tenant(tenantId: string, token: string | undefined): Promise<string | undefined> {
    const connections = new ConnectionStore(this.#rt.table);
    let nextToken = token;
    do {
      const page = await connections.list(tenantId, { limit: this.#settings.planMaxItems - this.items.length, ...(nextToken ? { nextToken } : {}) });
      for (const listed of page.items) await this.consider(await connections.get(tenantId, listed.id, true), listed.id);
      nextToken = page.nextToken;
    } while (nextToken && !this.full);
    return nextToken ? encode({ tenant: nextToken }) : undefined;
  }

  /** Every connection due by now (plus the slack), in due order; returns a continuation when the round is full. */
  async due(startKey: Record<string, unknown> | undefined): Promise<string | undefined> {
    const table = this.#rt.table;
    const connections = new ConnectionStore(table);
    const dueBy = new Date(this.#rt.now().getTime() + this.#settings.dueSlackMs).toISOString();
    let exclusiveStartKey = startKey;
    for (;;) {
      const page = await table.client.send(
        new QueryCommand({
          TableName: table.tableName,
          IndexName: 'GSI2',
          KeyConditionExpression: 'GSI2PK = :pk AND GSI2SK <= :upper',
          ExpressionAttributeValues: { ':pk': 'SCHEDULE', ':upper': `${dueBy}#\uffff` },
          ProjectionExpression: 'PK, SK, GSI2PK, GSI2SK, tenantId, id',
          Limit: 100,
          ...(exclusiveStartKey ? { ExclusiveStartKey: exclusiveStartKey } : {}),
        }),
      );
      for (const entry of page.Items ?? []) {
        if (this.full) return encode({ due: exclusiveStartKey ?? {} });
        await this.consider(await connections.get(String(entry.tenantId), String(entry.id), true), String(entry.id), dueBy);
        exclusiveStartKey = { PK: entry.PK, SK: entry.SK, GSI2PK: entry.GSI2PK, GSI2SK: entry.GSI2SK };
      }
      if (!page.LastEvaluatedKey) return undefined;
      if (this.full) return encode({ due: exclusiveStartKey ?? page.LastEvaluatedKey });
      exclusiveStartKey = page.LastEvaluatedKey;
    }
  }
}

export async function planSyncs(rawInput: unknown, rt: Runtime = runtime(), settings: SyncSettings = syncSettings()): Promise<PlanOutput> {
  const input = parseTaskInput(planInputSchema, rawInput ?? {}, 'Plan');
  const planner = new Planner(rt, settings, input);
  const continuation = decode(input.plan?.next);
  const laterRound = input.plan !== undefined;
  let next: string | undefined;

  if (input.preplanned && !laterRound) await planner.preplanned(input.preplanned);
  if (input.connectionIds && !laterRound) await planner.named(input.connectionIds);
  if (!input.preplanned && !input.connectionIds) {
    if (input.tenantId) {
      if (!laterRound || (continuation && 'tenant' in continuation)) {
        next = await planner.tenant(input.tenantId, continuation && 'tenant' in continuation ? continuation.tenant : undefined);
      }
    } else if (!laterRound || (continuation && 'due' in continuation)) {
      const startKey = continuation && 'due' in continuation && Object.keys(continuation.due).length > 0 ? continuation.due : undefined;
      next = await planner.due(startKey);
    }
  }
  settings.logger.info('sync plan', { planned: planner.items.length, skipped: planner.skipped.length, more: next !== undefined });
  return { items: planner.items, ...(next ? { next } : {}), skipped: planner.skipped };
}
