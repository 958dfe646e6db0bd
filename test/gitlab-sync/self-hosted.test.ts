/**
 * A self-managed GitLab under a relative URL root (`/gitlab`) on another port, with its own OAuth
 * application: connected through the hosted API (connectGitLabViaOAuth: register the instance,
 * the OAuth round trip), then synced. Ids carry the instance; every request goes to that
 * instance; its token is refreshed at its own token endpoint. Also GitLab.com's archive limit.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { GitLabIds } from '../../functions/connectors/gitlab/ids.ts';
import { generateGitLabGroup, startGitLabFake, type GitLabFake } from '../fakes/gitlab.ts';
import { startTestApi, type TestApi } from '../support/api.ts';
import { connectGitLabViaOAuth, gitlabOAuthEnv, startGitLabSyncHarness, TestClock, type GitLabSyncHarness } from './support.ts';

const CLIENT_ID = 'self-managed-application-id-0123456789';
const CLIENT_SECRET = 'gloas-self-managed-secret-0123456789abcdef';

let gitlabCom: GitLabFake;
let selfManaged: GitLabFake;
let api: TestApi;
let restoreEnv: () => void;
const clock = new TestClock();

beforeAll(async () => {
  gitlabCom = await startGitLabFake({ now: clock.ms });
  selfManaged = await startGitLabFake({
    now: clock.ms,
    pathPrefix: '/gitlab',
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    version: '15.11.13',
    treeKeyset: false,
    model: generateGitLabGroup({ seed: 3, group: 'infra', subgroup: 'k8s', projects: 3, files: 130, commits: 12, issues: 6, mergeRequests: 3, pipelines: 2 }),
  });
  restoreEnv = gitlabOAuthEnv(gitlabCom);
  api = await startTestApi();
});

afterAll(async () => {
  await api?.close();
  await gitlabCom.close();
  await selfManaged.close();
  restoreEnv();
});

describe('a self-managed instance under /gitlab', () => {
  let h: GitLabSyncHarness;
  const ids = (path: string) => new GitLabIds(selfManaged.baseUrl, path);

  beforeAll(async () => {
    const { connectionId, connection } = await connectGitLabViaOAuth(api, { baseUrl: selfManaged.baseUrl, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
    expect(connection).toMatchObject({ type: 'gitlab', config: { baseUrl: selfManaged.baseUrl, gitlabVersion: '15.11.13', projects: ['infra/svc-000', 'infra/svc-001', 'infra/k8s/svc-002'] } });
    h = await startGitLabSyncHarness({ existingFake: selfManaged, table: api.table, secrets: api.secrets, connectionId, clock });
  });

  it('syncs end to end with ids that carry the instance, every request to that instance', async () => {
    const comBefore = gitlabCom.apiRequests().length;
    const report = await h.pass('full');
    expect(report.partitions).toEqual(['infra/svc-000', 'infra/svc-001', 'infra/k8s/svc-002']);
    expect(report.incomplete).toEqual({});
    const i = ids('infra/k8s/svc-002');
    expect(i.repository()).toBe(`gitlab:repository:${new URL(selfManaged.url).host}/gitlab/infra/k8s/svc-002`);
    expect(await h.node(i.repository())).toMatchObject({ props: { webUrl: `${selfManaged.baseUrl}/infra/k8s/svc-002` } });
    expect(await h.out(i.group('infra/k8s'), 'CONTAINS')).toEqual([i.repository()]);
    expect(await h.out(i.group('infra'), 'CONTAINS')).toContain(i.group('infra/k8s'));
    const project = selfManaged.project('infra/k8s/svc-002');
    const head = project.repository!.branches.get('main')!;
    expect(await h.out(i.branch('main'), 'HEAD')).toEqual([i.commit(head)]);
    for (const path of project.repository!.commits.get(head)!.tree.keys()) expect(await h.node(i.file(path))).toBeDefined();
    expect(await h.out(i.repository(), 'HAS_ISSUE')).toHaveLength(6);
    expect(await h.out(i.repository(), 'HAS_PULL_REQUEST')).toHaveLength(3);
    expect(await h.out(i.pipeline(project.pipelines![0]!.id), 'HAS_JOB')).toHaveLength(3);
    const author = project.issues![0]!.author;
    expect(await h.into(i.issue(1), 'AUTHORED')).toEqual([`gitlab:person:${new URL(selfManaged.url).host}/gitlab/${author}`]);
    // Through the relative URL root only, and nothing to GitLab.com.
    expect(selfManaged.apiRequests().every((r) => r.path.startsWith('/gitlab/api/v4/'))).toBe(true);
    expect(gitlabCom.apiRequests().length).toBe(comBefore);
    // An instance without keyset trees: asked for keyset, answered with page numbers, followed by number.
    const trees = selfManaged.apiRequests().filter((r) => r.path.endsWith('/repository/tree'));
    expect(trees[0]!.query.get('pagination')).toBe('keyset');
    expect(trees.some((r) => r.query.get('page') === '2')).toBe(true);
  });

  it("refreshes an expired token at the instance's own token endpoint, under the lease, and completes", async () => {
    const comRefreshes = gitlabCom.oauth.stats.refreshes;
    clock.advance(3 * 3600_000);
    selfManaged.pushCommit('infra/svc-000', { files: { 'src/api/added.ts': 'export const ADDED = 1;\n' }, message: 'Add a constant' });
    const report = await h.pass('incremental');
    expect(selfManaged.oauth.stats.refreshes).toBe(1);
    expect(gitlabCom.oauth.stats.refreshes).toBe(comRefreshes);
    expect(report.incomplete).toEqual({});
    expect(await h.node(ids('infra/svc-000').file('src/api/added.ts'))).toBeDefined();
  });
});

describe("GitLab.com's archive limit (5 per minute)", () => {
  it('the sync spaces its archive downloads (as it does on GitLab.com): the wait goes back to the state machine before any 429', async () => {
    const fake = await startGitLabFake({ now: clock.ms, archivesPerMinute: 5, model: generateGitLabGroup({ seed: 6, projects: 7, subgroup: false, files: 6, commits: 3, issues: 1, mergeRequests: 1, pipelines: 1 }) });
    try {
      const h = await startGitLabSyncHarness({ existingFake: fake, clock, sync: { archivesPerMinute: 5 } });
      const report = await h.pass('full', { sequential: true });
      expect(fake.stats.throttled).toBe(0);
      expect(report.waits).toEqual([60]);
      expect(fake.apiRequests().filter((r) => r.path.endsWith('/archive.tar.gz'))).toHaveLength(7);
      expect(report.incomplete).toEqual({});
    } finally {
      await fake.close();
    }
  });

  it('the 6th archive within a minute is refused with Retry-After: the wait goes back to the state machine, then the sync completes', async () => {
    const fake = await startGitLabFake({ now: clock.ms, archivesPerMinute: 5, model: generateGitLabGroup({ seed: 5, projects: 7, subgroup: false, files: 6, commits: 3, issues: 1, mergeRequests: 1, pipelines: 1 }) });
    try {
      const h = await startGitLabSyncHarness({ existingFake: fake, clock });
      const report = await h.pass('full', { sequential: true });
      expect(report.partitions).toHaveLength(7);
      expect(fake.stats.throttled).toBe(1);
      expect(report.waits).toHaveLength(1);
      expect(report.waits[0]).toBeGreaterThan(10);
      expect(report.waits[0]).toBeLessThanOrEqual(60);
      expect(fake.apiRequests().filter((r) => r.path.endsWith('/archive.tar.gz'))).toHaveLength(8);
      expect(report.incomplete).toEqual({});
      for (const project of fake.model.projects) {
        const i = new GitLabIds(fake.baseUrl, `${project.namespace}/${project.path}`);
        expect(await h.out(i.file('src/api/mod0.ts'), 'DEFINES')).toContain(`gitlab:symbol:${i.repoKey}/src/api/mod0.ts#handler0`);
      }
    } finally {
      await fake.close();
    }
  });
});
