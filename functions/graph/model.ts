/**
 * The knowledge-graph vocabulary (see docs/graph.md): what a node and an edge are, how they are
 * validated before anything is written, and the content hash that lets a re-sync skip unchanged
 * items.
 */
import { createHash } from 'node:crypto';
import { stringify } from 'safe-stable-stringify';
import { z } from 'zod';
import { ValidationError } from '#platform/errors.ts';

/**
 * Props stay small: a node or edge is a pointer into the upstream, not a copy of it. Items over
 * the budget are rejected, never truncated, so a connector bug shows up in its tests.
 */
export const PROPS_BUDGET_BYTES = 4096;
/** Ids are part of DynamoDB keys (sort keys max 1,024 bytes, with tenant and type around them). */
export const MAX_ID_BYTES = 512;

/**
 * An id within MAX_ID_BYTES: short ids as they are; a longer one (a deep path, a long branch name)
 * keeps a readable prefix, cut on a character boundary, and ends in a hash of the whole id, so it
 * stays stable and distinct.
 */
export function boundedId(id: string): string {
  if (Buffer.byteLength(id) <= MAX_ID_BYTES) return id;
  const hash = createHash('sha256').update(id).digest('base64url').slice(0, 22);
  let prefix = id.slice(0, MAX_ID_BYTES - 64);
  while (Buffer.byteLength(prefix) > MAX_ID_BYTES - 64) prefix = prefix.slice(0, -1);
  return `${prefix}~${hash}`;
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type Props = Record<string, JsonValue>;

export interface GraphNodeInput {
  id: string;
  type: string;
  name: string;
  props?: Props;
}

export interface GraphEdgeInput {
  from: string;
  type: string;
  to: string;
  props?: Props;
}

/** A node as readers see it: merged over every connection that contributed it. */
export interface GraphNode {
  id: string;
  type: string;
  name: string;
  props: Props;
  sources: string[];
  updatedAt: string;
}

export interface GraphEdge {
  from: string;
  type: string;
  to: string;
  props: Props;
  sources: string[];
}

const idSchema = z
  .string()
  .min(1)
  .refine((value) => Buffer.byteLength(value) <= MAX_ID_BYTES, `must be at most ${MAX_ID_BYTES} bytes`)
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  .refine((value) => !/[\u0000-\u001f]/.test(value), 'must not contain control characters');

export const nodeTypeSchema = z.string().regex(/^[a-z][a-z0-9_]{0,39}$/, 'node types are lower_snake_case');
export const edgeTypeSchema = z.string().regex(/^[A-Z][A-Z0-9_]{0,39}$/, 'edge types are UPPER_SNAKE_CASE');
const propsSchema = z.record(z.string(), z.json()).optional();

const nodeSchema = z.object({ id: idSchema, type: nodeTypeSchema, name: z.string().min(1).max(512), props: propsSchema });
const edgeSchema = z.object({ from: idSchema, type: edgeTypeSchema, to: idSchema, props: propsSchema });

export interface PreparedItem {
  /** Canonical JSON of what the item says; its hash decides whether a write is needed. */
  hash: string;
  props: Props;
}

function prepare(label: string, props: Props | undefined, hashed: unknown[]): PreparedItem {
  const canonicalProps = props ?? {};
  const propsJson = stringify(canonicalProps) ?? '{}';
  const size = Buffer.byteLength(propsJson);
  if (size > PROPS_BUDGET_BYTES) {
    throw new ValidationError(`${label}: props are ${size} bytes, over the ${PROPS_BUDGET_BYTES}-byte budget`, [
      { path: 'props', message: `${size} bytes > ${PROPS_BUDGET_BYTES}` },
    ]);
  }
  const hash = createHash('sha256').update(stringify([...hashed, canonicalProps]) ?? '').digest('base64url').slice(0, 22);
  return { hash, props: canonicalProps };
}

function check<T>(schema: z.ZodType<T>, value: unknown, label: string): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new ValidationError(
      `${label} is invalid`,
      result.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })),
    );
  }
  return result.data;
}

export function prepareNode(node: GraphNodeInput): PreparedItem {
  check(nodeSchema, node, `node ${String(node?.id)}`);
  return prepare(`node ${node.id}`, node.props, [node.type, node.name]);
}

export function prepareEdge(edge: GraphEdgeInput): PreparedItem {
  check(edgeSchema, edge, `edge ${String(edge?.from)} -${String(edge?.type)}-> ${String(edge?.to)}`);
  return prepare(`edge ${edge.from} -${edge.type}-> ${edge.to}`, edge.props, []);
}
