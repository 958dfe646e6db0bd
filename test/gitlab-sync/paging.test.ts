/**
 * The GitLab sync's paging: the tree by keyset and by page numbers (an instance without keyset
 * trees), the first-sync commit depth, and cursors at slice deadlines (also a budget shorter than
 * one step).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { GitLabIds } from '../../functions/connectors/gitlab/ids.ts';
import { DEFAULT_GITLAB_CLIENT_ID, DEFAULT_GITLAB_CLIENT_SECRET, generateGitLabGroup, startGitLabFake, type GitLabFake } from '../fakes/gitlab.ts';
import { setEnv } from '../oauth/support.ts';
import { startGitLabSyncHarness, TestClock, type GitLabSyncHarness } from './support.ts';

const PROJECT = 'acme/svc-000';
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

/** A fresh tenant (its own graph) and connection on the shared fake. */
async function harness(config: Record<string, unknown> = {}): Promise<GitLabSyncHarness> {
  const h = await startGitLabSyncHarness({ existingFake: fake, clock, config: { projects: [PROJECT], ...config } });
  return h;
}

const ids = () => new GitLabIds(fake.baseUrl, PROJECT);
const headTree = () => {
  const repo = fake.project(PROJECT).repository!;
  return repo.commits.get(repo.branches.get('main')!)!.tree;
};
const treeRequests = (from: number) => fake.apiRequests().slice(from).filter((r) => r.path.endsWith('/repository/tree') && !r.query.has('path'));

async function fileNodes(h: GitLabSyncHarness): Promise<string[]> {
  const found: string[] = [];
  for (const path of headTree().keys()) if (await h.node(ids().file(path))) found.push(path);
  return found;
}

describe('the repository tree', () => {
  it('pages by keyset where the instance supports it, and yields every file and directory', async () => {
    const h = await harness();
    const before = fake.apiRequests().length;
    const report = await h.pass('full');
    const pages = treeRequests(before).filter((r) => r.query.get('ref') !== null);
    expect(pages.length).toBeGreaterThanOrEqual(3);
    expect(pages.every((r) => r.query.get('pagination') === 'keyset')).toBe(true);
    expect(pages.slice(1).every((r) => r.query.has('page_token') && !r.query.has('page'))).toBe(true);
    expect((await fileNodes(h)).length).toBe(headTree().size);
    expect(await h.node(ids().directory('src/core/internal'))).toBeDefined();
    expect(report.incomplete).toEqual({});
  });

  it('pages by number on an instance without keyset trees (Link / X-Next-Page), and yields every file', async () => {
    fake.set({ treeKeyset: false });
    const h = await harness();
    const before = fake.apiRequests().length;
    await h.pass('full');
    const pages = treeRequests(before);
    expect(pages.length).toBeGreaterThanOrEqual(3);
    expect(pages.slice(1).map((r) => r.query.get('page'))).toEqual(pages.slice(1).map((_, i) => String(i + 2)));
    expect(pages.some((r) => r.query.has('page_token'))).toBe(false);
    expect((await fileNodes(h)).length).toBe(headTree().size);
  });
});

describe('commit depth', () => {
  it('a first sync reads the newest commitDepth commits; the floor has no PARENT edge; a full pass re-reads from the floor', async () => {
    const h = await harness({ commitDepth: 120 });
    await h.pass('full');
    const repo = fake.project(PROJECT).repository!;
    const state = h.state.get(`project:${PROJECT}`)!;
    expect(state.floor).toEqual(expect.any(String));
    expect(await h.node(ids().commit(state.floor as string))).toBeDefined();
    expect(await h.out(ids().commit(state.floor as string), 'PARENT')).toEqual([]);
    const head = repo.branches.get('main')!;
    expect(await h.out(ids().commit(head), 'PARENT')).toHaveLength(repo.commits.get(head)!.parents.length);

    const before = fake.apiRequests().length;
    const full = await h.pass('full');
    const commits = fake.apiRequests().slice(before).filter((r) => r.path.endsWith('/repository/commits'));
    expect(commits[0]!.query.get('ref_name')).toBe(`${state.floor}..${head}`);
    expect(h.sawNode(full, ids().commit(state.floor as string))).toBe(true);
    expect(full.graphWrites).toBe(0);
  });
});

describe('slices', () => {
  it('hands back a cursor at the deadline and resumes: many small slices build the same graph', async () => {
    const whole = await harness();
    const one = await whole.pass('full');
    const sliced = await harness();
    const report = await sliced.pass('full', { requestsPerSlice: 1 });
    // About one request per slice: the listing pages, the archive, each a slice of its own.
    expect(report.slices).toBeGreaterThanOrEqual(one.requests - 2);
    expect(report.seen.size).toBe(one.seen.size);
    // Small cursors, no lost pages: every file, issue and commit.
    expect((await fileNodes(sliced)).length).toBe(headTree().size);
    expect(await sliced.out(ids().repository(), 'HAS_ISSUE')).toHaveLength(130);
  });

  it('a slice budget shorter than a step (the local runner\'s 5 s) still moves on: one step per slice', async () => {
    const whole = await harness();
    const one = await whole.pass('full');
    const short = await harness();
    const report = await short.pass('full', { budgetMs: 5_000 });
    expect(report.slices).toBeGreaterThan(10);
    expect(report.seen.size).toBe(one.seen.size);
    expect(report.incomplete).toEqual({});
  });
});

