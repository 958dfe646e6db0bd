/**
 * GraphStore: reads over the knowledge graph and removal of one connection's contribution.
 * Storage is one item per (graph item, contributing connection); readers merge those into the
 * node or edge a user sees, with `sources` listing the contributing connections.
 */
import { GetCommand, QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import pLimit from 'p-limit';
import { queryAll, queryPages, type TableRef } from '#platform/dynamo.ts';
import { keys, nameKey } from '#platform/keys.ts';
import { batchWriteAll } from '#platform/batch.ts';
import { ValidationError } from '#platform/errors.ts';
import type { GraphEdge, GraphNode, Props } from './model.ts';
import { GraphWriter, type GraphWriterOptions } from './writer.ts';

type Item = Record<string, unknown>;

export interface Page<T> {
  items: T[];
  nextToken?: string;
}

export interface ListNodesQuery {
  type?: string;
  /** Case-insensitive name prefix. */
  prefix?: string;
  /** Only nodes this connection contributed. */
  source?: string;
  limit?: number;
  nextToken?: string;
}

export type EdgeDirection = 'out' | 'in' | 'both';

export interface TraverseQuery {
  from: string;
  direction?: EdgeDirection;
  edgeTypes?: string[];
  depth: number;
  limit?: number;
}

export interface ContributionRef {
  PK: string;
  SK: string;
  kind: 'node' | 'edge';
  type: string;
}

export interface GraphStats {
  nodes: Record<string, number>;
  edges: Record<string, number>;
}

const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;

function mergeNode(contributions: Item[]): GraphNode {
  const ordered = [...contributions].sort((a, b) => String(a.u).localeCompare(String(b.u)));
  const latest = ordered[ordered.length - 1]!;
  const props: Props = {};
  for (const contribution of ordered) Object.assign(props, contribution.props as Props);
  return {
    id: String(latest.id),
    type: String(latest.type),
    name: String(latest.name),
    props,
    sources: [...new Set(ordered.map((c) => String(c.c)))].sort(),
    updatedAt: String(latest.u),
  };
}

function mergeEdges(contributions: Item[]): GraphEdge[] {
  const groups = new Map<string, Item[]>();
  for (const item of contributions) {
    const id = `${item.from}\u0000${item.type}\u0000${item.to}`;
    const group = groups.get(id);
    if (group) group.push(item);
    else groups.set(id, [item]);
  }
  return [...groups.values()].map((group) => {
    const ordered = [...group].sort((a, b) => String(a.u).localeCompare(String(b.u)));
    const props: Props = {};
    for (const contribution of ordered) Object.assign(props, contribution.props as Props);
    const first = ordered[0]!;
    return {
      from: String(first.from),
      type: String(first.type),
      to: String(first.to),
      props,
      sources: [...new Set(ordered.map((c) => String(c.c)))].sort(),
    };
  });
}

/** Pagination tokens are opaque to clients; they are checked to belong to the same query. */
interface CursorState {
  /** Which partition the key belongs to (guards against a token from another query or tenant). */
  p: string;
  k?: Item;
  /** Index into a list of partitions (types, directions) walked one after another. */
  i?: number;
  /** Id of the last group returned, skipped if the next page starts with the rest of it. */
  last?: string;
}

function encodeToken(state: CursorState): string {
  return Buffer.from(JSON.stringify(state)).toString('base64url');
}

function decodeToken(token: string | undefined, partitionGuard: string): CursorState | undefined {
  if (!token) return undefined;
  try {
    const state = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as CursorState;
    if (state && typeof state === 'object' && state.p === partitionGuard) return state;
  } catch {
    // fall through to the error below
  }
  throw new ValidationError('nextToken is invalid for this query', [{ path: 'nextToken', message: 'not a token this query returned' }]);
}

export function clampLimit(limit: number | undefined, max = MAX_LIMIT): number {
  if (limit === undefined) return DEFAULT_LIMIT;
  return Math.max(1, Math.min(max, Math.floor(limit)));
}

export class GraphStore {
  readonly #table: TableRef;

  constructor(table: TableRef) {
    this.#table = table;
  }

  writer(tenantId: string, connectionId: string, options?: GraphWriterOptions): GraphWriter {
    return new GraphWriter(this.#table, tenantId, connectionId, options);
  }

  #queryAll(input: Omit<QueryCommandInput, 'TableName' | 'ExclusiveStartKey'>): Promise<Item[]> {
    return queryAll(this.#table, input);
  }

  async getNode(tenantId: string, nodeId: string): Promise<GraphNode | undefined> {
    const contributions = await this.#queryAll({
      KeyConditionExpression: 'PK = :pk AND begins_with(SK, :n)',
      ExpressionAttributeValues: { ':pk': keys.nodePartition(tenantId, nodeId), ':n': 'N#' },
    });
    return contributions.length > 0 ? mergeNode(contributions) : undefined;
  }

  /**
   * Nodes by type (optionally by name prefix), by contributing connection, or both. Without a
   * type, walks every type the tenant's graph has, one after another.
   */
  async listNodes(tenantId: string, query: ListNodesQuery): Promise<Page<GraphNode>> {
    const limit = clampLimit(query.limit);
    const types = query.type ? [query.type] : await this.nodeTypes(tenantId);
    const guard = `nodes:${tenantId}:${query.type ?? '*'}:${query.prefix ?? ''}:${query.source ?? ''}`;
    const state = decodeToken(query.nextToken, guard) ?? { p: guard, i: 0 };
    const nodes: GraphNode[] = [];
    let typeIndex = state.i ?? 0;
    let startKey = state.k;
    let skipId = state.last;

    while (typeIndex < types.length && nodes.length < limit) {
      const page = await this.#nodesOfTypePage(tenantId, types[typeIndex]!, query, limit - nodes.length, startKey, skipId);
      nodes.push(...page.nodes);
      if (page.resume) {
        startKey = page.resume.key;
        skipId = page.resume.lastId;
        break;
      }
      typeIndex++;
      startKey = undefined;
      skipId = undefined;
    }
    const more = typeIndex < types.length;
    const result: Page<GraphNode> = { items: nodes };
    if (more && nodes.length > 0) result.nextToken = encodeToken({ p: guard, i: typeIndex, ...(startKey ? { k: startKey } : {}), ...(skipId ? { last: skipId } : {}) });
    else if (more) result.nextToken = encodeToken({ p: guard, i: typeIndex });
    if (query.source) result.items = await this.#withAllSources(tenantId, result.items);
    return result;
  }

  /**
   * One type's nodes from the type index, grouping each node's contributions (which sit next to
   * each other in the index). Returns where to resume when `wanted` nodes were filled.
   */
  async #nodesOfTypePage(
    tenantId: string,
    type: string,
    query: ListNodesQuery,
    wanted: number,
    startKey: Item | undefined,
    skipId: string | undefined,
  ): Promise<{ nodes: GraphNode[]; resume?: { key: Item; lastId: string } }> {
    const groups: Item[][] = [];
    let lastKey: Item | undefined = startKey;
    let exhausted = false;
    while (groups.length <= wanted && !exhausted) {
      const values: Record<string, unknown> = { ':pk': keys.nodesOfType(tenantId, type).GSI2PK };
      let condition = 'GSI2PK = :pk';
      if (query.prefix) {
        condition += ' AND begins_with(GSI2SK, :prefix)';
        values[':prefix'] = nameKey(query.prefix);
      }
      if (query.source) values[':source'] = query.source;
      const page = await this.#table.client.send(
        new QueryCommand({
          TableName: this.#table.tableName,
          IndexName: 'GSI2',
          KeyConditionExpression: condition,
          ...(query.source ? { FilterExpression: 'c = :source' } : {}),
          ExpressionAttributeValues: values,
          Limit: Math.min(1000, (wanted + 1) * 2),
          ...(lastKey ? { ExclusiveStartKey: lastKey } : {}),
        }),
      );
      for (const item of page.Items ?? []) {
        if (skipId !== undefined && item.id === skipId) continue;
        skipId = undefined;
        const current = groups[groups.length - 1];
        if (current && current[0]!.id === item.id) current.push(item);
        else groups.push([item]);
      }
      lastKey = page.LastEvaluatedKey;
      exhausted = !lastKey;
    }
    if (groups.length <= wanted) return { nodes: groups.map(mergeNode) };
    // More than wanted: the group after the last kept one has started, so the kept ones are
    // complete. Resume right after the last item of the last kept group.
    const keep = groups.slice(0, wanted);
    const lastGroup = keep[keep.length - 1];
    if (!lastGroup) return { nodes: [] };
    const lastItem = lastGroup[lastGroup.length - 1]!;
    return {
      nodes: keep.map(mergeNode),
      resume: { key: { PK: lastItem.PK, SK: lastItem.SK, GSI2PK: lastItem.GSI2PK, GSI2SK: lastItem.GSI2SK }, lastId: String(lastItem.id) },
    };
  }

  async #withAllSources(tenantId: string, nodes: GraphNode[]): Promise<GraphNode[]> {
    const limit = pLimit(8);
    const full = await Promise.all(nodes.map((node) => limit(() => this.getNode(tenantId, node.id))));
    return full.filter((node): node is GraphNode => node !== undefined);
  }

  /** Out-edges (stored under the node) and in-edges (GSI1), optionally of one type. */
  async edges(tenantId: string, nodeId: string, options: { direction?: EdgeDirection; type?: string } = {}): Promise<GraphEdge[]> {
    const direction = options.direction ?? 'out';
    const prefix = options.type ? `E#${options.type}#` : 'E#';
    const partition = keys.nodePartition(tenantId, nodeId);
    const reads: Promise<Item[]>[] = [];
    if (direction === 'out' || direction === 'both') {
      reads.push(
        this.#queryAll({
          KeyConditionExpression: 'PK = :pk AND begins_with(SK, :prefix)',
          ExpressionAttributeValues: { ':pk': partition, ':prefix': prefix },
        }),
      );
    }
    if (direction === 'in' || direction === 'both') {
      reads.push(
        this.#queryAll({
          IndexName: 'GSI1',
          KeyConditionExpression: 'GSI1PK = :pk AND begins_with(GSI1SK, :prefix)',
          ExpressionAttributeValues: { ':pk': partition, ':prefix': prefix },
        }),
      );
    }
    const contributions = (await Promise.all(reads)).flat();
    // An edge type's prefix may also match a longer type name (E#CALLS# vs E#CALLS_X#) only if it
    // ended without '#'; the trailing '#' above prevents that. Keep only exact types anyway.
    return mergeEdges(options.type ? contributions.filter((item) => item.type === options.type) : contributions);
  }

  /** Breadth-first walk from one node, `depth` hops (1-4), at most `limit` nodes. */
  async traverse(tenantId: string, query: TraverseQuery): Promise<{ nodes: GraphNode[]; edges: GraphEdge[]; truncated: boolean }> {
    const depth = Math.max(1, Math.min(4, Math.floor(query.depth)));
    const maxNodes = clampLimit(query.limit ?? 200, 1000);
    const direction = query.direction ?? 'out';
    const edgeTypes = query.edgeTypes && query.edgeTypes.length > 0 ? new Set(query.edgeTypes) : undefined;
    const visited = new Set<string>([query.from]);
    const edges = new Map<string, GraphEdge>();
    let frontier = [query.from];
    let truncated = false;
    const limit = pLimit(8);

    for (let hop = 0; hop < depth && frontier.length > 0 && !truncated; hop++) {
      const found = await Promise.all(frontier.map((id) => limit(() => this.edges(tenantId, id, { direction }))));
      const next: string[] = [];
      for (const edge of found.flat()) {
        if (edgeTypes && !edgeTypes.has(edge.type)) continue;
        for (const neighbour of [edge.from, edge.to]) {
          if (visited.has(neighbour)) continue;
          if (visited.size >= maxNodes) {
            truncated = true;
            continue;
          }
          visited.add(neighbour);
          next.push(neighbour);
        }
        if (visited.has(edge.from) && visited.has(edge.to)) edges.set(`${edge.from}\u0000${edge.type}\u0000${edge.to}`, edge);
      }
      frontier = next;
    }
    const nodes = await Promise.all([...visited].map((id) => limit(() => this.getNode(tenantId, id))));
    return { nodes: nodes.filter((node): node is GraphNode => node !== undefined), edges: [...edges.values()], truncated };
  }

  /** Every item one connection contributed, a page at a time (for disconnect and the stale sweep). */
  async *contributions(tenantId: string, connectionId: string, pageSize = 1000): AsyncGenerator<ContributionRef[]> {
    const pages = queryPages(this.#table, {
      IndexName: 'GSI3',
      KeyConditionExpression: 'GSI3PK = :pk',
      ExpressionAttributeValues: { ':pk': keys.contributionsOf(tenantId, connectionId).GSI3PK },
      ProjectionExpression: 'PK, SK, GSI3PK, GSI3SK, kind, #type',
      ExpressionAttributeNames: { '#type': 'type' },
      Limit: pageSize,
    });
    for await (const page of pages) {
      const refs = page.map((item) => ({
        PK: String(item.PK),
        SK: String(item.SK),
        kind: item.kind === 'edge' ? ('edge' as const) : ('node' as const),
        type: String(item.type),
      }));
      if (refs.length > 0) yield refs;
    }
  }

  /** Deletes contribution items (nodes and edges stay while another connection still contributes them). */
  async deleteContributions(refs: readonly ContributionRef[]): Promise<void> {
    await batchWriteAll(
      this.#table,
      refs.map((ref) => ({ DeleteRequest: { Key: { PK: ref.PK, SK: ref.SK } } })),
    );
  }

  /** Removes everything one connection contributed; returns how many nodes and edges it had. */
  async removeContribution(
    tenantId: string,
    connectionId: string,
    onProgress?: (removed: number) => void | Promise<void>,
  ): Promise<{ nodes: number; edges: number }> {
    const removed = { nodes: 0, edges: 0 };
    for await (const refs of this.contributions(tenantId, connectionId)) {
      await this.deleteContributions(refs);
      for (const ref of refs) removed[ref.kind === 'node' ? 'nodes' : 'edges']++;
      await onProgress?.(removed.nodes + removed.edges);
    }
    return removed;
  }

  /** How many nodes and edges one connection contributes. */
  async connectionStats(tenantId: string, connectionId: string): Promise<{ nodes: number; edges: number }> {
    // Keys only (projection of the GSI3 sort key): reads stay small and every page is counted.
    const count = async (prefix: string) => {
      let total = 0;
      const pages = queryPages(this.#table, {
        IndexName: 'GSI3',
        KeyConditionExpression: 'GSI3PK = :pk AND begins_with(GSI3SK, :prefix)',
        ExpressionAttributeValues: { ':pk': keys.contributionsOf(tenantId, connectionId).GSI3PK, ':prefix': prefix },
        ProjectionExpression: 'GSI3SK',
      });
      for await (const page of pages) total += page.length;
      return total;
    };
    const [nodes, edges] = await Promise.all([count('N#'), count('E#')]);
    return { nodes, edges };
  }

  async nodeTypes(tenantId: string): Promise<string[]> {
    return (await this.#types(tenantId)).node;
  }

  async #types(tenantId: string): Promise<{ node: string[]; edge: string[] }> {
    const { Item } = await this.#table.client.send(new GetCommand({ TableName: this.#table.tableName, Key: keys.graphTypes(tenantId) }));
    const sorted = (value: unknown) => [...((value as Set<string> | undefined) ?? [])].sort();
    return { node: sorted(Item?.nodeTypes), edge: sorted(Item?.edgeTypes) };
  }

  /**
   * Distinct nodes and edges per type. Counts walk the type index (a node contributed by two
   * connections counts once); types with nothing left are left out.
   */
  async stats(tenantId: string): Promise<GraphStats> {
    const types = await this.#types(tenantId);
    const limit = pLimit(4);
    const countDistinct = async (partition: string) => {
      const items = await this.#queryAll({
        IndexName: 'GSI2',
        KeyConditionExpression: 'GSI2PK = :pk',
        ExpressionAttributeValues: { ':pk': partition },
        ProjectionExpression: 'GSI2SK',
      });
      // GSI2SK ends with '#<connectionId>'; without it, one key per distinct node or edge.
      return new Set(items.map((item) => String(item.GSI2SK).replace(/#[^#]*$/, ''))).size;
    };
    const nodeCounts = await Promise.all(types.node.map((type) => limit(async () => [type, await countDistinct(keys.nodesOfType(tenantId, type).GSI2PK)] as const)));
    const edgeCounts = await Promise.all(types.edge.map((type) => limit(async () => [type, await countDistinct(keys.edgesOfType(tenantId, type).GSI2PK)] as const)));
    return {
      nodes: Object.fromEntries(nodeCounts.filter(([, n]) => n > 0)),
      edges: Object.fromEntries(edgeCounts.filter(([, n]) => n > 0)),
    };
  }
}
