/**
 * The GitHub REST client and the sync on api.github.com's own answers, as @octokit/fixtures
 * recorded them (node_modules/@octokit/fixtures/scenarios/api.github.com/<scenario>/normalized-fixture.json),
 * not on our fake's idea of them: the fake's shapes follow GitHub's reference, the recordings are
 * what GitHub sent.
 *
 * A replay server on loopback answers the recorded GET requests (their `https://api.github.com`
 * and `https://codeload.github.com` URLs, in Link / Location headers and in bodies, rewritten to
 * the loopback origins: codeload is a second server, another origin, as on GitHub). What nothing
 * recorded (branches, commits, trees, pull requests, the repositories of scenarios that did not
 * record one) is passed on to the GitHub fake, which holds small repositories of the same names.
 * The recordings' page sizes stand: `paginate-issues` was recorded with `per_page=3`, so the
 * sync's `per_page=100` listing gets pages of 3 and must follow every Link.
 *
 * Recordings used: get-repository, get-organization, paginate-issues, get-archive,
 * rename-repository (its GETs: the 301 and the moved repository) and errors (its 422 body, served
 * for an issues listing: the sync only reads).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { silentLogger } from '../support/sync-harness.ts';
import { analyzeRepositoryArchive, gitBlobSha } from '../../functions/code/index.ts';
import { readArchive } from '../../functions/code/archive.ts';
import { githubIds as ids } from '#connectors/github/ids.ts';
import { GitHubRequestError, GitHubRest } from '#connectors/github/rest.ts';
import { safeFetch } from '#platform/outbound.ts';
import { SyncStateStore } from '#platform/sync-state.ts';
import { requestSync } from '#sync/start-sync.ts';
import { startGitHubFake, type GitHubFake } from '../fakes/github.ts';
import { startHttpFake, type FakeReply, type HttpFake, type RecordedRequest } from '../fakes/http-fake.ts';
import { createSyncHarness, type SyncHarness } from '../support/sync-harness.ts';
import { githubConnection, githubEnv } from './support.ts';

const ORG = 'octokit-fixture-org';
const SCENARIOS = new URL('../../node_modules/@octokit/fixtures/scenarios/api.github.com/', import.meta.url);

/** One recorded exchange, as normalized-fixture.json holds it. */
interface Recorded {
  scope: string;
  method: string;
  path: string;
  status: number;
  response: unknown;
  responseIsBinary: boolean;
  headers: Record<string, string | number>;
}

function scenario(name: string): Recorded[] {
  return JSON.parse(readFileSync(new URL(`${name}/normalized-fixture.json`, SCENARIOS), 'utf8')) as Recorded[];
}

function recorded(name: string, method: string, path: string): Recorded {
  const found = scenario(name).find((entry) => entry.method.toUpperCase() === method && entry.path === path);
  if (!found) throw new Error(`${name} recorded no ${method} ${path}`);
  return found;
}

// What the recordings hold, read straight from them (the assertions compare against these).
const REPOSITORY = recorded('get-repository', 'GET', `/repos/${ORG}/hello-world`).response as {
  id: number;
  full_name: string;
  private: boolean;
  default_branch: string;
  archived: boolean;
  description: string | null;
  language: string | null;
  html_url: string;
  owner: { login: string; type: string; html_url: string };
};
const ORGANIZATION = recorded('get-organization', 'GET', `/orgs/${ORG}`).response as { login: string; id: number; type: string; html_url: string };
const ISSUE_PAGES = scenario('paginate-issues').map((entry) => ({ path: entry.path, link: String(entry.headers.link), issues: entry.response as { number: number; id: number; title: string; state: string; user: { login: string }; created_at: string; updated_at: string; closed_at: string | null; html_url: string; pull_request?: unknown }[] }));
const ISSUES = ISSUE_PAGES.flatMap((page) => page.issues);
const ARCHIVE = scenario('get-archive');
const VALIDATION = recorded('errors', 'POST', `/repos/${ORG}/errors/labels`);
const MOVED = recorded('rename-repository', 'GET', `/repos/${ORG}/rename-repository`);
const MOVED_TO = recorded('rename-repository', 'GET', '/repositories/1000').response as { id: number; full_name: string; html_url: string; default_branch: string };

const HOP_BY_HOP = new Set(['connection', 'content-length', 'transfer-encoding', 'keep-alive']);

/**
 * The replay: recorded GETs by path (and `page`), the rest passed on to the GitHub fake with the
 * replay's Host, so the fake's own Link and Location headers point back at the replay.
 */
async function startReplay(github: GitHubFake) {
  // Set once both servers listen.
  let origins = { api: '', codeload: '' };
  const rewrite = (text: string) => text.replaceAll('https://api.github.com', origins.api).replaceAll('https://codeload.github.com', origins.codeload);
  const answer = (entry: Recorded): FakeReply => {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(entry.headers)) if (!HOP_BY_HOP.has(name)) headers[name] = rewrite(String(value));
    if (entry.responseIsBinary) return { status: entry.status, headers, body: Buffer.from(String(entry.response), 'hex') };
    return { status: entry.status, headers, body: typeof entry.response === 'string' ? entry.response : rewrite(JSON.stringify(entry.response)) };
  };
  const key = (method: string, path: string, page: string | null) => `${method} ${path.replace(/^(\/repos\/[^/]+\/[^/]+\/tarball)\/.+$/, '$1/*')} page=${page ?? '1'}`;
  const routes = { api: new Map<string, Recorded>(), codeload: new Map<string, Recorded>() };
  const mount = (entry: Recorded, as: { method?: string; path?: string } = {}) => {
    const url = new URL(as.path ?? entry.path, 'http://x');
    routes[entry.scope.includes('codeload') ? 'codeload' : 'api'].set(key(as.method ?? entry.method.toUpperCase(), url.pathname, url.searchParams.get('page')), entry);
  };
  for (const name of ['get-repository', 'get-organization', 'paginate-issues', 'get-archive', 'rename-repository']) {
    for (const entry of scenario(name)) if (entry.method.toUpperCase() === 'GET') mount(entry);
  }
  // GitHub's validation failure, as the sync would meet it: on a listing it reads.
  mount(VALIDATION, { method: 'GET', path: `/repos/${ORG}/errors/issues` });

  const served: string[] = [];
  const lookup = (which: 'api' | 'codeload', request: RecordedRequest) => routes[which].get(key(request.method, request.path, request.query.get('page')));
  const api = await startHttpFake({
    options: {},
    errorReply: () => ({ status: 500 }),
    handle: (request) => {
      const entry = lookup('api', request);
      if (entry) {
        served.push(`${request.method} ${request.url}`);
        return answer(entry);
      }
      return forward(github.url, request);
    },
  });
  const codeload = await startHttpFake({
    options: {},
    errorReply: () => ({ status: 500 }),
    handle: (request) => {
      const entry = lookup('codeload', request);
      return entry ? answer(entry) : { status: 404, body: 'Not Found' };
    },
  });
  origins = { api: api.url, codeload: codeload.url };
  return { api, codeload, served, close: async () => Promise.all([api.close(), codeload.close()]) };
}

/** The request, as received, to the fake (same Host), and its answer back. */
function forward(target: string, request: RecordedRequest): Promise<FakeReply> {
  return new Promise((resolve, reject) => {
    const out = httpRequest(new URL(request.url, target), { method: request.method, headers: request.headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(response.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = Array.isArray(value) ? value.join(', ') : value;
        resolve({ status: response.statusCode ?? 502, headers, body: Buffer.concat(chunks) });
      });
    });
    out.on('error', reject);
    out.end(request.body);
  });
}

let github: GitHubFake;
let replay: Awaited<ReturnType<typeof startReplay>>;
let restoreEnv: () => void;
let token: string;

beforeAll(async () => {
  github = await startGitHubFake();
  // The fake's side of these repositories: what nothing recorded (branches, commits, trees, pulls).
  // hello-world's default branch is the recording's; get-archive holds the recorded archive's one file.
  github.model.repositories.push({ id: 1000, owner: ORG, name: 'hello-world', private: false, defaultBranch: REPOSITORY.default_branch });
  // The fake names an owner's account type from an installation on it (this one reaches no user).
  github.model.installations.push({ id: 1000, account: { id: ORGANIZATION.id, login: ORG, type: 'Organization' }, repositorySelection: 'all', repositories: [], users: [] });
  github.generate({ repos: ['hello-world', 'paginate-issues', 'get-archive', 'rename-repository', 'errors'].map((name) => `${ORG}/${name}`), files: 3, commits: 2, issues: 0, pulls: 0, branches: 0, seed: 7 });
  github.repo(`${ORG}/get-archive`).push('main', { files: { 'README.md': '# get-archive' }, delete: ['package.json', 'requirements.txt'] });
  replay = await startReplay(github);
  restoreEnv = githubEnv(github, { GITHUB_API_URL: replay.api.url });
  token = (await github.issueToken()).accessToken;
}, 60_000);
afterAll(async () => {
  await replay?.close();
  await github?.close();
  restoreEnv?.();
});

function client(): GitHubRest {
  return new GitHubRest({
    baseUrl: replay.api.url,
    fetch: (url, init) => safeFetch(url, init),
    tokens: { token: async () => token, renew: async () => undefined },
    logger: silentLogger,
    remainingMs: () => 60_000,
    countRateLimited: () => undefined,
    id: 'recorded',
    retryAfterBaseMs: 1,
  });
}

const requestsTo = (fake: HttpFake<object>, path: string) => fake.requests.filter((request) => request.path === path);

describe('the GitHub REST client on recorded api.github.com answers', () => {
  it('get-repository and get-organization: the JSON, its ETag, and our token and API version on the request', async () => {
    const rest = client();
    const repo = await rest.get<typeof REPOSITORY>(rest.url(`repos/${ORG}/hello-world`));
    expect(repo).toMatchObject({ notModified: false, status: 200, etag: '"00000000000000000000000000000000"', next: undefined });
    expect(repo?.notModified === false && repo.data).toMatchObject({ id: 1000, full_name: `${ORG}/hello-world`, default_branch: 'master', private: false, owner: { login: ORG, type: 'Organization' } });
    const org = await rest.get<typeof ORGANIZATION>(rest.url(`orgs/${ORG}`));
    expect(org?.notModified === false && org.data).toMatchObject({ login: ORG, id: 1000, type: 'Organization', html_url: `https://github.com/${ORG}` });
    const [sent] = requestsTo(replay.api, `/repos/${ORG}/hello-world`);
    expect(sent?.headers).toMatchObject({ authorization: `Bearer ${token}`, 'x-github-api-version': '2022-11-28', 'user-agent': expect.stringContaining('OpenTrace') });
  });

  it('paginate-issues: follows every recorded Link (rel="next" to /repositories/1000/issues?…&page=N) to the last page', async () => {
    const rest = client();
    const pages: string[] = [];
    const numbers: number[] = [];
    let url: string | undefined = rest.url(`repos/${ORG}/paginate-issues/issues?per_page=3`);
    while (url) {
      pages.push(new URL(url).pathname + new URL(url).search);
      const page: Awaited<ReturnType<typeof rest.get<typeof ISSUES>>> = await rest.get<typeof ISSUES>(url);
      if (!page || page.notModified) throw new Error('no page');
      numbers.push(...page.data.map((issue) => issue.number));
      url = page.next;
    }
    // GitHub's own next links name the repository by id, on api.github.com (rewritten to the replay).
    expect(ISSUE_PAGES[0]!.link).toContain('<https://api.github.com/repositories/1000/issues?per_page=3&page=2>; rel="next"');
    expect(pages).toEqual(ISSUE_PAGES.map((page) => page.path));
    expect(pages.slice(1)).toEqual([2, 3, 4, 5].map((n) => `/repositories/1000/issues?per_page=3&page=${n}`));
    expect(numbers).toEqual([13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
  });

  it('get-archive: the 302 is followed to codeload without the token, and the code analysis reads the real tarball', async () => {
    const rest = client();
    const before = replay.codeload.requests.length;
    const files: { path: string; text: string; sha: string }[] = [];
    const read = await readArchive(await rest.tarball(`${ORG}/get-archive`, 'main'), {
      file: async (entry) => {
        const bytes = await entry.read();
        files.push({ path: entry.path, text: bytes.toString('utf8'), sha: gitBlobSha(bytes) });
      },
      warn: (code, detail) => files.push({ path: `warning ${code}`, text: detail, sha: '' }),
    });
    // `octokit-fixture-org-get-archive-0000000/` is GitHub's top folder: stripped.
    expect(files).toEqual([{ path: 'README.md', text: '# get-archive', sha: gitBlobSha(Buffer.from('# get-archive')) }]);
    expect(read).toMatchObject({ complete: true, files: 1 });
    const downloads = replay.codeload.requests.slice(before);
    // Where the recorded 302 pointed (`https://codeload.github.com/…/legacy.tar.gz/refs/heads/main`), on the codeload server.
    expect(ARCHIVE.map((entry) => [entry.scope, entry.status])).toEqual([['https://api.github.com:443', 302], ['https://codeload.github.com:443', 200]]);
    expect(downloads.map((request) => request.path)).toEqual([new URL(String(ARCHIVE[0]!.headers.location)).pathname]);
    expect(downloads[0]?.path).toBe(`/${ORG}/get-archive/legacy.tar.gz/refs/heads/main`);
    expect(downloads[0]?.headers.authorization).toBeUndefined();

    // The analysis the sync runs, on the same stream: it reads the archive to its end; a README is no code.
    const written: string[] = [];
    const result = await analyzeRepositoryArchive({
      repository: { source: 'github', repoKey: `${ORG}/get-archive` },
      archive: await rest.tarball(`${ORG}/get-archive`, 'main'),
      graph: { upsertNode: async (node) => void written.push(node.id), upsertEdge: async (edge) => void written.push(`${edge.from} ${edge.type} ${edge.to}`) },
    });
    expect(result).toMatchObject({ complete: true, files: [], warnings: [], stats: { entries: 2, files: 1, ignored: 1, parsed: 0 } });
    expect(written).toEqual([]);
  });

  it('errors: GitHub\'s 422 "Validation Failed" body gives a message that names the request and what GitHub refused, and no token', async () => {
    const rest = client();
    const error = await rest.get(rest.url(`repos/${ORG}/errors/issues?state=all`)).catch((failure: unknown) => failure);
    expect(error).toBeInstanceOf(GitHubRequestError);
    expect((error as GitHubRequestError).status).toBe(422);
    expect((error as Error).message).toBe(`GitHub answered 422 for /repos/${ORG}/errors/issues (GitHub said: Validation Failed — Label.color: invalid).`);
    expect((error as Error).message).not.toContain(token);
    // A 422 is not retried.
    expect(requestsTo(replay.api, `/repos/${ORG}/errors/issues`)).toHaveLength(1);
  });

  it('rename-repository: the 301 for a moved repository is followed, with the token, to /repositories/1000', async () => {
    const rest = client();
    const before = replay.api.requests.length;
    const moved = await rest.get<typeof MOVED_TO>(rest.url(`repos/${ORG}/rename-repository`));
    expect(MOVED.status).toBe(301);
    expect(moved).toMatchObject({ notModified: false, status: 200, data: { id: 1000, full_name: `${ORG}/rename-repository-newname` } });
    const sent = replay.api.requests.slice(before);
    expect(sent.map((request) => request.path)).toEqual([`/repos/${ORG}/rename-repository`, '/repositories/1000']);
    expect(sent[1]?.headers.authorization).toBe(`Bearer ${token}`);
  });
});

describe('the GitHub sync on recorded api.github.com answers', () => {
  let h: SyncHarness;
  beforeAll(async () => {
    h = await createSyncHarness({ integrationTypes: ['github'], connectors: [] });
  });
  afterAll(async () => {
    await h?.close();
  });

  async function sync(repositories: string[]) {
    const connection = await githubConnection(h, github, repositories.map((name) => `${ORG}/${name}`));
    const { accessToken } = (await h.secrets.get(h.tenantId, connection.secretName!)) as { accessToken: string };
    const servedFrom = replay.served.length;
    h.clock.advance(1000);
    const run = await requestSync({ tenantId: h.tenantId, connectionId: connection.id, mode: 'full' });
    await h.runner.idle();
    return { connectionId: connection.id, accessToken, served: replay.served.slice(servedFrom), run: await h.run(run.id) };
  }
  const node = (id: string) => h.graph.getNode(h.tenantId, id);
  const out = async (from: string, type: string) => (await h.graph.edges(h.tenantId, from, { direction: 'out', type })).map((edge) => edge.to).sort();

  // Two connections: the repositories whose own GET the fake answers first, then those whose
  // repository answer was recorded, so the organization node (every partition writes it; the
  // newest contribution's props win) ends up as the recordings describe it.
  let synced: Awaited<ReturnType<typeof sync>>;
  let recordedRepos: Awaited<ReturnType<typeof sync>>;
  beforeAll(async () => {
    synced = await sync(['paginate-issues', 'get-archive']);
    recordedRepos = await sync(['hello-world', 'rename-repository']);
  }, 120_000);

  it('runs to the end on the recorded answers', () => {
    for (const { run } of [synced, recordedRepos]) {
      expect(run.error).toBeUndefined();
      expect(run).toMatchObject({ status: 'succeeded', partitions: { total: 2, done: 2, failed: 0 } });
      expect(run.warnings ?? []).toEqual([]);
    }
  });

  it('get-repository: the repository node and its organization come from the recorded answer', async () => {
    const fullName = `${ORG}/hello-world`;
    expect(await node(ids.repository(fullName))).toMatchObject({
      type: 'repository',
      name: REPOSITORY.full_name,
      props: { fullName: REPOSITORY.full_name, owner: REPOSITORY.owner.login, private: false, defaultBranch: 'master', archived: false, url: REPOSITORY.html_url, source: 'github' },
    });
    const repoProps = (await node(ids.repository(fullName)))!.props;
    // `description` and `language` are null in the recording: left out, not "null".
    expect(repoProps).not.toHaveProperty('description');
    expect(repoProps).not.toHaveProperty('language');
    // get-organization: the organization GET /orgs/{org} answers is the owner the repository names.
    expect(ORGANIZATION).toMatchObject({ login: REPOSITORY.owner.login, type: REPOSITORY.owner.type, html_url: REPOSITORY.owner.html_url });
    const org = ids.organization(ORGANIZATION.login);
    expect(await node(org)).toMatchObject({ type: 'organization', name: ORGANIZATION.login, props: { login: ORGANIZATION.login, accountType: ORGANIZATION.type, url: ORGANIZATION.html_url } });
    expect(await out(org, 'CONTAINS')).toEqual([`${ORG}/get-archive`, `${ORG}/hello-world`, `${ORG}/paginate-issues`, `${ORG}/rename-repository`].map((name) => ids.repository(name)));
    // The recorded default branch picks the default among the fake's branches.
    expect(await node(ids.branch(fullName, 'master'))).toMatchObject({ props: { default: true } });
  });

  it('paginate-issues: all five recorded pages are read and each of the 13 issues arrives with the recorded fields', async () => {
    const fullName = `${ORG}/paginate-issues`;
    const listed = synced.served.filter((line) => line.includes('/issues'));
    expect(listed).toEqual([
      `GET /repos/${fullName}/issues?state=all&sort=updated&direction=desc&per_page=100`,
      ...[2, 3, 4, 5].map((n) => `GET /repositories/1000/issues?per_page=3&page=${n}`),
    ]);
    const issueIds = (await h.nodeIdsOf(synced.connectionId)).filter((id) => id.startsWith(`github:issue:${fullName}#`));
    expect(issueIds.sort()).toEqual(ISSUES.map((issue) => ids.issue(fullName, issue.number)).sort());
    expect(issueIds).toHaveLength(13);
    for (const issue of ISSUES) {
      const id = ids.issue(fullName, issue.number);
      expect(await node(id)).toMatchObject({
        type: 'issue',
        name: `Test issue ${issue.number}`,
        props: { number: issue.number, title: issue.title, state: 'open', createdAt: issue.created_at, updatedAt: issue.updated_at, url: `https://github.com/${fullName}/issues/${issue.number}`, repository: fullName },
      });
      expect((await node(id))!.props).not.toHaveProperty('closedAt');
      expect((await node(id))!.props).not.toHaveProperty('labels');
    }
    expect(await out(ids.repository(fullName), 'HAS_ISSUE')).toEqual(ISSUES.map((issue) => ids.issue(fullName, issue.number)).sort());
    const author = ids.person('octokit-fixture-user-a');
    expect(await node(author)).toMatchObject({ type: 'person', name: 'octokit-fixture-user-a', props: { login: 'octokit-fixture-user-a' } });
    expect(await out(author, 'AUTHORED')).toEqual(ISSUES.map((issue) => ids.issue(fullName, issue.number)).sort());
    // Real issues carry no `pull_request` key: none is taken for a pull request.
    expect(ISSUES.some((issue) => 'pull_request' in issue)).toBe(false);
    expect((await h.nodeIdsOf(synced.connectionId)).filter((id) => id.startsWith(`github:pull_request:${fullName}`))).toEqual([]);
  });

  it('get-archive: the code phase downloads the recorded tarball via codeload and finishes its analysis', async () => {
    const fullName = `${ORG}/get-archive`;
    expect(synced.served.filter((line) => line.includes('/tarball/'))).toEqual([`GET /repos/${fullName}/tarball/${github.repo(fullName).branches.get('main')}`]);
    const state = await new SyncStateStore(h.table).get(h.tenantId, synced.connectionId, `repo:${fullName}`);
    // Set only for a complete analysis of a non-empty archive.
    expect(state?.analyzedSha).toBe(github.repo(fullName).branches.get('main'));
    expect(synced.run.warnings ?? []).toEqual([]);
    // The tree the fake lists holds the archive's one file, with git's SHA of the recorded bytes.
    expect(await node(ids.file(fullName, 'README.md'))).toMatchObject({ props: { path: 'README.md', size: 13, sha: gitBlobSha(Buffer.from('# get-archive')) } });
    // A README is no code: no symbol, no package.
    expect((await h.nodeIdsOf(synced.connectionId)).filter((id) => id.startsWith(`github:symbol:${fullName}/`))).toEqual([]);
    expect(await out(ids.repository(fullName), 'DEPENDS_ON')).toEqual([]);
  });

  it('rename-repository: the sync follows the 301 and reads the moved repository', async () => {
    const fullName = `${ORG}/rename-repository`;
    expect(recordedRepos.served).toEqual(expect.arrayContaining([`GET /repos/${fullName}`, 'GET /repositories/1000']));
    expect(await node(ids.repository(fullName))).toMatchObject({ props: { url: MOVED_TO.html_url, defaultBranch: MOVED_TO.default_branch } });
  });

  it('errors: a 422 with GitHub\'s real body fails the repository with a message a user can act on, without the token', async () => {
    const { run, accessToken } = await sync(['errors']);
    expect(run.status).toBe('failed');
    const text = JSON.stringify(run);
    expect(text).toContain('Validation Failed — Label.color: invalid');
    expect(text).not.toContain(accessToken);
    expect(run).toMatchObject({ partitionFailures: [expect.objectContaining({ message: expect.stringContaining(`422 for /repos/${ORG}/errors/issues`) })] });
  }, 60_000);
});
