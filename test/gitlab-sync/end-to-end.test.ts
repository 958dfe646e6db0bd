/**
 * GitLab end to end on the local test stack: connect through the OAuth round trip against the
 * fake → POST /v1/connections/{id}/sync → the synthesized state machine runs (a partition per
 * project) → the graph holds the groups, projects, branches, commits, directories and files,
 * issues, merge requests, pipelines and jobs, people and packages with their edges → a no-change
 * incremental pass is all 304s and writes nothing → edits on the fake → an incremental pass picks
 * them up → a full pass sweeps what is gone and keeps a shared node's other source → DELETE
 * leaves nothing of the connection. Then a self-managed instance under /gitlab, the same way.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { GraphStore } from '#graph/store.ts';
import { configureSync, resetSyncSettings, syncSettings } from '#sync/settings.ts';
import { GitLabIds } from '../../functions/connectors/gitlab/ids.ts';
import { generateGitLabGroup, startGitLabFake, type GitLabFake } from '../fakes/gitlab.ts';
import { startTestApi, type TestApi } from '../support/api.ts';
import { disconnectAndWait, graphReader, syncAndWait as syncThroughApi } from '../support/api-sync.ts';
import { connectGitLabViaOAuth, gitlabOAuthEnv } from './support.ts';

const SELF_MANAGED_CLIENT_ID = 'self-managed-application-id-0123456789';
const SELF_MANAGED_CLIENT_SECRET = 'gloas-self-managed-secret-0123456789abcdef';

let api: TestApi;
let gitlab: GitLabFake;
let acme: string;
let graph: GraphStore;
let restoreEnv: () => void;
let connectionId: string;
let sharedConnectionId: string;
/** Every upstream answer the syncs got (the slice's fetch, wrapped): URL and status. */
const answers: { url: string; status: number }[] = [];

beforeAll(async () => {
  // acme/svc-000, acme/svc-001 and acme/platform/svc-002.
  gitlab = await startGitLabFake({ model: generateGitLabGroup({ seed: 17, projects: 3, files: 16, commits: 12, issues: 6, mergeRequests: 3, pipelines: 2, jobsPerPipeline: 3 }) });
  // svc-000 and svc-001 declare is-even (no source imports it); svc-002 does not.
  for (const path of ['acme/svc-000', 'acme/svc-001']) gitlab.pushCommit(path, { files: packageJson(path, 'is-even', '^1.0.0'), message: 'Add is-even' });
  restoreEnv = gitlabOAuthEnv(gitlab);
  api = await startTestApi();
  graph = new GraphStore(api.table);
  acme = await api.tokenFor('acme');
  const fetch = syncSettings().fetch;
  configureSync({
    fetch: async (url, init) => {
      const response = await fetch(url, init);
      answers.push({ url: String(url), status: response.status });
      return response;
    },
  });
}, 60_000);
afterAll(async () => {
  resetSyncSettings();
  await api?.close();
  await gitlab?.close();
  restoreEnv?.();
});

/** The project's package.json on its default branch with `dependency` set (or, with `undefined`, removed); the files to push. */
function packageJson(path: string, dependency: string, version: string | undefined): Record<string, string> {
  const repo = gitlab.project(path).repository!;
  const manifest = JSON.parse(repo.blobs.get(repo.commits.get(repo.branches.get('main')!)!.tree.get('package.json')!)!) as { dependencies: Record<string, string> };
  if (version === undefined) delete manifest.dependencies[dependency];
  else manifest.dependencies[dependency] = version;
  return { 'package.json': `${JSON.stringify(manifest, null, 2)}\n` };
}

const syncAndWait = (id: string, body: Record<string, unknown> = {}) => syncThroughApi(api, acme, id, body);
const { node, out, into } = graphReader(() => graph, 'acme');
const ids = (path: string) => new GitLabIds(gitlab.baseUrl, path);
const headOf = (path: string) => gitlab.project(path).repository!.branches.get('main')!;
const treeOf = (path: string) => gitlab.project(path).repository!.commits.get(headOf(path))!.tree;

/** GET /v1/graph/nodes, every page: the nodes of one type (or all) a connection contributes. */
async function nodesOf(source: string, type?: string): Promise<{ id: string; type: string }[]> {
  const items: { id: string; type: string }[] = [];
  let nextToken: string | undefined;
  do {
    const query = new URLSearchParams({ source, limit: '500', ...(type ? { type } : {}), ...(nextToken ? { nextToken } : {}) });
    const page = await api.call('GET', `/v1/graph/nodes?${query}`, { token: acme });
    expect(page.status).toBe(200);
    items.push(...(page.body.items as { id: string; type: string }[]));
    nextToken = page.body.nextToken;
  } while (nextToken);
  return items;
}

describe('GitLab, end to end through the API', () => {
  it('connect → sync → the graph holds the groups, projects, branches, commits, files, issues, merge requests, pipelines, jobs and people', async () => {
    ({ connectionId } = await connectGitLabViaOAuth(api, { projects: ['acme/svc-000', 'acme/platform/svc-002'] }));
    const sync = await syncAndWait(connectionId);
    expect(sync).toMatchObject({ status: 'succeeded', mode: 'full', progress: { phase: 'done', done: 2, total: 2 }, stats: { nodesDeleted: 0 } });
    expect(sync.stats.requests).toBeGreaterThan(10);
    expect(sync.warnings).toBeUndefined();

    const i = ids('acme/svc-000');
    const i002 = ids('acme/platform/svc-002');
    const project = gitlab.project('acme/svc-000');
    const repo = project.repository!;
    const head = headOf('acme/svc-000');
    const headCommit = repo.commits.get(head)!;

    // Groups → subgroup → projects; the ids carry the instance (not GitLab.com).
    expect(i.repository()).toBe(`gitlab:repository:${new URL(gitlab.baseUrl).host}/acme/svc-000`);
    expect(await node(i.group('acme'))).toMatchObject({ type: 'organization', sources: [connectionId], props: { kind: 'group', fullPath: 'acme' } });
    expect(await out(i.group('acme'), 'CONTAINS')).toEqual([i.group('acme/platform'), i.repository()].sort());
    expect(await out(i.group('acme/platform'), 'CONTAINS')).toEqual([i002.repository()]);
    expect(await node(i.repository())).toMatchObject({ type: 'repository', sources: [connectionId], props: { projectId: project.id, defaultBranch: 'main', webUrl: `${gitlab.baseUrl}/acme/svc-000` } });
    // svc-001 is not selected.
    expect(await node(ids('acme/svc-001').repository())).toBeUndefined();

    // Branches and their heads (the open merge request's source branch too).
    expect(await out(i.repository(), 'HAS_BRANCH')).toEqual([i.branch('feature/change-1'), i.branch('main')]);
    expect(await node(i.branch('main'))).toMatchObject({ type: 'branch', props: { default: true, headSha: head } });
    expect(await out(i.branch('main'), 'HEAD')).toEqual([i.commit(head)]);
    expect(await out(i.branch('feature/change-1'), 'HEAD')).toEqual([i.commit(repo.branches.get('feature/change-1')!)]);

    // Every commit of the project (the default branch's history with a merge's side commit, and
    // the feature branch's head), linked to its parents and its author (by email).
    expect(await node(i.commit(head))).toMatchObject({ type: 'commit', props: { sha: head, title: 'Add is-even' } });
    expect(await out(i.commit(head), 'PARENT')).toEqual([i.commit(headCommit.parents[0]!)]);
    const merge = [...repo.commits.values()].find((commit) => commit.parents.length === 2)!;
    expect(await out(i.commit(merge.id), 'PARENT')).toEqual(merge.parents.map((parent) => i.commit(parent)).sort());
    expect((await nodesOf(connectionId, 'commit')).map((n) => n.id).filter((id) => id.startsWith(`gitlab:commit:${i.repoKey}/-/`)).sort()).toEqual([...repo.commits.keys()].map((sha) => i.commit(sha)).sort());
    expect(await into(i.commit(head), 'AUTHORED')).toEqual([i.email(headCommit.authorEmail)]);
    expect(await node(i.email(headCommit.authorEmail))).toMatchObject({ type: 'person', name: headCommit.authorName });

    // The file tree: every file of the head, in its directories.
    for (const path of treeOf('acme/svc-000').keys()) expect(await node(i.file(path))).toBeDefined();
    expect(await out(i.repository(), 'CONTAINS')).toEqual([i.directory('app'), i.directory('docs'), i.directory('src'), i.file('README.md'), i.file('package.json'), i.file('pyproject.toml')].sort());
    expect(await out(i.directory('src'), 'CONTAINS')).toEqual(expect.arrayContaining([i.directory('src/api'), i.directory('src/core')]));
    expect(await out(i.directory('src/api'), 'CONTAINS')).toContain(i.file('src/api/mod0.ts'));
    expect(await node(i.file('src/api/mod0.ts'))).toMatchObject({ type: 'file', props: { path: 'src/api/mod0.ts', sha: treeOf('acme/svc-000').get('src/api/mod0.ts') } });

    // Issues and merge requests: who opened them, which branch an MR targets, which issue it closes.
    expect(await out(i.repository(), 'HAS_ISSUE')).toEqual([1, 2, 3, 4, 5, 6].map((iid) => i.issue(iid)).sort());
    expect(await node(i.issue(3))).toMatchObject({ type: 'issue', props: { iid: 3, state: 'closed' } });
    const issueAuthor = project.issues!.find((issue) => issue.iid === 1)!.author;
    expect(await into(i.issue(1), 'AUTHORED')).toEqual([i.user(issueAuthor)]);
    expect(await node(i.user(issueAuthor))).toMatchObject({ type: 'person', props: { username: issueAuthor } });
    expect(await out(i.repository(), 'HAS_PULL_REQUEST')).toEqual([1, 2, 3].map((iid) => i.mergeRequest(iid)).sort());
    expect(await node(i.mergeRequest(1))).toMatchObject({ type: 'pull_request', props: { source: 'gitlab', state: 'opened', sourceBranch: 'feature/change-1', targetBranch: 'main' } });
    expect(await node(i.mergeRequest(2))).toMatchObject({ props: { state: 'merged' } });
    expect(await out(i.mergeRequest(1), 'TARGETS')).toEqual([i.branch('main')]);
    // "Closes #2" in MR 1's description, "This fixes #4 and implements acme/svc-000#4." in MR 2's.
    expect(project.mergeRequests![0]!.description).toBe('Closes #2');
    expect(await out(i.mergeRequest(1), 'CLOSES')).toEqual([i.issue(2)]);
    expect(await out(i.mergeRequest(2), 'CLOSES')).toEqual([i.issue(4)]);
    const mrAuthor = project.mergeRequests![0]!.author;
    expect(await out(i.user(mrAuthor), 'AUTHORED')).toContain(i.mergeRequest(1));

    // Pipelines on their commits, and their jobs.
    expect(project.pipelines).toHaveLength(2);
    for (const pipeline of project.pipelines!) {
      expect(await node(i.pipeline(pipeline.id))).toMatchObject({ type: 'pipeline', props: { status: pipeline.status, ref: 'main', sha: pipeline.sha } });
      expect(await out(i.pipeline(pipeline.id), 'RAN_ON')).toEqual([i.commit(pipeline.sha)]);
      expect(await node(i.commit(pipeline.sha))).toBeDefined();
      expect(await out(i.pipeline(pipeline.id), 'HAS_JOB')).toEqual(pipeline.jobs.map((job) => i.job(job.id)).sort());
    }
    const job = project.pipelines![0]!.jobs[0]!;
    expect(await node(i.job(job.id))).toMatchObject({ type: 'job', name: job.name, props: { stage: job.stage, status: job.status } });

    // Code: symbols of the files, imports, and the projects' dependencies.
    expect(await out(i.file('src/api/mod0.ts'), 'DEFINES')).toContain(`gitlab:symbol:${i.repoKey}/src/api/mod0.ts#handler0`);
    expect(await out(i.file('src/api/mod0.ts'), 'IMPORTS')).toEqual(['package:npm:express']);
    expect(await out(i.repository(), 'DEPENDS_ON')).toEqual(expect.arrayContaining(['package:npm:express', 'package:npm:is-even', 'package:pypi:requests']));
    expect(await out(i002.repository(), 'DEPENDS_ON')).not.toContain('package:npm:is-even');
    expect((await graph.edges('acme', i.repository(), { direction: 'out', type: 'DEPENDS_ON' })).find((e) => e.to === 'package:npm:is-even')?.props).toMatchObject({ version: '^1.0.0', scope: 'prod' });

    // The API shows it too.
    const viaApi = await api.call('GET', `/v1/graph/nodes/${encodeURIComponent(i002.repository())}`, { token: acme });
    expect(viaApi.body).toMatchObject({ type: 'repository', sources: [connectionId], props: { fullPath: 'acme/platform/svc-002' } });
    const jobs = await api.call('GET', `/v1/graph/nodes/${encodeURIComponent(i.pipeline(project.pipelines![1]!.id))}/edges?type=HAS_JOB`, { token: acme });
    expect((jobs.body.items as { to: string }[]).map((edge) => edge.to).sort()).toEqual(project.pipelines![1]!.jobs.map((j) => i.job(j.id)).sort());
  });

  it('an incremental pass with nothing changed is all 304s and writes nothing; then it picks up a new commit, a closed issue and a new pipeline', async () => {
    // The first incremental after a full pass asks with the incremental URLs (updated_after) once: no ETags for them yet.
    const first = await syncAndWait(connectionId, { mode: 'incremental' });
    expect(first).toMatchObject({ status: 'succeeded', mode: 'incremental', stats: { nodesUpserted: 0, edgesUpserted: 0 } });

    const before = answers.length;
    const quiet = await syncAndWait(connectionId, { mode: 'incremental' });
    // Per project: the project, its branches, issues, merge requests and pipelines, each asked
    // with If-None-Match and answered 304. GitLab (unlike GitHub) charges a 304 against the rate
    // limit, so these 5 per project are the floor: every one is counted as rate-limited.
    expect(quiet).toMatchObject({ status: 'succeeded', mode: 'incremental', stats: { requests: 10, rateLimitedRequests: 10, nodesUpserted: 0, edgesUpserted: 0 } });
    const quietAnswers = answers.slice(before);
    expect(quietAnswers).toHaveLength(10);
    expect(quietAnswers.filter((a) => a.status !== 304)).toEqual([]);
    const run = await api.call('GET', `/v1/connections/${connectionId}/syncs`, { token: acme });
    expect(run.body.items[0].id).toBe(quiet.id);

    const i = ids('acme/svc-000');
    const oldHead = headOf('acme/svc-000');
    const pushed = gitlab.pushCommit('acme/svc-000', { files: { 'src/api/feature.ts': 'export function feature(): string {\n  return "new";\n}\n' }, message: 'Add the feature', author: 'dev2' });
    gitlab.closeIssue('acme/svc-000', 1);
    const pipeline = gitlab.addPipeline('acme/svc-000', { status: 'running', jobs: 2 });

    const incremental = await syncAndWait(connectionId, { mode: 'incremental' });
    expect(incremental).toMatchObject({ status: 'succeeded', mode: 'incremental', stats: { nodesDeleted: 0 } });
    expect(incremental.warnings).toBeUndefined();
    expect(await node(i.commit(pushed.id))).toMatchObject({ props: { title: 'Add the feature', authorName: 'Developer 2' } });
    expect(await out(i.commit(pushed.id), 'PARENT')).toEqual([i.commit(oldHead)]);
    expect(await out(i.branch('main'), 'HEAD')).toContain(i.commit(pushed.id));
    expect(await node(i.branch('main'))).toMatchObject({ props: { headSha: pushed.id } });
    expect(await out(i.email('dev2@example.com'), 'AUTHORED')).toContain(i.commit(pushed.id));
    expect(await into(i.file('src/api/feature.ts'), 'CONTAINS')).toEqual([i.directory('src/api')]);
    expect(await out(i.file('src/api/feature.ts'), 'DEFINES')).toEqual([`gitlab:symbol:${i.repoKey}/src/api/feature.ts#feature`]);
    expect(await node(i.issue(1))).toMatchObject({ props: { state: 'closed' } });
    expect(await node(i.pipeline(pipeline.id))).toMatchObject({ props: { status: 'running', sha: pushed.id } });
    expect(await out(i.pipeline(pipeline.id), 'RAN_ON')).toEqual([i.commit(pushed.id)]);
    expect(await out(i.pipeline(pipeline.id), 'HAS_JOB')).toEqual(pipeline.jobs.map((job) => i.job(job.id)).sort());
    // The other project did not change: its branch still points at the same head.
    expect(await out(ids('acme/platform/svc-002').branch('main'), 'HEAD')).toEqual([ids('acme/platform/svc-002').commit(headOf('acme/platform/svc-002'))]);
  });

  it('a full pass removes a deleted file and a dropped dependency, keeping the package node another connection still contributes', async () => {
    ({ connectionId: sharedConnectionId } = await connectGitLabViaOAuth(api, { projects: ['acme/svc-001'] }));
    expect((await syncAndWait(sharedConnectionId)).status).toBe('succeeded');
    expect((await node('package:npm:is-even'))?.sources.sort()).toEqual([connectionId, sharedConnectionId].sort());

    const i = ids('acme/svc-000');
    expect(await node(i.file('src/api/mod0.ts'))).toBeDefined();
    gitlab.pushCommit('acme/svc-000', { files: { ...packageJson('acme/svc-000', 'is-even', undefined), 'src/api/mod0.ts': null }, message: 'Drop is-even and mod0' });
    // A force-push rewrites svc-002's last two commits away.
    const i002 = ids('acme/platform/svc-002');
    const dropped = headOf('acme/platform/svc-002');
    const rewritten = gitlab.forcePush('acme/platform/svc-002', { drop: 2, files: { 'src/api/rewritten.ts': 'export const REWRITTEN = 1;\n' }, message: 'Rewrite the last two changes' });

    const full = await syncAndWait(connectionId, { mode: 'full' });
    expect(full).toMatchObject({ status: 'succeeded', mode: 'full' });
    expect(full.warnings).toBeUndefined();
    expect(full.stats.nodesDeleted).toBeGreaterThan(0);
    expect(await node(i.file('src/api/mod0.ts'))).toBeUndefined();
    expect(await node(`gitlab:symbol:${i.repoKey}/src/api/mod0.ts#handler0`)).toBeUndefined();
    expect(await out(i.directory('src/api'), 'CONTAINS')).not.toContain(i.file('src/api/mod0.ts'));
    expect(await node(i.file('src/api/feature.ts'))).toBeDefined();
    expect(await out(i.repository(), 'DEPENDS_ON')).not.toContain('package:npm:is-even');
    expect(await out(i.repository(), 'DEPENDS_ON')).toContain('package:npm:express');
    // The shared package stays, now from the other connection only.
    expect(await node('package:npm:is-even')).toMatchObject({ sources: [sharedConnectionId] });
    expect((await node('package:npm:express'))?.sources.sort()).toEqual([connectionId, sharedConnectionId].sort());
    // The rewritten history: the dropped head is gone, the new one is there.
    expect(await node(i002.commit(dropped))).toBeUndefined();
    expect(await node(i002.commit(rewritten.id))).toBeDefined();
    expect(await out(i002.branch('main'), 'HEAD')).toEqual([i002.commit(rewritten.id)]);
  });

  it("DELETE removes everything of the connection; the other connection's items stay", async () => {
    await disconnectAndWait(api, graph, 'acme', acme, connectionId);
    expect(await nodesOf(connectionId)).toEqual([]);
    const i = ids('acme/svc-000');
    expect(await node(i.repository())).toBeUndefined();
    expect(await node(i.group('acme/platform'))).toBeUndefined();
    // The group svc-001 is in, its project and the shared package: the other connection's only.
    expect(await node(i.group('acme'))).toMatchObject({ sources: [sharedConnectionId] });
    expect(await out(i.group('acme'), 'CONTAINS')).toEqual([ids('acme/svc-001').repository()]);
    expect(await node(ids('acme/svc-001').repository())).toMatchObject({ sources: [sharedConnectionId] });
    expect(await node('package:npm:is-even')).toMatchObject({ sources: [sharedConnectionId] });
  });
});

describe('a self-managed GitLab under /gitlab, end to end through the API', () => {
  let selfManaged: GitLabFake;
  beforeAll(async () => {
    selfManaged = await startGitLabFake({
      pathPrefix: '/gitlab',
      clientId: SELF_MANAGED_CLIENT_ID,
      clientSecret: SELF_MANAGED_CLIENT_SECRET,
      version: '16.11.2',
      model: generateGitLabGroup({ seed: 5, group: 'infra', subgroup: 'k8s', projects: 3, files: 12, commits: 5, issues: 3, mergeRequests: 2, pipelines: 1, jobsPerPipeline: 2 }),
    });
  });
  afterAll(async () => {
    await selfManaged?.close();
  });

  it('registers the instance, connects, syncs: every id carries the instance and its path, the graph is populated', async () => {
    const comRequests = gitlab.apiRequests().length;
    const { connectionId: id, connection } = await connectGitLabViaOAuth(api, { baseUrl: selfManaged.baseUrl, clientId: SELF_MANAGED_CLIENT_ID, clientSecret: SELF_MANAGED_CLIENT_SECRET });
    const PROJECTS = ['infra/svc-000', 'infra/svc-001', 'infra/k8s/svc-002'];
    expect(connection).toMatchObject({ type: 'gitlab', config: { baseUrl: selfManaged.baseUrl, projects: PROJECTS } });
    const sync = await syncAndWait(id);
    expect(sync).toMatchObject({ status: 'succeeded', mode: 'full', progress: { phase: 'done', done: 3, total: 3 } });
    expect(sync.warnings).toBeUndefined();

    const instance = `${new URL(selfManaged.url).host}/gitlab`;
    const i = new GitLabIds(selfManaged.baseUrl, 'infra/k8s/svc-002');
    expect(i.repository()).toBe(`gitlab:repository:${instance}/infra/k8s/svc-002`);
    expect(await node(i.repository())).toMatchObject({ type: 'repository', sources: [id], props: { webUrl: `${selfManaged.baseUrl}/infra/k8s/svc-002` } });
    expect(await node(i.group('infra'))).toMatchObject({ type: 'organization', sources: [id] });
    expect(i.group('infra')).toBe(`gitlab:organization:${instance}/infra`);
    expect(await out(i.group('infra'), 'CONTAINS')).toEqual([i.group('infra/k8s'), ...['infra/svc-000', 'infra/svc-001'].map((path) => new GitLabIds(selfManaged.baseUrl, path).repository())].sort());
    expect(await out(i.group('infra/k8s'), 'CONTAINS')).toEqual([i.repository()]);

    const project = selfManaged.project('infra/k8s/svc-002');
    const head = project.repository!.branches.get('main')!;
    expect(await out(i.branch('main'), 'HEAD')).toEqual([i.commit(head)]);
    expect(i.commit(head)).toBe(`gitlab:commit:${instance}/infra/k8s/svc-002/-/commit/${head}`);
    for (const path of project.repository!.commits.get(head)!.tree.keys()) expect(await node(i.file(path))).toBeDefined();
    expect(await out(i.repository(), 'HAS_ISSUE')).toHaveLength(3);
    expect(await out(i.repository(), 'HAS_PULL_REQUEST')).toHaveLength(2);
    const pipeline = project.pipelines![0]!;
    expect(await out(i.pipeline(pipeline.id), 'RAN_ON')).toEqual([i.commit(pipeline.sha)]);
    expect(await out(i.pipeline(pipeline.id), 'HAS_JOB')).toEqual(pipeline.jobs.map((job) => i.job(job.id)).sort());
    const author = project.issues![0]!.author;
    expect(await into(i.issue(1), 'AUTHORED')).toEqual([`gitlab:person:${instance}/${author}`]);
    // Nothing of this connection is outside the instance's ids (emails and packages are global).
    const nodes = await nodesOf(id);
    expect(nodes.length).toBeGreaterThan(100);
    const foreign = nodes.filter((n) => n.id.startsWith('gitlab:') && !n.id.includes(`:${instance}/`) && !(n.type === 'person' && n.id.includes('@')));
    expect(foreign).toEqual([]);
    // Every request to the instance went under its relative URL root; none to the GitLab.com fake.
    expect(selfManaged.apiRequests().length).toBeGreaterThan(10);
    expect(selfManaged.apiRequests().every((r) => r.path.startsWith('/gitlab/api/v4/'))).toBe(true);
    expect(gitlab.apiRequests().length).toBe(comRequests);
  });
});
