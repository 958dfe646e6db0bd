/**
 * The connector contract. Each integration is one folder under functions/connectors/<type>/
 * exporting one `Connector`, registered in registry.ts. Connectors never touch DynamoDB, Secrets
 * Manager or the HTTP layer: the context hands them what they need, so each one is testable
 * against a fake upstream alone.
 */
import type { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import type { z } from 'zod';
import type { GraphEdgeInput, GraphNodeInput } from '#graph/model.ts';
import type { SyncMode, SyncProgress } from '#platform/sync-runs.ts';
import type { SecretValue } from '#platform/secret-store.ts';

export type AuthKind = 'oauth' | 'api-key' | 'iam-role' | 'api';

/** The structured logger connectors get (Powertools' Logger, or a child of it carrying the run's ids). */
export type Logger = Pick<PowertoolsLogger, 'debug' | 'info' | 'warn' | 'error'>;

/** fetch, through the outbound-safety guard (https only in the cloud, no private addresses, bounded time). */
export type OutboundFetch = (url: string | URL, init?: RequestInit & { timeoutMs?: number }) => Promise<Response>;

export interface VerifyContext<Config, Credentials> {
  tenantId: string;
  /** The tenant's ExternalId for AWS AssumeRole trust policies (confused-deputy defence). */
  externalId: string;
  config: Config;
  credentials: Credentials;
  fetch: OutboundFetch;
  logger: Logger;
}

export interface VerifyCheck {
  name: string;
  ok: boolean;
  detail: string;
}

/** What a live check found: its checks in order, and facts worth keeping on the connection (found data sources…). */
export interface VerifyResult {
  ok: boolean;
  checks: VerifyCheck[];
  /** Non-secret facts to store on the connection's config, e.g. `{ datasources: [...] }`. */
  discovered?: Record<string, unknown>;
}

export interface GraphSink {
  upsertNode(node: GraphNodeInput): Promise<void>;
  upsertEdge(edge: GraphEdgeInput): Promise<void>;
}

export interface SyncStateAccess {
  get(scope: string): Promise<Record<string, unknown> | undefined>;
  put(scope: string, value: Record<string, unknown>): Promise<void>;
}

export interface SyncContext<Config, Credentials> extends VerifyContext<Config, Credentials> {
  connectionId: string;
  /**
   * The part of the connection this slice works on: one of what `partitions()` listed (e.g. a
   * repository's full name), or `'*'` for a connector without partitions.
   */
  partition: string;
  syncId: string;
  mode: SyncMode;
  graph: GraphSink;
  state: SyncStateAccess;
  /** Reports progress; cheap to call often (writes are throttled by the runner). */
  progress(progress: SyncProgress): Promise<void>;
  /** A kind of item whose fetch failed this pass: its stale items are not swept. */
  markIncomplete(kind: string, reason: string): void;
  /** Something the user should see on the sync run that did not fail it. */
  warn(message: string): void;
  /** Counts an upstream request against the run's stats. */
  countRequest(): void;
  /**
   * Counts requests that the provider charged against its rate limit (`stats.rateLimitedRequests`),
   * for connectors that can tell: GitHub does not charge a 304 to a conditional request, so its
   * sync counts every other answer here. Optional: runners without it do not track the figure.
   */
  countRateLimited?(count?: number): void;
  /** Milliseconds left before this slice must return its cursor (the Lambda timeout minus a margin). */
  remainingMs(): number;
  /** Saves rotated credentials (refreshed OAuth tokens) back to the secret store. */
  saveCredentials(credentials: SecretValue): Promise<void>;
  /**
   * OAuth connections: the stored credentials with an access token valid for the rest of the
   * slice, refreshed first (under the connection's refresh lease) when it would expire sooner.
   * `ctx.credentials` is that at the slice's start; call this when the upstream refuses the token
   * (401: another process may have rotated it) with the refused one as `rejectedAccessToken`: the
   * stored token is read again, and refreshed if it is still the refused one.
   */
  freshCredentials?(options?: { rejectedAccessToken?: string }): Promise<Credentials>;
  now(): Date;
}

/** A slice's answer: keep going with `cursor` (after `waitSeconds`), or done. Cursors stay small (ids, page tokens). */
export interface SyncResult {
  done: boolean;
  cursor?: string;
  waitSeconds?: number;
}

export interface Connector<Config = Record<string, unknown>, Credentials = Record<string, unknown>> {
  type: string;
  title: string;
  auth: AuthKind;
  /** What a connection gives the product, as the guide lists it. */
  provides: string[];
  configSchema: z.ZodType<Config>;
  credentialsSchema: z.ZodType<Credentials>;
  verify(ctx: VerifyContext<Config, Credentials>): Promise<VerifyResult>;
  /** Setup material rendered for one tenant, shown by GET /v1/integrations/{type} (AWS EKS: IAM and trust policies). */
  setup?(tenant: { tenantId: string; externalId: string }): Record<string, unknown>;
  /**
   * Splits one connection's pass into independent partitions (GitHub/GitLab: one per repository)
   * that the state machine syncs in parallel (a Distributed Map), each with its own cursor loop,
   * before one finalize. Called once at the start of a pass with `ctx.partition === '*'`.
   * Without it the connection syncs as the single partition `'*'`.
   */
  partitions?(ctx: SyncContext<Config, Credentials>): Promise<string[]>;
  sync?(ctx: SyncContext<Config, Credentials>, cursor: string | undefined): Promise<SyncResult>;
  /**
   * Files the sync reads at run time rather than imports (esbuild cannot bundle them: the code
   * analysis' tree-sitter .wasm files), copied next to this integration's sync Lambda bundle:
   * `from` relative to the project root, `to` relative to the bundle.
   */
  bundleFiles?: readonly { from: string; to: string }[];
}
