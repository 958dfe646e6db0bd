/**
 * The GitLab sync under test, without the state machine: the connector's partitions() and
 * sync() driven directly, slice after slice, over a real GraphWriter on a dynalite table, a
 * real OAuthTokenManager (configureRuntime with an in-memory secret store), in-memory sync state,
 * the outbound-safety fetch, and the GitLab fake. A pass answers what it cost: requests, graph
 * reads and writes, state writes, the keys its writers saw (what a full pass's sweep keeps), the
 * waits it handed back and the short sleeps it took.
 *
 * `connectGitLabViaOAuth(api)` is the real way in: the OAuth round trip through the hosted API
 * (test/support/api.ts), as a user would connect.
 */
import { afterAll, afterEach, beforeAll, expect } from '@jest/globals';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { stringify } from 'safe-stable-stringify';
import type { SyncContext, SyncResult } from '#connectors/types.ts';
import { GraphStore } from '#graph/store.ts';
import type { GraphEdge, GraphNode } from '#graph/model.ts';
import { ConnectionStore, type Connection } from '#platform/connections.ts';
import type { TableRef } from '#platform/dynamo.ts';
import { keys } from '#platform/keys.ts';
import { safeFetch } from '#platform/outbound.ts';
import { configureRuntime, runtime } from '#platform/runtime.ts';
import type { SyncMode } from '#platform/sync-runs.ts';
import { TenantStore } from '#platform/tenants.ts';
import { GitLabIds } from '../../functions/connectors/gitlab/ids.ts';
import { createGitLabSync, type GitLabSyncOptions } from '../../functions/connectors/gitlab/sync.ts';
import type { GitLabConfig } from '../../functions/connectors/gitlab/index.ts';
import { credentialsFromTokens, type OAuthCredentials } from '../../functions/oauth/credentials.ts';
import { OAuthTokenManager } from '../../functions/oauth/tokens.ts';
import { s256 } from '../fakes/oauth-fake.ts';
import { DEFAULT_GITLAB_CLIENT_ID, DEFAULT_GITLAB_CLIENT_SECRET, generateGitLabGroup, startGitLabFake, type GitLabFake, type GitLabFakeOptions } from '../fakes/gitlab.ts';
import type { TestApi } from '../support/api.ts';
import { createTestTable } from '../support/dynamo.ts';
import { MemorySecretStore, rememberSecret } from '../support/secrets.ts';
import { returnParams, roundTrip, setEnv } from '../oauth/support.ts';

export const silentLogger = new Logger({ serviceName: 'gitlab-sync-test', logLevel: 'SILENT' });

/** A clock that moves only when the test (or a handed-back wait) says so. */
export class TestClock {
  #ms: number;
  constructor(start = Date.now()) {
    this.#ms = start;
  }
  now = (): Date => new Date(this.#ms);
  ms = (): number => this.#ms;
  advance(ms: number): void {
    this.#ms += ms;
  }
}

export interface PassOptions {
  /** Requests a slice may send before its deadline comes (remainingMs() drops to 0): forces cursors. */
  requestsPerSlice?: number;
  /** What remainingMs() answers (default 600,000 ms): a budget below the sync's step minimum, as the API tests' 5 s slices. */
  budgetMs?: number;
  /** Safety net against a sync that never finishes. */
  maxSlices?: number;
  /** Run the partitions one after another instead of in parallel. */
  sequential?: boolean;
  /** No fan-out: one partition `'*'` (what the orchestration does for a connector it does not partition). */
  unpartitioned?: boolean;
}

export interface PassReport {
  mode: SyncMode;
  partitions: string[];
  slices: number;
  /** waitSeconds the sync handed back (the state machine would wait; the clock moves on instead). */
  waits: number[];
  /** Upstream requests through ctx.fetch (the run's stats.requests), partitions() included. */
  requests: number;
  graphWrites: number;
  graphReads: number;
  nodesUpserted: number;
  edgesUpserted: number;
  stateWrites: number;
  /** Requests the connector said count against the provider's rate limit (ctx.countRateLimited). */
  rateLimited: number;
  /** Contribution keys the writers saw (what a full pass's sweep keeps). */
  seen: Set<string>;
  warnings: string[];
  incomplete: Record<string, string>;
}

export interface GitLabSyncHarness {
  table: TableRef;
  secrets: MemorySecretStore;
  clock: TestClock;
  graph: GraphStore;
  fake: GitLabFake;
  tenantId: string;
  connection: Connection;
  /** Short waits the sync slept (ms), in order. */
  sleeps: number[];
  /** Sync state by scope (`project:<path>`). */
  state: Map<string, Record<string, unknown>>;
  pass(mode: SyncMode, options?: PassOptions): Promise<PassReport>;
  node(id: string): Promise<GraphNode | undefined>;
  /** Ids of the nodes `id` points to with `type`. */
  out(id: string, type: string): Promise<string[]>;
  /** Ids of the nodes pointing at `id` with `type`. */
  into(id: string, type: string): Promise<string[]>;
  /** Whether a pass's writers saw the node (a full pass that did not see it sweeps it). */
  sawNode(report: PassReport, id: string): boolean;
  sawEdge(report: PassReport, from: string, type: string, to: string): boolean;
  close(): Promise<void>;
}

export interface HarnessOptions {
  fake?: GitLabFakeOptions;
  /** Use a running fake (the self-hosted test brings its own). */
  existingFake?: GitLabFake;
  config?: Partial<GitLabConfig>;
  sync?: GitLabSyncOptions;
  tenantId?: string;
  /** Reuse a table and secret store (an API's); default: fresh ones. */
  table?: TableRef;
  secrets?: MemorySecretStore;
  /** An existing connection (connected through the API); default: one created here with tokens from the fake. */
  connectionId?: string;
  clock?: TestClock;
  /** Give the connector `ctx.freshCredentials`, as the slice does (default true); false: it uses OAuthTokenManager itself. */
  contextTokens?: boolean;
}

/** Tokens from the fake's authorization server, as a code exchange with PKCE would get them. */
export async function fakeTokens(fake: GitLabFake, clientId = DEFAULT_GITLAB_CLIENT_ID, clientSecret = DEFAULT_GITLAB_CLIENT_SECRET): Promise<{ accessToken: string; refreshToken?: string; expiresInSeconds?: number }> {
  const verifier = 'v'.repeat(43);
  const redirect = 'https://api.opentrace.test/v1/oauth/gitlab/callback';
  const authorize = fake.oauth.authorize(new URLSearchParams({ client_id: clientId, redirect_uri: redirect, code_challenge: s256(verifier), code_challenge_method: 'S256', scope: 'read_api' }), 'jdoe');
  if (!authorize.ok) throw new Error(authorize.description);
  const code = new URL(authorize.location).searchParams.get('code')!;
  const outcome = await fake.oauth.token(new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirect, code_verifier: verifier, client_id: clientId, client_secret: clientSecret }), undefined);
  if (!outcome.ok) throw new Error(outcome.description);
  return { accessToken: outcome.accessToken, ...(outcome.refreshToken ? { refreshToken: outcome.refreshToken } : {}), ...(outcome.expiresIn !== undefined ? { expiresInSeconds: outcome.expiresIn } : {}) };
}

let fileTable: Promise<TableRef> | undefined;
let harnesses = 0;

/** One table per test file, ACTIVE before its first write (harnesses keep apart by tenant). */
async function sharedTable(): Promise<TableRef> {
  fileTable ??= (async () => {
    const table = await createTestTable();
    for (;;) {
      const { Table } = await table.client.send(new DescribeTableCommand({ TableName: table.tableName }));
      if (Table?.TableStatus === 'ACTIVE') return table;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  })();
  return fileTable;
}

export async function startGitLabSyncHarness(options: HarnessOptions = {}): Promise<GitLabSyncHarness> {
  const clock = options.clock ?? new TestClock();
  const fake = options.existingFake ?? (await startGitLabFake({ now: clock.ms, ...options.fake }));
  const table = options.table ?? (await sharedTable());
  const secrets = options.secrets ?? new MemorySecretStore();
  configureRuntime({ table, secrets, now: clock.now });
  // Each harness its own tenant (its own graph) unless told.
  const tenantId = options.tenantId ?? (options.table ? 'acme' : `gitlab-sync-${++harnesses}`);
  await new TenantStore(table).ensureTenant(tenantId);
  const connections = new ConnectionStore(table);
  const graph = new GraphStore(table);
  const sleeps: number[] = [];
  const connector = createGitLabSync({ sleep: async (ms) => void sleeps.push(ms), ...options.sync });

  let connection: Connection;
  if (options.connectionId) {
    const found = await connections.get(tenantId, options.connectionId, true);
    if (!found) throw new Error(`no connection ${options.connectionId}`);
    connection = found;
    if (options.config) connection = (await connections.update(tenantId, connection.id, (current) => ({ ...current, config: { ...current.config, ...options.config } })))!;
  } else {
    const id = `conn_gitlab${Math.random().toString(36).slice(2, 10)}`;
    const credentials: OAuthCredentials = credentialsFromTokens({ ...(await fakeTokens(fake)), raw: {} }, clock.now());
    rememberSecret(credentials);
    await secrets.put(tenantId, `${id}-v1`, credentials);
    const now = clock.now().toISOString();
    connection = await connections.create({
      id,
      tenantId,
      type: 'gitlab',
      name: 'GitLab jdoe',
      status: 'connected',
      paused: false,
      config: { baseUrl: fake.baseUrl, ...options.config },
      secretName: `${id}-v1`,
      createdAt: now,
      updatedAt: now,
    });
  }

  const state = new Map<string, Record<string, unknown>>();
  let passes = 0;

  const contributionKey = (key: { PK: string; SK: string }) => `${key.PK}\u0000${key.SK}`;

  async function pass(mode: SyncMode, passOptions: PassOptions = {}): Promise<PassReport> {
    const syncId = `sync_${++passes}`;
    const current = (await connections.get(tenantId, connection.id, true))!;
    const config = current.config as unknown as GitLabConfig;
    const report: PassReport = { mode, partitions: [], slices: 0, waits: [], requests: 0, graphWrites: 0, graphReads: 0, nodesUpserted: 0, edgesUpserted: 0, stateWrites: 0, rateLimited: 0, seen: new Set(), warnings: [], incomplete: {} };

    const context = (partition: string, writer: ReturnType<GraphStore['writer']>, sliceRequests: { count: number }): SyncContext<GitLabConfig, OAuthCredentials> => ({
      tenantId,
      externalId: '',
      connectionId: connection.id,
      partition,
      syncId,
      mode,
      config,
      // The slice's copy, possibly stale: the connector must go through the token manager.
      credentials: { accessToken: 'stale-token-not-to-be-used' },
      logger: silentLogger,
      fetch: (url, init) => {
        report.requests++;
        sliceRequests.count++;
        return safeFetch(url, init);
      },
      graph: { upsertNode: (node) => writer.upsertNode(node), upsertEdge: (edge) => writer.upsertEdge(edge) },
      state: {
        get: async (scope) => structuredClone(state.get(scope)),
        put: async (scope, value) => {
          if (stringify(state.get(scope) ?? null) === stringify(value)) return;
          state.set(scope, structuredClone(value));
          report.stateWrites++;
        },
      },
      progress: async () => undefined,
      markIncomplete: (kind, reason) => {
        report.incomplete[kind] ??= reason;
      },
      warn: (message) => {
        if (!report.warnings.includes(message)) report.warnings.push(message);
      },
      countRequest: () => {
        report.requests++;
      },
      countRateLimited: (count = 1) => {
        report.rateLimited += count;
      },
      remainingMs: () => (passOptions.requestsPerSlice !== undefined && sliceRequests.count >= passOptions.requestsPerSlice ? 0 : (passOptions.budgetMs ?? 600_000)),
      saveCredentials: async () => {
        throw new Error('the GitLab sync must store tokens through OAuthTokenManager, not ctx.saveCredentials');
      },
      // As the slice does (functions/sync/slice.ts): OAuthTokenManager, valid for the rest of the slice,
      // re-read (and refreshed if it is still the refused one) after a 401. Off: the connector's own fallback.
      ...(options.contextTokens === false
        ? {}
        : {
            freshCredentials: async (request: { rejectedAccessToken?: string } = {}) => {
              const manager = new OAuthTokenManager(runtime());
              const ref = { tenantId, id: connection.id };
              const again = await manager.freshCredentials(ref, { minValidityMs: 20 * 60_000 });
              if (request.rejectedAccessToken === undefined || again.accessToken !== request.rejectedAccessToken) return again;
              return manager.freshCredentials(ref, { minValidityMs: 365 * 86_400_000 });
            },
          }),
      now: clock.now,
    });

    const slice = async (partition: string, cursor: string | undefined): Promise<SyncResult> => {
      const writer = graph.writer(tenantId, connection.id, { now: clock.now });
      const result = await connector.sync(context(partition, writer, { count: 0 }), cursor);
      await writer.flush();
      for (const key of writer.seen) report.seen.add(key);
      report.graphWrites += writer.stats.writeRequests;
      report.graphReads += writer.stats.readRequests;
      report.nodesUpserted += writer.stats.nodesUpserted;
      report.edgesUpserted += writer.stats.edgesUpserted;
      report.slices++;
      return result;
    };

    const runPartition = async (partition: string) => {
      let cursor: string | undefined;
      for (let n = 0; ; n++) {
        if (n >= (passOptions.maxSlices ?? 500)) throw new Error(`partition ${partition} did not finish in ${n} slices`);
        const result = await slice(partition, cursor);
        if (result.done) return;
        expect(typeof result.cursor).toBe('string');
        expect(Buffer.byteLength(result.cursor!)).toBeLessThanOrEqual(8 * 1024);
        if (result.waitSeconds) {
          report.waits.push(result.waitSeconds);
          clock.advance(result.waitSeconds * 1000);
        }
        cursor = result.cursor;
      }
    };

    const listing = graph.writer(tenantId, connection.id, { now: clock.now });
    report.partitions = passOptions.unpartitioned ? ['*'] : await connector.partitions(context('*', listing, { count: 0 }));
    if (passOptions.sequential) for (const partition of report.partitions) await runPartition(partition);
    else await Promise.all(report.partitions.map((partition) => runPartition(partition)));
    return report;
  }

  return {
    table,
    secrets,
    clock,
    graph,
    fake,
    tenantId,
    get connection() {
      return connection;
    },
    sleeps,
    state,
    pass,
    node: (id) => graph.getNode(tenantId, id),
    out: async (id, type) => (await graph.edges(tenantId, id, { direction: 'out', type })).map((edge: GraphEdge) => edge.to).sort(),
    into: async (id, type) => (await graph.edges(tenantId, id, { direction: 'in', type })).map((edge: GraphEdge) => edge.from).sort(),
    sawNode: (report, id) => report.seen.has(contributionKey(keys.nodeContribution(tenantId, id, connection.id))),
    sawEdge: (report, from, type, to) => report.seen.has(contributionKey(keys.edgeContribution(tenantId, from, type, to, connection.id))),
    close: async () => {
      if (!options.existingFake) await fake.close();
    },
  };
}

/**
 * Connects GitLab the way a user does, through the hosted API: POST /v1/integrations/gitlab/authorize,
 * the browser at GitLab's authorize page (the fake approves), the callback, back to the return URL.
 * For a self-managed instance, pass its `baseUrl` and OAuth application: it is registered first
 * (PUT /v1/integrations/gitlab/instances). The process environment must point GitLab.com at a fake
 * and allow loopback URLs: `gitlabOAuthEnv(fake)` does that.
 */
export async function connectGitLabViaOAuth(
  api: TestApi,
  options: { tenantId?: string; baseUrl?: string; clientId?: string; clientSecret?: string; projects?: string[] } = {},
): Promise<{ connectionId: string; apiToken: string; connection: Record<string, unknown> }> {
  const apiToken = await api.tokenFor(options.tenantId ?? 'acme');
  if (options.baseUrl && options.clientId && options.clientSecret) {
    rememberSecret(options.clientSecret);
    const registered = await api.call('PUT', '/v1/integrations/gitlab/instances', { token: apiToken, body: { baseUrl: options.baseUrl, clientId: options.clientId, clientSecret: options.clientSecret } });
    expect(registered.status).toBe(200);
  }
  const { callback } = await roundTrip(api, apiToken, 'gitlab', { returnUrl: 'https://app.opentrace.test/integrations/done', ...(options.baseUrl ? { baseUrl: options.baseUrl } : {}) });
  const { status, connectionId } = returnParams(callback);
  expect(status).toBe('connected');
  if (options.projects) {
    const patched = await api.call('PATCH', `/v1/connections/${connectionId}`, { token: apiToken, body: { config: { projects: options.projects } } });
    expect(patched.status).toBe(200);
  }
  const connection = await api.call('GET', `/v1/connections/${connectionId}`, { token: apiToken });
  expect(connection.status).toBe(200);
  return { connectionId: connectionId!, apiToken, connection: connection.body as Record<string, unknown> };
}

/** The environment connectGitLabViaOAuth needs (GitLab.com = `fake`, loopback allowed, the return origin); answers a restore function. */
export function gitlabOAuthEnv(fake: GitLabFake): () => void {
  rememberSecret(DEFAULT_GITLAB_CLIENT_SECRET);
  return setEnv({
    OPENTRACE_ALLOW_PRIVATE_NETWORKS: 'true',
    OPENTRACE_ALLOWED_RETURN_ORIGINS: 'https://app.opentrace.test,http://localhost:3000',
    OPENTRACE_API_URL: undefined,
    GITLAB_URL: fake.url,
    GITLAB_CLIENT_ID: DEFAULT_GITLAB_CLIENT_ID,
    GITLAB_CLIENT_SECRET: DEFAULT_GITLAB_CLIENT_SECRET,
  });
}

/**
 * One generated project (210 files, 160 commits, 130 issues) on a fake shared by a test file, with
 * the file's hooks: the fake starts once, its knobs and throttles are reset after every test, and
 * every harness is a fresh tenant (its own graph) with a connection on that project.
 */
export function sharedProjectFake(project: string) {
  let restoreEnv: () => void;
  let clock: TestClock;
  let fake: GitLabFake;
  beforeAll(async () => {
    clock = new TestClock();
    fake = await startGitLabFake({ now: clock.ms, model: generateGitLabGroup({ seed: 7, projects: 1, subgroup: false, files: 210, commits: 160, issues: 130, mergeRequests: 4, pipelines: 3 }) });
    restoreEnv = setEnv({ OPENTRACE_ALLOW_PRIVATE_NETWORKS: 'true', GITLAB_URL: fake.url, GITLAB_CLIENT_ID: DEFAULT_GITLAB_CLIENT_ID, GITLAB_CLIENT_SECRET: DEFAULT_GITLAB_CLIENT_SECRET });
  });
  afterAll(async () => {
    await fake.close();
    restoreEnv();
  });
  afterEach(() => {
    fake.set({ treeKeyset: true, rateLimit: undefined });
    fake.clearThrottles();
  });
  const ids = () => new GitLabIds(fake.baseUrl, project);
  const headTree = () => {
    const repo = fake.project(project).repository!;
    return repo.commits.get(repo.branches.get('main')!)!.tree;
  };
  return {
    fake: () => fake,
    clock: () => clock,
    ids,
    headTree,
    harness: (config: Record<string, unknown> = {}) => startGitLabSyncHarness({ existingFake: fake, clock, config: { projects: [project], ...config } }),
    /** The head's files that have a node in the harness' graph. */
    fileNodes: async (h: GitLabSyncHarness) => {
      const found: string[] = [];
      for (const path of headTree().keys()) if (await h.node(ids().file(path))) found.push(path);
      return found;
    },
  };
}
