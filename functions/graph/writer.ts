/**
 * GraphWriter: how a sync puts what it saw into the graph. Each connection writes only its own
 * contribution items (one per graph item it saw), so two connections never race on one item and
 * no transaction is needed. Writes are buffered, deduplicated, compared with what is stored by
 * content hash (an unchanged item costs a read, never a write) and sent in batches.
 */
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { TableRef } from '#platform/dynamo.ts';
import { keys } from '#platform/keys.ts';
import { batchGetAll, batchWriteAll, type WriteRequest } from '#platform/batch.ts';
import { prepareEdge, prepareNode, type GraphEdgeInput, type GraphNodeInput } from './model.ts';

export interface GraphWriterOptions {
  /** Items buffered before a flush; a flush costs one BatchGet per 100 items and one BatchWrite per 25 changed ones. */
  flushAt?: number;
  concurrency?: number;
  /**
   * Flushes that may run while the caller keeps adding items: the connector fetches and hashes
   * the next items while DynamoDB stores the previous ones. Upserts wait when this many run.
   */
  maxFlushesInFlight?: number;
  now?: () => Date;
}

export interface GraphWriteStats {
  nodesUpserted: number;
  edgesUpserted: number;
  nodesUnchanged: number;
  edgesUnchanged: number;
  readRequests: number;
  writeRequests: number;
}

interface PendingItem {
  key: { PK: string; SK: string };
  kind: 'node' | 'edge';
  type: string;
  hash: string;
  build: (updatedAt: string) => Record<string, unknown>;
}

const keyString = (key: { PK: string; SK: string }) => `${key.PK}\u0000${key.SK}`;

export class GraphWriter {
  readonly tenantId: string;
  readonly connectionId: string;
  readonly stats: GraphWriteStats = { nodesUpserted: 0, edgesUpserted: 0, nodesUnchanged: 0, edgesUnchanged: 0, readRequests: 0, writeRequests: 0 };
  /** Contribution keys this writer saw (written or unchanged): what a full pass still has, for the sweep. */
  readonly seen = new Set<string>();

  readonly #table: TableRef;
  readonly #flushAt: number;
  readonly #concurrency: number;
  readonly #now: () => Date;
  #pending = new Map<string, PendingItem>();
  /** Flushes running in the background while the caller keeps producing items. */
  readonly #inFlight = new Set<Promise<void>>();
  readonly #maxInFlight: number;
  #failure: unknown;
  #knownTypes: { node: Set<string>; edge: Set<string> } | undefined;

  constructor(table: TableRef, tenantId: string, connectionId: string, options: GraphWriterOptions = {}) {
    this.#table = table;
    this.tenantId = tenantId;
    this.connectionId = connectionId;
    this.#flushAt = options.flushAt ?? 500;
    this.#concurrency = options.concurrency ?? 8;
    this.#maxInFlight = options.maxFlushesInFlight ?? 2;
    this.#now = options.now ?? (() => new Date());
  }

  /** Validates at once (a bad item throws here, before anything of it is written), writes on the next flush. */
  async upsertNode(node: GraphNodeInput): Promise<void> {
    const { hash, props } = prepareNode(node);
    const { tenantId, connectionId } = this;
    const key = keys.nodeContribution(tenantId, node.id, connectionId);
    this.#enqueue({
      key,
      kind: 'node',
      type: node.type,
      hash,
      build: (updatedAt) => ({
        ...key,
        ...keys.nodeContributionIndexes(tenantId, node.id, node.type, node.name, connectionId),
        kind: 'node',
        id: node.id,
        type: node.type,
        name: node.name,
        props,
        h: hash,
        c: connectionId,
        u: updatedAt,
      }),
    });
    await this.#maybeFlush();
  }

  async upsertEdge(edge: GraphEdgeInput): Promise<void> {
    const { hash, props } = prepareEdge(edge);
    const { tenantId, connectionId } = this;
    const key = keys.edgeContribution(tenantId, edge.from, edge.type, edge.to, connectionId);
    this.#enqueue({
      key,
      kind: 'edge',
      type: edge.type,
      hash,
      build: (updatedAt) => ({
        ...key,
        ...keys.edgeContributionIndexes(tenantId, edge.from, edge.type, edge.to, connectionId, keys.edgeHash(edge.from, edge.type, edge.to)),
        kind: 'edge',
        from: edge.from,
        type: edge.type,
        to: edge.to,
        props,
        h: hash,
        c: connectionId,
        u: updatedAt,
      }),
    });
    await this.#maybeFlush();
  }

  async #maybeFlush(): Promise<void> {
    this.#throwIfFailed();
    if (this.#pending.size < this.#flushAt) return;
    this.#startFlush();
    while (this.#inFlight.size >= this.#maxInFlight) await Promise.race(this.#inFlight);
    this.#throwIfFailed();
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }

  #startFlush(): void {
    if (this.#pending.size === 0) return;
    const batch = [...this.#pending.values()];
    this.#pending = new Map();
    const flushing: Promise<void> = this.#write(batch)
      .catch((error: unknown) => {
        this.#failure ??= error;
      })
      .finally(() => this.#inFlight.delete(flushing));
    this.#inFlight.add(flushing);
  }

  #enqueue(item: PendingItem): void {
    const id = keyString(item.key);
    // Re-enqueueing the same item before a flush keeps the last version: one write, not two.
    this.#pending.delete(id);
    this.#pending.set(id, item);
  }

  /**
   * Writes everything buffered and waits for every flush in flight. Call before the end of a
   * slice; throws the first write failure (nothing after a failure counts as written).
   */
  async flush(): Promise<void> {
    this.#startFlush();
    while (this.#inFlight.size > 0) await Promise.all(this.#inFlight);
    this.#throwIfFailed();
  }

  async #write(batch: PendingItem[]): Promise<void> {
    const onRequest = (kind: 'read' | 'write') => {
      if (kind === 'read') this.stats.readRequests++;
      else this.stats.writeRequests++;
    };

    const stored = await batchGetAll(this.#table, batch.map((item) => item.key), 'PK, SK, h', { concurrency: this.#concurrency, onRequest });
    const storedHash = new Map(stored.map((item) => [keyString(item as { PK: string; SK: string }), item.h]));

    const updatedAt = this.#now().toISOString();
    const writes: WriteRequest[] = [];
    const newTypes = { node: new Set<string>(), edge: new Set<string>() };
    for (const item of batch) {
      const id = keyString(item.key);
      this.seen.add(id);
      if (storedHash.get(id) === item.hash) {
        if (item.kind === 'node') this.stats.nodesUnchanged++;
        else this.stats.edgesUnchanged++;
        continue;
      }
      if (!storedHash.has(id)) newTypes[item.kind].add(item.type);
      writes.push({ PutRequest: { Item: item.build(updatedAt) } });
      if (item.kind === 'node') this.stats.nodesUpserted++;
      else this.stats.edgesUpserted++;
    }
    await this.#registerTypes(newTypes);
    await batchWriteAll(this.#table, writes, { concurrency: this.#concurrency, onRequest });
  }

  /** Keeps the tenant's list of node and edge types (what stats counts over) up to date; reads it once per writer. */
  async #registerTypes(candidates: { node: Set<string>; edge: Set<string> }): Promise<void> {
    if (candidates.node.size === 0 && candidates.edge.size === 0) return;
    if (!this.#knownTypes) {
      this.stats.readRequests++;
      const { Item } = await this.#table.client.send(new GetCommand({ TableName: this.#table.tableName, Key: keys.graphTypes(this.tenantId) }));
      this.#knownTypes = { node: new Set(Item?.nodeTypes ?? []), edge: new Set(Item?.edgeTypes ?? []) };
    }
    const known = this.#knownTypes;
    const missingNodes = [...candidates.node].filter((type) => !known.node.has(type));
    const missingEdges = [...candidates.edge].filter((type) => !known.edge.has(type));
    if (missingNodes.length === 0 && missingEdges.length === 0) return;
    const adds: string[] = [];
    const values: Record<string, Set<string>> = {};
    if (missingNodes.length > 0) {
      adds.push('nodeTypes :nodeTypes');
      values[':nodeTypes'] = new Set(missingNodes);
    }
    if (missingEdges.length > 0) {
      adds.push('edgeTypes :edgeTypes');
      values[':edgeTypes'] = new Set(missingEdges);
    }
    this.stats.writeRequests++;
    await this.#table.client.send(
      new UpdateCommand({
        TableName: this.#table.tableName,
        Key: keys.graphTypes(this.tenantId),
        UpdateExpression: `ADD ${adds.join(', ')}`,
        ExpressionAttributeValues: values,
      }),
    );
    for (const type of missingNodes) known.node.add(type);
    for (const type of missingEdges) known.edge.add(type);
  }
}
