/**
 * The GitLab sync's paging: the tree by keyset and by page numbers (an instance without keyset
 * trees), the first-sync commit depth, and cursors at slice deadlines (also a budget shorter than
 * one step).
 */
import { describe, expect, it } from '@jest/globals';
import { sharedProjectFake } from './support.ts';

const PROJECT = 'acme/svc-000';
const shared = sharedProjectFake(PROJECT);
const { ids, headTree, harness, fileNodes } = shared;
const treeRequests = (from: number) => shared.fake().apiRequests().slice(from).filter((r) => r.path.endsWith('/repository/tree') && !r.query.has('path'));

describe('the repository tree', () => {
  it('pages by keyset where the instance supports it, and yields every file and directory', async () => {
    const h = await harness();
    const before = shared.fake().apiRequests().length;
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
    shared.fake().set({ treeKeyset: false });
    const h = await harness();
    const before = shared.fake().apiRequests().length;
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
    const repo = shared.fake().project(PROJECT).repository!;
    const state = h.state.get(`project:${PROJECT}`)!;
    expect(state.floor).toEqual(expect.any(String));
    expect(await h.node(ids().commit(state.floor as string))).toBeDefined();
    expect(await h.out(ids().commit(state.floor as string), 'PARENT')).toEqual([]);
    const head = repo.branches.get('main')!;
    expect(await h.out(ids().commit(head), 'PARENT')).toHaveLength(repo.commits.get(head)!.parents.length);

    const before = shared.fake().apiRequests().length;
    const full = await h.pass('full');
    const commits = shared.fake().apiRequests().slice(before).filter((r) => r.path.endsWith('/repository/commits'));
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

