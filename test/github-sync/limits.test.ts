/**
 * The GitHub sync at GitHub's limits, through the synthesized state machine: a truncated tree
 * listing still yields every file, a secondary rate limit mid-sync is waited out (in-process when
 * short, by the state machine's Wait state when long), a spent primary limit hands its wait to the
 * state machine, and a no-change pass costs no rate-limited request.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { requestSync } from '#sync/start-sync.ts';
import { STATES, sliceStateName } from '#sync/state-machine-names.ts';
import { startGitHubFake, type GitHubFake } from '../fakes/github.ts';
import { configureSync } from '#sync/settings.ts';
import { createSyncHarness, type SyncHarness } from '../support/sync-harness.ts';
import { githubConnection, githubEnv, nodeIdsOfType } from './support.ts';

let github: GitHubFake;
let h: SyncHarness;
let restoreEnv: () => void;
const sliceAnswers: { partition: string; waitSeconds: number; done: boolean }[] = [];
let afterSlice: ((answer: { waitSeconds: number }) => void) | undefined;

beforeAll(async () => {
  github = await startGitHubFake();
  restoreEnv = githubEnv(github);
  h = await createSyncHarness({
    integrationTypes: ['github'],
    connectors: [],
    runner: {
      handlerOverrides: {
        [sliceStateName('github')]: async (input, next) => {
          const answer = (await next(input)) as { partition: string; waitSeconds: number; done: boolean };
          sliceAnswers.push({ partition: answer.partition, waitSeconds: answer.waitSeconds, done: answer.done });
          afterSlice?.(answer);
          return answer;
        },
      },
    },
  });
});
afterAll(async () => {
  await h.close();
  await github.close();
  restoreEnv();
});

async function sync(connectionId: string, mode: 'full' | 'incremental' = 'full') {
  h.clock.advance(1000);
  sliceAnswers.length = 0;
  const run = await requestSync({ tenantId: h.tenantId, connectionId, mode });
  await h.runner.idle();
  return h.run(run.id);
}

describe('GitHub sync at the limits', () => {
  it('walks sub-trees when the recursive tree listing is truncated, so every file and directory arrives', async () => {
    const [monorepo] = github.generate({ repos: ['acme/monorepo'], files: 45, commits: 3, issues: 0, pulls: 0, seed: 3 });
    const fake = github.repo(monorepo!);
    const expected = fake.listTree(fake.commits.get(fake.branches.get('main')!)!.treeSha);
    github.set({ treeTruncateAt: 8 });
    try {
      const connection = await githubConnection(h, github, [monorepo!]);
      const before = github.requests.length;
      const run = await sync(connection.id);
      expect(run.error).toBeUndefined();
      expect(run).toMatchObject({ status: 'succeeded' });
      expect(run.warnings ?? []).toEqual([]);
      const files = await nodeIdsOfType(h, connection.id, 'file');
      const dirs = await nodeIdsOfType(h, connection.id, 'directory');
      expect(files.sort()).toEqual(expected.filter((e) => e.type === 'blob').map((e) => `github:file:acme/monorepo/${e.path}`).sort());
      expect(dirs.sort()).toEqual(expected.filter((e) => e.type === 'tree').map((e) => `github:directory:acme/monorepo/${e.path}`).sort());
      expect(files.length).toBeGreaterThan(8 * 3);
      // The walk: the root level non-recursively, then each sub-tree (again when that one is truncated too).
      const treeRequests = github.requests.slice(before).filter((r) => r.path.includes('/git/trees/'));
      expect(treeRequests.some((r) => !r.query.has('recursive'))).toBe(true);
      expect(treeRequests.length).toBeGreaterThan(3);
      // Each file sits in its directory.
      const edges = await h.graph.edges(h.tenantId, 'github:directory:acme/monorepo/src/mod-1', { direction: 'out', type: 'CONTAINS' });
      expect(edges.map((e) => e.to).sort()).toEqual(expected.filter((e) => /^src\/mod-1\/[^/]+$/.test(e.path)).map((e) => `github:file:acme/monorepo/${e.path}`).sort());
    } finally {
      github.set({ treeTruncateAt: undefined });
    }
  });

  it('waits out a short secondary rate limit in-process and completes', async () => {
    const [repo] = github.generate({ repos: ['acme/throttled'], files: 10, commits: 6, issues: 3, pulls: 2, seed: 5 });
    const connection = await githubConnection(h, github, [repo!]);
    github.set({ secondaryRateLimit: { afterRequests: github.stats.rest + 4, retryAfterSeconds: 1 } });
    try {
      const started = Date.now();
      const run = await sync(connection.id);
      expect(run.status).toBe('succeeded');
      expect(github.stats.secondaryLimited).toBe(1);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
      // One slice: the wait happened inside it.
      expect(sliceAnswers).toEqual([{ partition: repo, waitSeconds: 0, done: true }]);
      expect(await nodeIdsOfType(h, connection.id, 'commit')).toHaveLength(6);
      expect(await nodeIdsOfType(h, connection.id, 'pull_request')).toHaveLength(2);
    } finally {
      github.set({ secondaryRateLimit: undefined });
    }
  });

  it('hands a long secondary-limit wait to the state machine\'s Wait state, then resumes where it stopped', async () => {
    const [repo] = github.generate({ repos: ['acme/patient'], files: 10, commits: 6, issues: 3, pulls: 2, seed: 6 });
    const connection = await githubConnection(h, github, [repo!]);
    github.set({ secondaryRateLimit: { afterRequests: github.stats.rest + 3, retryAfterSeconds: 600 } });
    try {
      const run = await sync(connection.id);
      expect(run.status).toBe('succeeded');
      expect(sliceAnswers[0]).toEqual({ partition: repo, waitSeconds: 600, done: false });
      expect(sliceAnswers.at(-1)).toMatchObject({ done: true });
      expect(github.stats.secondaryLimited).toBe(2);
      expect(await nodeIdsOfType(h, connection.id, 'issue')).toHaveLength(3);
      expect(await nodeIdsOfType(h, connection.id, 'commit')).toHaveLength(6);
    } finally {
      github.set({ secondaryRateLimit: undefined });
    }
  });

  it('a spent primary rate limit waits until its reset in the Wait state', async () => {
    const [repo] = github.generate({ repos: ['acme/spent'], files: 6, commits: 3, issues: 1, pulls: 1, seed: 8 });
    const connection = await githubConnection(h, github, [repo!]);
    github.set({ rateLimitRemaining: 0 });
    // The reset comes while the state machine waits.
    afterSlice = (answer) => {
      if (answer.waitSeconds > 0) github.set({ rateLimitRemaining: undefined });
    };
    const waits: number[] = [];
    try {
      const execution = h.runner.startExecution({ tenantId: h.tenantId, connectionIds: [connection.id], mode: 'full' });
      for await (const event of execution.events) {
        if (event.type === 'StateEntered' && event.state?.name === STATES.waitBeforeNextSlice) waits.push((event.state.input as { waitSeconds: number }).waitSeconds);
      }
      await execution.result;
    } finally {
      afterSlice = undefined;
      github.set({ rateLimitRemaining: undefined });
    }
    // x-ratelimit-reset is an hour ahead: the longest wait a connector may ask for.
    expect(waits).toHaveLength(1);
    expect(waits[0]).toBeGreaterThan(3500);
    expect((await h.runsOf(connection.id))[0]).toMatchObject({ status: 'succeeded' });
  });

  it('a no-change incremental pass sends only conditional requests: none counts against the rate limit, nothing is written', async () => {
    const [repo] = github.generate({ repos: ['acme/quiet'], files: 12, commits: 5, issues: 4, pulls: 2, seed: 9 });
    const connection = await githubConnection(h, github, [repo!]);
    const full = await sync(connection.id, 'full');
    expect(full.status).toBe('succeeded');
    expect(full.stats.rateLimitedRequests).toBeGreaterThan(5);

    const charged = github.stats.charged;
    const quiet = await sync(connection.id, 'incremental');
    expect(quiet).toMatchObject({ status: 'succeeded', stats: { requests: 3, rateLimitedRequests: 0, nodesUpserted: 0, edgesUpserted: 0, writeRequests: 0 } });
    expect(github.stats.charged).toBe(charged);

    // One closed issue: the issues listing changes (charged), pull requests stay 304.
    github.repo(repo!).closeIssue(2);
    const changed = await sync(connection.id, 'incremental');
    expect(changed.stats).toMatchObject({ nodesUpserted: 1, rateLimitedRequests: 1 });
    expect((await h.graph.getNode(h.tenantId, 'github:issue:acme/quiet#2'))?.props).toMatchObject({ state: 'closed' });
  });

  it('hands its cursor back before the slice\'s deadline and resumes phase by phase in the next slices', async () => {
    const [repo] = github.generate({ repos: ['acme/sliced'], files: 14, commits: 7, issues: 3, pulls: 2, seed: 12 });
    const roomy = await githubConnection(h, github, [repo!]);
    await sync(roomy.id);
    expect(sliceAnswers).toHaveLength(1);
    const expected = (await h.nodeIdsOf(roomy.id)).length;

    const tight = await githubConnection(h, github, [repo!]);
    configureSync({ sliceBudgetMs: 1 });
    try {
      const run = await sync(tight.id);
      expect(run.status).toBe('succeeded');
    } finally {
      configureSync({ sliceBudgetMs: 300_000 });
    }
    // One step per slice (repository, branches, commits, tree, code, issues, pulls), each handing its cursor on.
    expect(sliceAnswers.length).toBeGreaterThanOrEqual(7);
    expect(sliceAnswers.slice(0, -1).every((answer) => !answer.done && answer.waitSeconds === 0)).toBe(true);
    expect((await h.nodeIdsOf(tight.id)).length).toBe(expected);
  });

  it('a token GitHub refuses mid-sync (rotated or expired elsewhere) is renewed and the request retried', async () => {
    const [repo] = github.generate({ repos: ['acme/rotated'], files: 6, commits: 3, issues: 1, pulls: 1, seed: 13 });
    const connection = await githubConnection(h, github, [repo!]);
    const refreshes = github.oauth.stats.refreshes;
    // GitHub's clock is 9 h ahead: the stored 8 h token is expired there, though not by ours.
    github.set({ now: () => Date.now() + 9 * 3600_000 });
    try {
      const run = await sync(connection.id);
      expect(run.error).toBeUndefined();
      expect(run.status).toBe('succeeded');
    } finally {
      github.set({ now: undefined });
    }
    expect(github.oauth.stats.refreshes).toBe(refreshes + 1);
    expect((await h.connections.get(h.tenantId, connection.id))!.secretName).toBe(`${connection.id}-v2`);
    expect(await nodeIdsOfType(h, connection.id, 'commit')).toHaveLength(3);
  });

  it('an empty archive download is a broken one: the code kinds are not swept', async () => {
    const [repo] = github.generate({ repos: ['acme/broken-download'], files: 8, commits: 2, issues: 0, pulls: 0, seed: 14 });
    const connection = await githubConnection(h, github, [repo!]);
    await sync(connection.id);
    const symbols = await nodeIdsOfType(h, connection.id, 'symbol');
    expect(symbols.length).toBeGreaterThan(10);
    github.set({ emptyArchives: true });
    try {
      const run = await sync(connection.id, 'full');
      expect(run).toMatchObject({ status: 'succeeded', stats: { nodesDeleted: 0, edgesDeleted: 0 } });
      expect(run.warnings).toEqual(
        expect.arrayContaining([expect.stringMatching(/^acme\/broken-download: GitHub's archive of [0-9a-f]{7} was empty/), 'Not swept this pass: symbol (fetching them failed: the archive download was empty).']),
      );
    } finally {
      github.set({ emptyArchives: undefined });
    }
    expect(await nodeIdsOfType(h, connection.id, 'symbol')).toEqual(symbols);
  });

  it('the fake: a 304 to a conditional request leaves x-ratelimit-remaining where it was', async () => {
    github.generate({ repos: ['acme/etagged'], files: 4, commits: 1, issues: 0, pulls: 0, seed: 15 });
    const { accessToken } = await github.issueToken();
    const get = (etag?: string) => fetch(`${github.url}/repos/acme/etagged/branches`, { headers: { authorization: `Bearer ${accessToken}`, ...(etag ? { 'if-none-match': etag } : {}) } });
    const first = await get();
    const etag = first.headers.get('etag')!;
    const remaining = Number(first.headers.get('x-ratelimit-remaining'));
    const again = await get(etag);
    expect(again.status).toBe(304);
    expect(Number(again.headers.get('x-ratelimit-remaining'))).toBe(remaining);
    const changed = await get('W/"stale"');
    expect(changed.status).toBe(200);
    expect(Number(changed.headers.get('x-ratelimit-remaining'))).toBe(remaining - 1);
  });
});
