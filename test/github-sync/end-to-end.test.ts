/**
 * GitHub end to end on the local test stack: connect through the OAuth round trip against the
 * fake → POST /v1/connections/{id}/sync → the synthesized state machine runs (a partition per
 * repository) → the graph holds the organization, repositories, branches, commits, directories
 * and files, issues, pull requests, people, symbols and packages with their edges → edits on the
 * fake → an incremental pass picks them up → a full pass sweeps what is gone and keeps a shared
 * node's other source → DELETE leaves nothing of the connection.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { GraphStore } from '#graph/store.ts';
import { startGitHubFake, type GitHubFake } from '../fakes/github.ts';
import { startTestApi, type TestApi } from '../support/api.ts';
import { roundTrip } from '../oauth/support.ts';
import { disconnectAndWait, graphReader, syncAndWait as syncThroughApi } from '../support/api-sync.ts';
import { deferred } from '../support/sync-harness.ts';
import { githubEnv } from './support.ts';

const REPOS = ['acme/payments', 'acme/checkout', 'acme/infra'];

let api: TestApi;
let github: GitHubFake;
let acme: string;
let graph: GraphStore;
let restoreEnv: () => void;
let connectionId: string;
let sharedConnectionId: string;

beforeAll(async () => {
  github = await startGitHubFake();
  github.generate({ repos: REPOS, files: 16, commits: 12, issues: 6, pulls: 3, seed: 11 });
  // payments and infra declare is-even (no source imports it); checkout does not.
  for (const name of ['acme/payments', 'acme/infra']) setDependency(name, 'is-even', '^1.0.0');
  restoreEnv = githubEnv(github);
  api = await startTestApi();
  graph = new GraphStore(api.table);
  acme = await api.tokenFor('acme');
}, 60_000);
afterAll(async () => {
  await api.close();
  await github.close();
  restoreEnv();
});

/** Sets (or, with `undefined`, removes) a dependency in a repository's package.json; returns the files to push. */
function packageJson(name: string, dependency: string, version: string | undefined): Record<string, string> {
  const repo = github.repo(name);
  const manifest = JSON.parse(repo.filesAt(repo.branches.get('main')!).get('package.json')!.toString()) as { dependencies: Record<string, string> };
  if (version === undefined) delete manifest.dependencies[dependency];
  else manifest.dependencies[dependency] = version;
  return { 'package.json': JSON.stringify(manifest, null, 2) };
}

function setDependency(name: string, dependency: string, version: string): void {
  github.repo(name).push('main', { files: packageJson(name, dependency, version), message: `Add ${dependency}` });
}

async function connect(repositories: string[]): Promise<string> {
  const { callback } = await roundTrip(api, acme, 'github');
  expect(callback.status).toBe(200);
  const id = callback.body.connection.id as string;
  const patched = await api.call('PATCH', `/v1/connections/${id}`, { token: acme, body: { config: { repositories } } });
  expect(patched.status).toBe(200);
  return id;
}

const syncAndWait = (id: string, body: Record<string, unknown> = {}) => syncThroughApi(api, acme, id, body);
const { node, out, into } = graphReader(() => graph, 'acme');

describe('GitHub, end to end through the API', () => {
  it('connect → sync → the graph holds the organization, repositories, branches, commits, files, issues, pull requests and people', async () => {
    connectionId = await connect(['acme/payments', 'acme/checkout']);
    const sync = await syncAndWait(connectionId);
    expect(sync).toMatchObject({ status: 'succeeded', mode: 'full', progress: { phase: 'done', done: 2, total: 2 }, stats: { nodesDeleted: 0 } });
    expect(sync.stats.requests).toBeGreaterThan(10);
    expect(sync.warnings).toBeUndefined();

    const payments = github.repo('acme/payments');
    const head = payments.branches.get('main')!;
    const headCommit = payments.commits.get(head)!;

    // Organization → repository; branches and their heads.
    expect(await out('github:organization:acme', 'CONTAINS')).toEqual(['github:repository:acme/checkout', 'github:repository:acme/payments']);
    expect((await node('github:repository:acme/payments'))).toMatchObject({ type: 'repository', sources: [connectionId], props: { defaultBranch: 'main', fullName: 'acme/payments' } });
    expect(await out('github:repository:acme/payments', 'HAS_BRANCH')).toEqual(['github:branch:acme/payments@develop', 'github:branch:acme/payments@feature/topic-1', 'github:branch:acme/payments@main']);
    expect(await out('github:branch:acme/payments@main', 'HEAD')).toEqual([`github:commit:acme/payments@${head}`]);

    // Commits of the default branch, linked to their parents and authors.
    expect(await node(`github:commit:acme/payments@${head}`)).toMatchObject({ type: 'commit', props: { sha: head, message: headCommit.message } });
    expect(await out(`github:commit:acme/payments@${head}`, 'PARENT')).toEqual([`github:commit:acme/payments@${headCommit.parents[0]}`]);
    const commits = (await graph.listNodes('acme', { type: 'commit', limit: 100 })).items.filter((n) => n.id.startsWith('github:commit:acme/payments@'));
    expect(commits).toHaveLength(13);
    expect(await into(`github:commit:acme/payments@${head}`, 'AUTHORED')).toEqual([`github:person:${headCommit.author.login}`]);
    // A commit GitHub could not attribute to an account: its author is a person by email.
    const unattributed = [...payments.commits.values()].find((c) => c.author.login === null)!;
    expect(await into(`github:commit:acme/payments@${unattributed.sha}`, 'AUTHORED')).toEqual(['github:person:email:build-bot@ci.acme.dev']);

    // The file tree.
    expect(await out('github:repository:acme/payments', 'CONTAINS')).toEqual(
      expect.arrayContaining(['github:directory:acme/payments/src', 'github:directory:acme/payments/lib', 'github:file:acme/payments/package.json']),
    );
    expect(await out('github:directory:acme/payments/src', 'CONTAINS')).toEqual(['github:directory:acme/payments/src/mod-0', 'github:directory:acme/payments/src/mod-1']);
    expect(await out('github:directory:acme/payments/src/mod-0', 'CONTAINS')).toContain('github:file:acme/payments/src/mod-0/file-0.ts');
    expect(await node('github:file:acme/payments/src/mod-0/file-0.ts')).toMatchObject({ type: 'file', props: { path: 'src/mod-0/file-0.ts', sha: expect.stringMatching(/^[0-9a-f]{40}$/) } });

    // Issues and pull requests: who opened them, which branch a PR targets, which issue it closes.
    expect(await out('github:repository:acme/payments', 'HAS_ISSUE')).toHaveLength(6);
    expect(await node('github:issue:acme/payments#4')).toMatchObject({ type: 'issue', props: { number: 4, state: 'closed' } });
    expect(await into('github:issue:acme/payments#1', 'AUTHORED')).toEqual([`github:person:${payments.issue(1).author}`]);
    expect(await out('github:repository:acme/payments', 'HAS_PULL_REQUEST')).toEqual(['github:pull_request:acme/payments#7', 'github:pull_request:acme/payments#8', 'github:pull_request:acme/payments#9']);
    expect(await node('github:pull_request:acme/payments#7')).toMatchObject({ type: 'pull_request', props: { state: 'merged', merged: true, base: 'main', source: 'github' } });
    expect(await node('github:pull_request:acme/payments#9')).toMatchObject({ props: { state: 'open', merged: false } });
    expect(await out('github:pull_request:acme/payments#7', 'TARGETS')).toEqual(['github:branch:acme/payments@main']);
    // "Fixes #2" in PR 7's body, "resolves #3" in PR 8's.
    expect(payments.issue(7).body).toMatch(/^Fixes #2/);
    expect(await out('github:pull_request:acme/payments#7', 'CLOSES')).toEqual(['github:issue:acme/payments#2']);
    expect(await out('github:pull_request:acme/payments#8', 'CLOSES')).toEqual(['github:issue:acme/payments#3']);
    expect(await out(`github:person:${payments.issue(7).author}`, 'AUTHORED')).toContain('github:pull_request:acme/payments#7');

    // Code: symbols of the files, imports, and the repository's dependencies.
    expect(await out('github:file:acme/payments/src/mod-0/file-0.ts', 'DEFINES')).toEqual(
      expect.arrayContaining(['github:symbol:acme/payments/src/mod-0/file-0.ts#fn0', 'github:symbol:acme/payments/src/mod-0/file-0.ts#Handler0']),
    );
    expect(await out('github:repository:acme/payments', 'DEPENDS_ON')).toEqual(expect.arrayContaining(['package:npm:express', 'package:npm:is-even', 'package:pypi:requests']));
    expect(await out('github:repository:acme/checkout', 'DEPENDS_ON')).not.toContain('package:npm:is-even');
    expect((await graph.edges('acme', 'github:repository:acme/payments', { direction: 'out', type: 'DEPENDS_ON' })).find((e) => e.to === 'package:npm:is-even')?.props).toMatchObject({ version: '^1.0.0', scope: 'prod' });

    // The API shows it too.
    const viaApi = await api.call('GET', `/v1/graph/nodes/${encodeURIComponent('github:repository:acme/checkout')}`, { token: acme });
    expect(viaApi.body).toMatchObject({ type: 'repository', sources: [connectionId] });
  });

  it('an incremental pass spends no rate limit when nothing changed, then picks up a new commit and a closed issue', async () => {
    const quiet = await syncAndWait(connectionId, { mode: 'incremental' });
    expect(quiet).toMatchObject({ status: 'succeeded', mode: 'incremental', stats: { requests: 6, rateLimitedRequests: 0, nodesUpserted: 0, edgesUpserted: 0 } });
    const run = await api.call('GET', `/v1/connections/${connectionId}/syncs`, { token: acme });
    expect(run.body.items[0].id).toBe(quiet.id);

    const payments = github.repo('acme/payments');
    const oldHead = payments.branches.get('main')!;
    const pushed = payments.push('main', { files: { 'src/mod-0/feature.ts': 'export function feature(): string {\n  return "new";\n}\n' }, message: 'Add the feature' });
    github.repo('acme/checkout').closeIssue(2);

    const incremental = await syncAndWait(connectionId, { mode: 'incremental' });
    expect(incremental).toMatchObject({ status: 'succeeded', mode: 'incremental', stats: { nodesDeleted: 0 } });
    expect(await node(`github:commit:acme/payments@${pushed.sha}`)).toMatchObject({ props: { message: 'Add the feature' } });
    expect(await out(`github:commit:acme/payments@${pushed.sha}`, 'PARENT')).toEqual([`github:commit:acme/payments@${oldHead}`]);
    expect(await out('github:branch:acme/payments@main', 'HEAD')).toContain(`github:commit:acme/payments@${pushed.sha}`);
    expect(await node('github:file:acme/payments/src/mod-0/feature.ts')).toBeDefined();
    expect(await out('github:file:acme/payments/src/mod-0/feature.ts', 'DEFINES')).toEqual(['github:symbol:acme/payments/src/mod-0/feature.ts#feature']);
    expect(await node('github:issue:acme/checkout#2')).toMatchObject({ props: { state: 'closed' } });
  });

  it('a full pass removes a deleted file and a dropped dependency, keeping the package node another connection still contributes', async () => {
    sharedConnectionId = await connect(['acme/infra']);
    expect((await syncAndWait(sharedConnectionId)).status).toBe('succeeded');
    expect((await node('package:npm:is-even'))?.sources.sort()).toEqual([connectionId, sharedConnectionId].sort());

    github.repo('acme/payments').push('main', { files: packageJson('acme/payments', 'is-even', undefined), delete: ['src/mod-0/file-1.ts'], message: 'Drop is-even and file-1' });
    // A force-push rewrites checkout's last two commits away.
    const checkout = github.repo('acme/checkout');
    const dropped = checkout.branches.get('main')!;
    const rewritten = checkout.forcePush('main', 2, { files: { 'src/mod-0/rewritten.ts': 'export const REWRITTEN = 1;\n' } });

    const full = await syncAndWait(connectionId, { mode: 'full' });
    expect(full).toMatchObject({ status: 'succeeded', mode: 'full' });
    expect(full.warnings).toBeUndefined();
    expect(full.stats.nodesDeleted).toBeGreaterThan(0);
    expect(await node('github:file:acme/payments/src/mod-0/file-1.ts')).toBeUndefined();
    expect(await node('github:symbol:acme/payments/src/mod-0/file-1.ts#fn1')).toBeUndefined();
    expect(await node('github:file:acme/payments/src/mod-0/file-0.ts')).toBeDefined();
    expect(await out('github:repository:acme/payments', 'DEPENDS_ON')).not.toContain('package:npm:is-even');
    // The shared package stays, now from the other connection only.
    expect(await node('package:npm:is-even')).toMatchObject({ sources: [sharedConnectionId] });
    // The rewritten history: the dropped head is gone, the new one is there.
    expect(await node(`github:commit:acme/checkout@${dropped}`)).toBeUndefined();
    expect(await node(`github:commit:acme/checkout@${rewritten.sha}`)).toBeDefined();
    expect(await out('github:branch:acme/checkout@main', 'HEAD')).toEqual([`github:commit:acme/checkout@${rewritten.sha}`]);
  });

  it('DELETE removes everything of the connection; the other connection\'s items stay', async () => {
    await disconnectAndWait(api, graph, 'acme', acme, connectionId);
    expect(await node('github:repository:acme/payments')).toBeUndefined();
    expect(await node('package:npm:is-even')).toMatchObject({ sources: [sharedConnectionId] });
    expect(await node('github:repository:acme/infra')).toMatchObject({ sources: [sharedConnectionId] });
  });

  it('GET /v1/syncs/{id} shows the progress moving while the sync runs', async () => {
    const id = await connect(['acme/payments', 'acme/checkout']);
    // Hold each repository's issues listing until the test has looked at the sync.
    const held = new Map(['acme/payments', 'acme/checkout'].map((name) => [name, deferred()]));
    const arrived = new Map(['acme/payments', 'acme/checkout'].map((name) => [name, deferred()]));
    github.set({
      gate: async (request) => {
        const repo = /^\/repos\/(acme\/[^/]+)\/issues$/.exec(request.path)?.[1];
        if (!repo || !held.has(repo)) return;
        arrived.get(repo)!.resolve();
        await held.get(repo)!.promise;
      },
    });
    const sync = async () => (await api.call('GET', `/v1/syncs/${started.body.id}`, { token: acme })).body;
    /** Reads the sync until `done` partitions finished (a bounded wait on the run's own record). */
    const untilDone = async (done: number) => {
      for (const deadline = Date.now() + 20_000; Date.now() < deadline; ) {
        const view = await sync();
        if (view.progress.done >= done) return view;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      throw new Error(`the sync never reached ${done} partitions done`);
    };
    const started = await api.call('POST', `/v1/connections/${id}/sync`, { token: acme, body: {} });
    try {
      expect(started.status).toBe(202);
      await Promise.all([...arrived.values()].map((a) => a.promise));
      const early = await sync();
      expect(early).toMatchObject({ status: 'running', progress: { done: 0, total: 2 } });
      expect(early.progress.phase).toMatch(/^acme\/(payments|checkout): /);

      held.get('acme/payments')!.resolve();
      const halfway = await untilDone(1);
      expect(halfway).toMatchObject({ status: 'running', progress: { done: 1, total: 2 } });
      expect(halfway.stats.nodesUpserted).toBeGreaterThan(early.stats.nodesUpserted);
    } finally {
      for (const hold of held.values()) hold.resolve();
      github.set({ gate: undefined });
    }
    await api.runner.idle();
    expect(await sync()).toMatchObject({ status: 'succeeded', progress: { phase: 'done', done: 2, total: 2 } });
  });
});
