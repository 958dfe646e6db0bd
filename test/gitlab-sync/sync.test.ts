/**
 * The GitLab sync against a generated group (a subgroup, three projects with files in two
 * languages, merge commits, issues, merge requests, pipelines and jobs): a full pass builds the
 * graph with the right edges, a no-change pass costs a few requests and no writes, edits are
 * picked up incrementally, and a full pass stops seeing what was deleted.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { GitLabIds } from '../../functions/connectors/gitlab/ids.ts';
import { generateGitLabGroup, type FakeCommit } from '../fakes/gitlab.ts';
import { setEnv } from '../oauth/support.ts';
import { startGitLabSyncHarness, type GitLabSyncHarness, type PassReport } from './support.ts';

let h: GitLabSyncHarness;
let restoreEnv: () => void;
const PROJECTS = ['acme/svc-000', 'acme/svc-001', 'acme/platform/svc-002'];
const ids = (path: string) => new GitLabIds(h.fake.baseUrl, path);
/** Request counts measured along the way, printed at the end for the closing note. */
const measured: Record<string, number | string> = {};

beforeAll(async () => {
  restoreEnv = setEnv({ OPENTRACE_ALLOW_PRIVATE_NETWORKS: 'true' });
  h = await startGitLabSyncHarness({
    fake: { model: generateGitLabGroup({ seed: 42, projects: 3, files: 40, commits: 25, issues: 12, mergeRequests: 5, pipelines: 4, jobsPerPipeline: 3 }) },
  });
});

afterAll(async () => {
  await h?.close();
  restoreEnv();
  console.info(`GitLab sync request counts: ${JSON.stringify(measured)}`);
});

const fileIdsOf = (path: string) => [...h.fake.project(path).repository!.commits.get(h.fake.project(path).repository!.branches.get('main')!)!.tree.keys()].map((file) => ids(path).file(file)).sort();

describe('a full first pass', () => {
  let report: PassReport;
  beforeAll(async () => {
    report = await h.pass('full');
    measured.fullPassRequests = report.requests;
    measured.fullPassGraphWrites = report.graphWrites;
  });

  it('lists one partition per project (membership, as the connection check does)', () => {
    expect(report.partitions).toEqual(PROJECTS);
    expect(report.waits).toEqual([]);
    expect(report.incomplete).toEqual({});
    expect(report.warnings).toEqual([]);
  });

  it('writes the groups, the projects and CONTAINS group → subgroup → project', async () => {
    const i = ids('acme/platform/svc-002');
    expect(await h.node(i.group('acme'))).toMatchObject({ type: 'organization', name: 'acme', props: { kind: 'group', fullPath: 'acme' } });
    expect(await h.out(i.group('acme'), 'CONTAINS')).toEqual([i.group('acme/platform'), ids('acme/svc-000').repository(), ids('acme/svc-001').repository()].sort());
    expect(await h.out(i.group('acme/platform'), 'CONTAINS')).toEqual([i.repository()]);
    expect(await h.node(i.repository())).toMatchObject({ type: 'repository', name: 'acme/platform/svc-002', props: { projectId: 2002, defaultBranch: 'main', visibility: 'private', webUrl: `${h.fake.baseUrl}/acme/platform/svc-002` } });
    expect(i.repository()).toBe(`gitlab:repository:${new URL(h.fake.baseUrl).host}/acme/platform/svc-002`);
  });

  it('writes branches with their heads, and the default branch history with PARENT and AUTHORED', async () => {
    const i = ids('acme/svc-000');
    const repo = h.fake.project('acme/svc-000').repository!;
    const head = repo.branches.get('main')!;
    expect(await h.out(i.repository(), 'HAS_BRANCH')).toEqual([i.branch('feature/change-1'), i.branch('feature/change-4'), i.branch('main')].sort());
    expect(await h.node(i.branch('main'))).toMatchObject({ type: 'branch', props: { default: true, protected: true, headSha: head } });
    expect(await h.out(i.branch('main'), 'HEAD')).toEqual([i.commit(head)]);
    expect(await h.out(i.branch('feature/change-1'), 'HEAD')).toEqual([i.commit(repo.branches.get('feature/change-1')!)]);

    // Every commit reachable from main: 25 on the main line and the side commits of the 2 merges.
    const history = reachable(repo.commits, head);
    expect(history.size).toBe(27);
    for (const sha of history) expect(await h.node(i.commit(sha))).toBeDefined();
    const merge = [...history].map((sha) => repo.commits.get(sha)!).find((commit) => commit.parents.length === 2)!;
    expect(await h.out(i.commit(merge.id), 'PARENT')).toEqual(merge.parents.map((parent) => i.commit(parent)).sort());
    const headCommit = repo.commits.get(head)!;
    expect(await h.node(i.commit(head))).toMatchObject({ type: 'commit', props: { sha: head, title: headCommit.title, authorName: headCommit.authorName } });
    expect(await h.out(i.email(headCommit.authorEmail), 'AUTHORED')).toContain(i.commit(head));
    expect(await h.node(i.email(headCommit.authorEmail))).toMatchObject({ type: 'person', name: headCommit.authorName, props: { email: headCommit.authorEmail } });
  });

  it('writes every file and directory of the tree with CONTAINS', async () => {
    for (const path of PROJECTS) {
      for (const id of fileIdsOf(path)) expect(await h.node(id)).toBeDefined();
    }
    const i = ids('acme/svc-000');
    expect(await h.out(i.repository(), 'CONTAINS')).toEqual([i.directory('app'), i.directory('docs'), i.directory('src'), i.file('README.md'), i.file('package.json'), i.file('pyproject.toml')].sort());
    expect(await h.out(i.directory('src/core'), 'CONTAINS')).toEqual(expect.arrayContaining([i.directory('src/core/internal'), i.file('src/core/mod6.ts')]));
    const readme = h.fake.project('acme/svc-000').repository!.commits.get(h.fake.project('acme/svc-000').repository!.branches.get('main')!)!.tree.get('README.md');
    expect(await h.node(i.file('README.md'))).toMatchObject({ type: 'file', name: 'README.md', props: { path: 'README.md', sha: readme } });
    expect(await h.node(i.directory('src/core/internal'))).toMatchObject({ type: 'directory', name: 'internal', props: { path: 'src/core/internal' } });
  });

  it('analyses the archive: symbols, imports and dependencies on the same file and repository nodes', async () => {
    const i = ids('acme/svc-000');
    const symbol = `gitlab:symbol:${i.repoKey}/src/api/mod0.ts#handler0`;
    expect(await h.node(symbol)).toMatchObject({ type: 'symbol', props: { kind: 'function' } });
    expect(await h.out(i.file('src/api/mod0.ts'), 'DEFINES')).toContain(symbol);
    expect(await h.out(i.file('src/api/mod0.ts'), 'IMPORTS')).toEqual(['package:npm:express']);
    expect(await h.out(i.file('app/core/mod_1.py'), 'DEFINES')).toContain(`gitlab:symbol:${i.repoKey}/app/core/mod_1.py#Worker1`);
    expect(await h.out(i.repository(), 'DEPENDS_ON')).toEqual(expect.arrayContaining(['package:npm:express', 'package:npm:jest', 'package:pypi:requests']));
  });

  it('writes issues, merge requests (TARGETS, CLOSES) and their authors', async () => {
    const i = ids('acme/svc-000');
    const project = h.fake.project('acme/svc-000');
    expect(await h.out(i.repository(), 'HAS_ISSUE')).toHaveLength(12);
    expect(await h.node(i.issue(3))).toMatchObject({ type: 'issue', name: 'Issue 3 of svc-000', props: { iid: 3, state: 'closed', webUrl: `${h.fake.baseUrl}/acme/svc-000/-/issues/3` } });
    const issueAuthor = project.issues!.find((issue) => issue.iid === 3)!.author;
    expect(await h.into(i.issue(3), 'AUTHORED')).toEqual([i.user(issueAuthor)]);
    expect(await h.node(i.user(issueAuthor))).toMatchObject({ type: 'person', props: { username: issueAuthor } });

    expect(await h.out(i.repository(), 'HAS_PULL_REQUEST')).toHaveLength(5);
    expect(await h.node(i.mergeRequest(1))).toMatchObject({ type: 'pull_request', props: { source: 'gitlab', iid: 1, state: 'opened', sourceBranch: 'feature/change-1', targetBranch: 'main' } });
    expect(await h.node(i.mergeRequest(2))).toMatchObject({ props: { state: 'merged' } });
    expect(await h.out(i.mergeRequest(1), 'TARGETS')).toEqual([i.branch('main')]);
    // "Closes #2"; "This fixes #4 and implements acme/svc-000#4." is one edge.
    expect(await h.out(i.mergeRequest(1), 'CLOSES')).toEqual([i.issue(2)]);
    expect(await h.out(i.mergeRequest(2), 'CLOSES')).toEqual([i.issue(4)]);
    const mrAuthor = project.mergeRequests!.find((mr) => mr.iid === 1)!.author;
    expect(await h.out(i.user(mrAuthor), 'AUTHORED')).toContain(i.mergeRequest(1));
  });

  it('writes pipelines (RAN_ON their commit) and jobs (HAS_JOB)', async () => {
    const i = ids('acme/platform/svc-002');
    const pipelines = h.fake.project('acme/platform/svc-002').pipelines!;
    expect(pipelines).toHaveLength(4);
    for (const pipeline of pipelines) {
      expect(await h.node(i.pipeline(pipeline.id))).toMatchObject({ type: 'pipeline', props: { status: pipeline.status, ref: 'main', sha: pipeline.sha } });
      expect(await h.out(i.pipeline(pipeline.id), 'RAN_ON')).toEqual([i.commit(pipeline.sha)]);
      expect(await h.node(i.commit(pipeline.sha))).toBeDefined();
      expect(await h.out(i.pipeline(pipeline.id), 'HAS_JOB')).toEqual(pipeline.jobs.map((job) => i.job(job.id)).sort());
    }
    const job = pipelines[0]!.jobs[0]!;
    expect(await h.node(i.job(job.id))).toMatchObject({ type: 'job', name: 'build-job', props: { stage: 'build', status: 'success', pipelineId: pipelines[0]!.id } });
  });
});

describe('incremental passes', () => {
  it('an unchanged group: a few conditional requests per project, no graph or state writes', async () => {
    await h.pass('incremental'); // the first one after a full pass asks with the incremental URLs once
    const before = h.fake.apiRequests().length;
    const report = await h.pass('incremental');
    const requests = h.fake.apiRequests().slice(before);
    measured.noChangeRequests = report.requests;
    measured.noChangeRequestsPerProject = (report.requests - 1) / PROJECTS.length;
    measured.noChangeNotModified = requests.filter((r) => r.headers['if-none-match']).length;
    expect(report.graphWrites).toBe(0);
    expect(report.stateWrites).toBe(0);
    expect(report.nodesUpserted + report.edgesUpserted).toBe(0);
    // The membership listing, then per project: project, branches, issues, merge requests, pipelines.
    expect(report.requests).toBe(1 + 5 * PROJECTS.length);
    expect(requests.filter((r) => r.path.endsWith('/repository/tree') || r.path.endsWith('/archive.tar.gz') || r.path.endsWith('/repository/commits'))).toEqual([]);
    expect(measured.noChangeNotModified).toBe(5 * PROJECTS.length);
  });

  describe('after edits', () => {
    let pushed: FakeCommit;
    let forced: FakeCommit;
    let oldHead002: string;
    let oldHead000: string;
    let report: PassReport;
    let sent: ReturnType<GitLabSyncHarness['fake']['apiRequests']>;
    beforeAll(async () => {
      oldHead000 = h.fake.project('acme/svc-000').repository!.branches.get('main')!;
      pushed = h.fake.pushCommit('acme/svc-000', { files: { 'src/api/new-feature.ts': 'export function newFeature(): number {\n  return 1;\n}\n' }, message: 'Add the new feature', author: 'dev2' });
      h.fake.closeIssue('acme/svc-000', 1);
      h.fake.addPipeline('acme/svc-000', { status: 'running', jobs: 2 });
      h.fake.deleteFile('acme/svc-001', 'README.md');
      oldHead002 = h.fake.project('acme/platform/svc-002').repository!.branches.get('main')!;
      forced = h.fake.forcePush('acme/platform/svc-002', { drop: 2, files: { 'src/api/mod0.ts': 'export function rewritten(): void {}\n' }, message: 'Rewrite the last two changes' });
      const before = h.fake.apiRequests().length;
      report = await h.pass('incremental');
      sent = h.fake.apiRequests().slice(before);
      measured.incrementalAfterEditsRequests = report.requests;
      measured.incrementalAfterEditsArchives = sent.filter((r) => r.path.endsWith('/archive.tar.gz')).length;
      measured.incrementalAfterEditsGraphWrites = report.graphWrites;
    });

    it('picks up the new commit, its file and its symbols', async () => {
      const i = ids('acme/svc-000');
      expect(await h.node(i.commit(pushed.id))).toMatchObject({ props: { title: 'Add the new feature', authorName: 'Developer 2' } });
      expect(await h.out(i.commit(pushed.id), 'PARENT')).toEqual([i.commit(pushed.parents[0]!)]);
      expect(await h.out(i.branch('main'), 'HEAD')).toContain(i.commit(pushed.id));
      expect(await h.node(i.branch('main'))).toMatchObject({ props: { headSha: pushed.id } });
      expect(await h.into(i.file('src/api/new-feature.ts'), 'CONTAINS')).toEqual([i.directory('src/api')]);
      expect(await h.out(i.file('src/api/new-feature.ts'), 'DEFINES')).toEqual([`gitlab:symbol:${i.repoKey}/src/api/new-feature.ts#newFeature`]);
      expect(await h.out(i.email('dev2@example.com'), 'AUTHORED')).toContain(i.commit(pushed.id));
    });

    it('sees the closed issue and the new pipeline with its jobs', async () => {
      const i = ids('acme/svc-000');
      expect(await h.node(i.issue(1))).toMatchObject({ props: { state: 'closed' } });
      const pipeline = h.fake.project('acme/svc-000').pipelines!.at(-1)!;
      expect(await h.node(i.pipeline(pipeline.id))).toMatchObject({ props: { status: 'running', sha: pushed.id } });
      expect(await h.out(i.pipeline(pipeline.id), 'RAN_ON')).toEqual([i.commit(pushed.id)]);
      expect(await h.out(i.pipeline(pipeline.id), 'HAS_JOB')).toHaveLength(2);
    });

    it('follows a force-push: the new head and its parent two commits back', async () => {
      const i = ids('acme/platform/svc-002');
      expect(await h.out(i.commit(forced.id), 'PARENT')).toEqual([i.commit(forced.parents[0]!)]);
      expect(await h.out(i.branch('main'), 'HEAD')).toContain(i.commit(forced.id));
      expect(await h.node(i.branch('main'))).toMatchObject({ props: { headSha: forced.id } });
      // Incremental passes only add: the old head is still there until a full pass.
      expect(await h.node(i.commit(oldHead002))).toBeDefined();
    });

    it('leaves deleted files in place (an incremental pass deletes nothing) and parses only changed files', async () => {
      expect(await h.node(ids('acme/svc-001').file('README.md'))).toBeDefined();
      expect(report.incomplete).toEqual({});
      // Three heads moved: three archives, each analysed against the tree of the last analysed commit (previousShas).
      expect(measured.incrementalAfterEditsArchives).toBe(3);
      expect(sent.some((r) => r.path.endsWith('/2000/repository/tree') && r.query.get('ref') === oldHead000)).toBe(true);
      // The commits are read as a revision range from the last synced head.
      expect(sent.find((r) => r.path.endsWith('/2000/repository/commits'))?.query.get('ref_name')).toBe(`${oldHead000}..${pushed.id}`);
    });

    it('a full pass then no longer sees the deleted file, the dropped commits or the old HEAD edge', async () => {
      const full = await h.pass('full');
      measured.secondFullPassRequests = full.requests;
      measured.secondFullPassGraphWrites = full.graphWrites;
      const i001 = ids('acme/svc-001');
      expect(h.sawNode(full, i001.file('README.md'))).toBe(false);
      expect(h.sawEdge(full, i001.repository(), 'CONTAINS', i001.file('README.md'))).toBe(false);
      for (const id of fileIdsOf('acme/svc-001')) expect(h.sawNode(full, id)).toBe(true);
      const i002 = ids('acme/platform/svc-002');
      expect(h.sawNode(full, i002.commit(oldHead002))).toBe(false);
      expect(h.sawEdge(full, i002.branch('main'), 'HEAD', i002.commit(oldHead002))).toBe(false);
      expect(h.sawEdge(full, i002.branch('main'), 'HEAD', i002.commit(forced.id))).toBe(true);
      expect(h.sawNode(full, i002.commit(forced.parents[0]!))).toBe(true);
      // Shared nodes other partitions also write are seen: the group, people, packages.
      expect(h.sawNode(full, i002.group('acme'))).toBe(true);
      expect(h.sawNode(full, 'package:npm:express')).toBe(true);
      expect(full.incomplete).toEqual({});
    });
  });
});

describe('without fan-out (the single partition `*`)', () => {
  it('syncs every project in turn, across slices, to the same graph; an empty repository is a repository without branches', async () => {
    const full = await h.pass('full');
    h.fake.model.projects.push({ id: 2999, namespace: 'acme', path: 'empty', name: 'empty', visibility: 'private', defaultBranch: 'main', members: ['jdoe'] });
    const fresh = await startGitLabSyncHarness({ existingFake: h.fake, clock: h.clock });
    const report = await fresh.pass('full', { unpartitioned: true, requestsPerSlice: 3 });
    expect(report.partitions).toEqual(['*']);
    expect(report.slices).toBeGreaterThan(PROJECTS.length * 3);
    // The same items (contribution keys name the tenant and the connection: compare without them).
    const items = (seen: Set<string>, harness: GitLabSyncHarness) => new Set([...seen].map((key) => key.split(harness.connection.id).join('~').split(`T#${harness.tenantId}#`).join('T#~#')));
    const unpartitioned = items(report.seen, fresh);
    const missing = [...items(full.seen, h)].filter((key) => !unpartitioned.has(key));
    expect(missing).toEqual([]);
    const empty = new GitLabIds(h.fake.baseUrl, 'acme/empty');
    expect(await fresh.node(empty.repository())).toMatchObject({ type: 'repository', props: { fullPath: 'acme/empty' } });
    expect(await fresh.out(empty.repository(), 'HAS_BRANCH')).toEqual([]);
    expect(report.incomplete).toEqual({});
    h.fake.model.projects.pop();
  });
});

function reachable(commits: Map<string, FakeCommit>, tip: string): Set<string> {
  const seen = new Set<string>();
  const stack = [tip];
  while (stack.length) {
    const sha = stack.pop()!;
    if (seen.has(sha) || !commits.has(sha)) continue;
    seen.add(sha);
    stack.push(...commits.get(sha)!.parents);
  }
  return seen;
}
