/**
 * Every item's keys, built in one place. The layout and the access pattern each key serves are
 * documented in docs/data-model.md; keep the two in step.
 *
 * Rule: every key starts with the tenant (`T#<tenantId>`). The one exception is the API-token
 * lookup, which is how a request finds its tenant in the first place; that item is keyed by the
 * SHA-256 of the token and holds nothing but the tenant id.
 */
import { createHash } from 'node:crypto';

/** How many leading characters of a node's name the type index holds for prefix search. */
export const NAME_KEY_CHARS = 100;
export const nameKey = (name: string) => name.toLowerCase().slice(0, NAME_KEY_CHARS);

const tenantRoot = (tenantId: string) => `T#${tenantId}`;

export const sha256Hex = (value: string) => createHash('sha256').update(value).digest('hex');

export const keys = {
  apiToken: (tokenHash: string) => ({ PK: `TOKEN#${tokenHash}`, SK: 'TOKEN' }),
  tenant: (tenantId: string) => ({ PK: tenantRoot(tenantId), SK: 'TENANT' }),

  connection: (tenantId: string, connectionId: string) => ({ PK: tenantRoot(tenantId), SK: `CONN#${connectionId}` }),
  connectionPrefix: (tenantId: string) => ({ PK: tenantRoot(tenantId), SKPrefix: 'CONN#' }),
  /** Sparse GSI2 entry present only while a connection is scheduled (not paused, not disconnecting). */
  connectionSchedule: (tenantId: string, connectionId: string, nextDueAt: string) => ({
    GSI2PK: 'SCHEDULE',
    GSI2SK: `${nextDueAt}#${tenantId}#${connectionId}`,
  }),

  syncRun: (tenantId: string, syncId: string) => ({ PK: tenantRoot(tenantId), SK: `SYNC#${syncId}` }),
  syncRunByConnection: (tenantId: string, connectionId: string, startedAt: string, syncId: string) => ({
    GSI1PK: `${tenantRoot(tenantId)}#CONN#${connectionId}#SYNCS`,
    GSI1SK: `${startedAt}#${syncId}`,
  }),
  syncRunsOfConnection: (tenantId: string, connectionId: string) => ({ GSI1PK: `${tenantRoot(tenantId)}#CONN#${connectionId}#SYNCS` }),
  /** Chunks of the item keys a sync pass saw, for the stale-item sweep at its end. */
  syncSeen: (tenantId: string, syncId: string, scope: string, seq: number) => ({
    PK: `${tenantRoot(tenantId)}#RUN#${syncId}`,
    SK: `SEEN#${scope}#${String(seq).padStart(6, '0')}`,
  }),
  syncSeenPartition: (tenantId: string, syncId: string) => ({ PK: `${tenantRoot(tenantId)}#RUN#${syncId}`, SKPrefix: 'SEEN#' }),

  /** Per-connection sync state (cursors, last SHAs, ETags), one item per scope (e.g. a repository). */
  syncState: (tenantId: string, connectionId: string, scope: string) => ({
    PK: `${tenantRoot(tenantId)}#CONN#${connectionId}`,
    SK: `STATE#${scope}`,
  }),
  syncStatePartition: (tenantId: string, connectionId: string) => ({ PK: `${tenantRoot(tenantId)}#CONN#${connectionId}`, SKPrefix: 'STATE#' }),

  /** OAuth state, keyed by the hash of its nonce so a leaked table dump cannot complete a flow. */
  oauthState: (tenantId: string, nonceHash: string) => ({ PK: tenantRoot(tenantId), SK: `OAUTH#${nonceHash}` }),
  lease: (tenantId: string, name: string) => ({ PK: tenantRoot(tenantId), SK: `LEASE#${name}` }),
  oauthInstance: (tenantId: string, provider: string, host: string) => ({ PK: tenantRoot(tenantId), SK: `OAUTHAPP#${provider}#${host}` }),

  // --- knowledge graph: one item per (graph item, contributing connection) -------------------
  nodePartition: (tenantId: string, nodeId: string) => `${tenantRoot(tenantId)}#N#${nodeId}`,
  edgeHash: (from: string, edgeType: string, to: string) =>
    createHash('sha256').update(`${from}\u0000${edgeType}\u0000${to}`).digest('base64url').slice(0, 22),
  nodeContribution: (tenantId: string, nodeId: string, connectionId: string) => ({
    PK: `${tenantRoot(tenantId)}#N#${nodeId}`,
    SK: `N#${connectionId}`,
  }),
  nodeContributionIndexes: (tenantId: string, nodeId: string, nodeType: string, name: string, connectionId: string) => ({
    GSI2PK: `${tenantRoot(tenantId)}#NT#${nodeType}`,
    // Name prefix search covers the first NAME_KEY_CHARS characters; the id keeps the key unique.
    GSI2SK: `${nameKey(name)}#${nodeId}#${connectionId}`,
    GSI3PK: `${tenantRoot(tenantId)}#SRC#${connectionId}`,
    GSI3SK: `N#${nodeId}`,
  }),
  nodesOfType: (tenantId: string, nodeType: string) => ({ GSI2PK: `${tenantRoot(tenantId)}#NT#${nodeType}` }),

  edgeContribution: (tenantId: string, from: string, edgeType: string, to: string, connectionId: string) => ({
    PK: `${tenantRoot(tenantId)}#N#${from}`,
    SK: `E#${edgeType}#${to}#${connectionId}`,
  }),
  /** `edgeHash` stands in for (from, type, to) where both ids together could exceed a key's 1,024 bytes. */
  edgeContributionIndexes: (tenantId: string, from: string, edgeType: string, to: string, connectionId: string, edgeHash: string) => ({
    GSI1PK: `${tenantRoot(tenantId)}#N#${to}`,
    GSI1SK: `E#${edgeType}#${from}#${connectionId}`,
    GSI2PK: `${tenantRoot(tenantId)}#ET#${edgeType}`,
    GSI2SK: `${edgeHash}#${connectionId}`,
    GSI3PK: `${tenantRoot(tenantId)}#SRC#${connectionId}`,
    GSI3SK: `E#${edgeHash}`,
  }),
  edgesOfType: (tenantId: string, edgeType: string) => ({ GSI2PK: `${tenantRoot(tenantId)}#ET#${edgeType}` }),
  contributionsOf: (tenantId: string, connectionId: string) => ({ GSI3PK: `${tenantRoot(tenantId)}#SRC#${connectionId}` }),
  /** Which node and edge types a tenant's graph has ever held: drives the stats counts. */
  graphTypes: (tenantId: string) => ({ PK: tenantRoot(tenantId), SK: 'GRAPHTYPES' }),
} as const;
