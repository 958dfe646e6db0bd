/**
 * The GitHub sync on a generated organization, driven through the synthesized state machine
 * (LocalStateMachineRunner: one partition per repository, 10 at a time, as deployed) against the
 * GitHub fake, with dynalite in its own process:
 * - a full sync: wall time, upstream requests (all, and those charged against the rate limit),
 *   DynamoDB write requests by kind of item, peak RSS;
 * - an immediate no-change re-sync (incremental, as the schedule would run it): requests that
 *   count against the rate limit (target ≤ 1 per repository) and DynamoDB writes (target: none
 *   but the sync-run record and its lease);
 * - and, for comparison, a no-change full pass (it must re-read everything to sweep).
 * Size: BENCH_GITHUB_REPOS × _FILES × _COMMITS × _ISSUES × _PULLS (default 100 × 300 × 200 × 50 × 20).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { ConnectionStore } from '#platform/connections.ts';
import { observeDynamoRequests } from '#platform/dynamo.ts';
import { newId } from '#platform/ids.ts';
import { configureRuntime } from '#platform/runtime.ts';
import type { SecretStore, SecretValue } from '#platform/secret-store.ts';
import { SyncRunStore, type SyncRun } from '#platform/sync-runs.ts';
import { TenantStore } from '#platform/tenants.ts';
import { configureSyncLauncher } from '#sync/launcher.ts';
import { configureSync } from '#sync/settings.ts';
import { requestSync } from '#sync/start-sync.ts';
import { STATES } from '#sync/state-machine-names.ts';
import { LocalStateMachineRunner, synthesizeDefinition } from '#local/state-machine-runner.ts';
import { startGitHubFake, DEFAULT_GITHUB_CLIENT_ID, DEFAULT_GITHUB_CLIENT_SECRET, type GitHubFakeStats } from '../test/fakes/github.ts';
import { createBenchTable, figure, peakRssMb, startDynaliteProcess } from './support.ts';

const size = (name: string, fallback: number) => Number(process.env[`BENCH_GITHUB_${name}`] ?? fallback);
const REPOS = size('REPOS', 100);
const FILES = size('FILES', 300);
const COMMITS = size('COMMITS', 200);
const ISSUES = size('ISSUES', 50);
const PULLS = size('PULLS', 20);
const TENANT = 'bench';

class BenchSecrets implements SecretStore {
  readonly #values = new Map<string, SecretValue>();
  async put(tenantId: string, name: string, value: SecretValue) {
    this.#values.set(`${tenantId}/${name}`, structuredClone(value));
  }
  async get(tenantId: string, name: string) {
    const value = this.#values.get(`${tenantId}/${name}`);
    return value ? structuredClone(value) : undefined;
  }
  async delete(tenantId: string, name: string) {
    this.#values.delete(`${tenantId}/${name}`);
  }
}

/** DynamoDB writes while `fn` runs, by request and by the kind of item written (from its sort key). */
async function countWrites<T>(fn: () => Promise<T>): Promise<{ result: T; requests: number; items: Record<string, number>; requestsByKind: Record<string, number> }> {
  const items: Record<string, number> = {};
  const requestsByKind: Record<string, number> = {};
  let requests = 0;
  const kindOf = (key: { PK?: unknown; SK?: unknown } | undefined) => {
    const sk = String(key?.SK ?? '');
    if (sk.startsWith('SYNC#')) return 'sync-run record';
    if (sk.startsWith('SEEN#')) return 'seen-set chunks';
    if (sk.startsWith('LEASE#')) return 'leases';
    if (sk.startsWith('STATE#')) return 'sync state';
    if (sk.startsWith('N#') || sk.startsWith('E#')) return 'graph items';
    if (sk.startsWith('CONN#')) return 'connection record';
    if (sk === 'GRAPHTYPES') return 'graph types';
    return 'other';
  };
  const stop = observeDynamoRequests((name, input) => {
    const request = input as { Item?: Record<string, unknown>; Key?: Record<string, unknown>; RequestItems?: Record<string, { PutRequest?: { Item: Record<string, unknown> }; DeleteRequest?: { Key: Record<string, unknown> } }[]> };
    const kinds: string[] = [];
    if (name === 'PutCommand' || name === 'PutItemCommand') kinds.push(kindOf(request.Item));
    else if (name === 'UpdateCommand' || name === 'UpdateItemCommand' || name === 'DeleteCommand' || name === 'DeleteItemCommand') kinds.push(kindOf(request.Key));
    else if (name === 'BatchWriteCommand' || name === 'BatchWriteItemCommand') {
      for (const writes of Object.values(request.RequestItems ?? {})) for (const write of writes) kinds.push(kindOf(write.PutRequest?.Item ?? write.DeleteRequest?.Key));
    } else return;
    requests++;
    for (const kind of kinds) items[kind] = (items[kind] ?? 0) + 1;
    const first = kinds[0] ?? 'other';
    requestsByKind[first] = (requestsByKind[first] ?? 0) + 1;
  });
  try {
    return { result: await fn(), requests, items, requestsByKind };
  } finally {
    stop();
  }
}

const delta = (after: GitHubFakeStats, before: GitHubFakeStats) =>
  Object.fromEntries(Object.entries(after).map(([name, value]) => [name, value - before[name as keyof GitHubFakeStats]])) as unknown as GitHubFakeStats;

export async function benchGitHubSync(): Promise<void> {
  const dynalite = await startDynaliteProcess();
  const github = await startGitHubFake();
  const previousEnv = { ...process.env };
  try {
    Object.assign(process.env, {
      GITHUB_URL: github.url,
      GITHUB_API_URL: github.url,
      GITHUB_CLIENT_ID: DEFAULT_GITHUB_CLIENT_ID,
      GITHUB_CLIENT_SECRET: DEFAULT_GITHUB_CLIENT_SECRET,
      OPENTRACE_ALLOW_PRIVATE_NETWORKS: 'true',
      POWERTOOLS_LOG_LEVEL: 'ERROR',
      POWERTOOLS_METRICS_DISABLED: 'true',
    });
    const generatedAt = Date.now();
    const repositories = github.generate({ repos: REPOS, files: FILES, commits: COMMITS, issues: ISSUES, pulls: PULLS, seed: 42 });
    figure('github: generated organization (repos × files × commits × issues × PRs)', `${REPOS} × ${FILES} × ${COMMITS} × ${ISSUES} × ${PULLS} in ${((Date.now() - generatedAt) / 1000).toFixed(1)} s`);

    const table = await createBenchTable(dynalite.endpoint, 'bench-github');
    configureRuntime({ table, secrets: new BenchSecrets(), now: () => new Date() });
    configureSync({ logger: new Logger({ serviceName: 'bench', logLevel: 'SILENT' }) });
    const runner = new LocalStateMachineRunner({
      definition: await synthesizeDefinition({ integrationTypes: ['github'] }),
      waitTimeOverrides: { [STATES.waitBeforeNextSlice]: 0, [STATES.waitForRunningSync]: 0 },
    });
    configureSyncLauncher(runner);
    await new TenantStore(table).ensureTenant(TENANT);
    const now = new Date().toISOString();
    const connectionId = newId('conn', Date.now());
    const { runtime } = await import('#platform/runtime.ts');
    await runtime().secrets.put(TENANT, `${connectionId}-v1`, await github.issueToken());
    await new ConnectionStore(table).create({
      id: connectionId,
      tenantId: TENANT,
      type: 'github',
      name: 'GitHub acme',
      status: 'connected',
      paused: false,
      config: { installationId: 4242, repositories },
      secretName: `${connectionId}-v1`,
      createdAt: now,
      updatedAt: now,
    });

    const pass = async (label: string, mode: 'full' | 'incremental') => {
      const fakeBefore = { ...github.stats };
      const started = Date.now();
      const { result: run, requests, items, requestsByKind } = await countWrites(async () => {
        const queued = await requestSync({ tenantId: TENANT, connectionId, mode });
        await runner.idle();
        return (await new SyncRunStore(table).get(TENANT, queued.id)) as SyncRun;
      });
      const seconds = (Date.now() - started) / 1000;
      const upstream = delta(github.stats, fakeBefore);
      if (run.status !== 'succeeded') throw new Error(`${label}: the sync ${run.status}: ${run.error?.message ?? ''}`);
      figure(`github ${label}: wall time`, seconds, 's');
      figure(`github ${label}: upstream requests (all / charged to the rate limit / 304)`, `${upstream.rest} / ${upstream.charged} / ${upstream.notModified} (+ ${upstream.downloads} archive downloads)`);
      figure(`github ${label}: charged requests per repository`, upstream.charged / REPOS);
      figure(`github ${label}: run stats requests / rateLimitedRequests`, `${run.stats.requests} / ${run.stats.rateLimitedRequests ?? '-'}`);
      figure(`github ${label}: graph items upserted (nodes + edges)`, `${run.stats.nodesUpserted} + ${run.stats.edgesUpserted}`);
      figure(`github ${label}: graph items deleted (sweep)`, `${run.stats.nodesDeleted} + ${run.stats.edgesDeleted ?? 0}`);
      figure(`github ${label}: DynamoDB write requests`, requests);
      for (const [kind, count] of Object.entries(requestsByKind).sort(([, a], [, b]) => b - a)) {
        figure(`github ${label}:   write requests for ${kind}`, `${count} (${items[kind]} items)`);
      }
      figure(`github ${label}: warnings on the run`, run.warnings?.length ?? 0);
      return { run, seconds, upstream, requests, items };
    };

    await pass('full sync', 'full');
    figure('github full sync: peak RSS (this process: sync, fake and its generated org)', Math.round(peakRssMb()), 'MB');
    await pass('no-change re-sync (incremental)', 'incremental');
    await pass('no-change full pass', 'full');
    figure('github: peak RSS after all passes', Math.round(peakRssMb()), 'MB');
    await runner.close();
    configureSyncLauncher(undefined);
  } finally {
    for (const name of Object.keys(process.env)) if (!(name in previousEnv)) delete process.env[name];
    Object.assign(process.env, previousEnv);
    await github.close();
    await dynalite.stop();
  }
}
