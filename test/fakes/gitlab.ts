/**
 * A fake GitLab (GitLab.com or a self-managed instance, optionally under a relative URL root
 * such as `/gitlab`) for tests, the bench and the local walkthrough, shaped like GitLab's
 * documented API.
 *
 * OAuth (test/fakes/oauth-fake.ts): GET /oauth/authorize (PKCE S256 required; redirects back
 * with code + state, or error=access_denied when `authorize: 'deny'`), POST /oauth/token
 * (authorization_code with code_verifier, refresh_token; 2 h access tokens; every refresh
 * rotates the refresh token: a used one answers 400 invalid_grant, as does every request while
 * `fake.oauth.failRefreshes` > 0; `fake.oauth.stats.refreshes` counts refresh requests,
 * `fake.oauth.gate` holds token requests), GET /.well-known/openid-configuration.
 *
 * REST v4 (Bearer token; 401 `{"message":"401 Unauthorized"}`, or invalid_token "Token is
 * expired" for an expired one):
 * - GET /version, /user, /projects (`membership`, `archived`, `simple`; page numbers or
 *   `pagination=keyset` with `id_after`), /projects/{id or url-encoded path}, /groups/{id or path};
 * - repository: /projects/:id/repository/branches, …/commits (`ref_name` = branch, SHA or
 *   revision range `a..b`; `since`; newest first, no X-Total as on GitLab), …/commits/:sha,
 *   …/tree (`recursive`, `ref`; `pagination=keyset` with an opaque `page_token` in the Link
 *   header, or page numbers when `treeKeyset: false`, like an instance without keyset trees),
 *   …/archive.tar.gz?sha= (a real gzip tar, top folder `<path>-<sha>-<sha>/`);
 * - /projects/:id/issues and …/merge_requests (`updated_after` inclusive, `state`,
 *   `order_by`/`sort`), …/pipelines (`updated_after`, `order_by` id/updated_at), …/pipelines/:id/jobs,
 *   …/jobs (the project's jobs, newest first).
 * Lists page by number with X-Page / X-Per-Page / X-Next-Page / X-Prev-Page / X-Total /
 * X-Total-Pages and a Link header (next/first/last). Every API answer carries RateLimit-Limit /
 * -Remaining / -Reset / -Observed; JSON answers carry a weak ETag and a matching If-None-Match
 * gets 304 (which still counts against the limit, as on GitLab).
 *
 * Test levers: `throttleNext(n, { retryAfter, paths })` answers the next n API requests with 429
 * (with or without Retry-After and RateLimit headers), `rateLimit: { limit, windowSeconds }`
 * enforces a request quota per window (429 + Retry-After until the window resets),
 * `archivesPerMinute` (GitLab.com: 5) limits archive downloads, `treeKeyset`, `etags`, and the
 * base fake's `mode`/`modePaths`.
 *
 * The data is a model object (`fake.model`: users, groups, projects, each project with its
 * repository, issues, merge requests and pipelines) that tests change directly or through the
 * edit helpers (`pushCommit`, `forcePush`, `deleteFile`, `closeIssue`, `addIssue`,
 * `addMergeRequest`, `addPipeline`). `generateGitLabGroup({ projects, files, commits, … })`
 * builds a deterministic group of any size from a seed.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import tarStream, { type Header } from 'tar-stream';
import {
  bearerToken,
  html,
  reply,
  startHttpFake,
  type CommonFakeOptions,
  type FakeReply,
  type HttpFake,
  type RecordedRequest,
} from './http-fake.ts';
import { FakeOAuthServer, tokenParams, type FakeOAuthSettings } from './oauth-fake.ts';

export const DEFAULT_GITLAB_CLIENT_ID = 'fake-gitlab-application-id-0123456789abcdef';
export const DEFAULT_GITLAB_CLIENT_SECRET = 'gloas-fake-gitlab-client-secret-0123456789';

export interface FakeGitLabUser {
  id: number;
  username: string;
  name: string;
  /** The address their commits carry (default `<username>@example.com`). */
  email?: string;
}

export interface FakeGitLabGroup {
  id: number;
  path: string;
  name: string;
}

/** A tree: path → blob SHA (git's, so the sync's SHAs match what the archive's bytes hash to). */
export type FakeTree = Map<string, string>;

export interface FakeCommit {
  id: string;
  parents: string[];
  title: string;
  message: string;
  authorName: string;
  authorEmail: string;
  authoredDate: string;
  committedDate: string;
  tree: FakeTree;
}

export interface FakeRepository {
  commits: Map<string, FakeCommit>;
  /** Branch name → head commit SHA. */
  branches: Map<string, string>;
  protectedBranches: Set<string>;
  /** Blob SHA → content. */
  blobs: Map<string, string>;
}

export interface FakeIssue {
  id: number;
  iid: number;
  title: string;
  description: string;
  state: 'opened' | 'closed';
  /** Username. */
  author: string;
  labels: string[];
  createdAt: string;
  updatedAt: string;
  closedAt: string | null;
}

export interface FakeMergeRequest {
  id: number;
  iid: number;
  title: string;
  description: string;
  state: 'opened' | 'merged' | 'closed';
  author: string;
  sourceBranch: string;
  targetBranch: string;
  sha: string | null;
  mergeCommitSha: string | null;
  createdAt: string;
  updatedAt: string;
  mergedAt: string | null;
  closedAt: string | null;
}

export interface FakeJob {
  id: number;
  name: string;
  stage: string;
  status: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  duration: number | null;
}

export interface FakePipeline {
  id: number;
  iid: number;
  status: string;
  ref: string;
  sha: string;
  source: string;
  /** Username of who started it. */
  user: string;
  createdAt: string;
  updatedAt: string;
  jobs: FakeJob[];
}

export interface FakeGitLabProject {
  id: number;
  /** The group's full path (`acme` or `acme/platform`). */
  namespace: string;
  path: string;
  name: string;
  visibility: 'private' | 'internal' | 'public';
  defaultBranch: string;
  /** Usernames with access. */
  members: string[];
  archived?: boolean;
  description?: string;
  /** Absent: an empty repository (no branches, tree 404). */
  repository?: FakeRepository;
  /** Features switched off (`issues_enabled: false`…): their lists answer 403. Default: all on. */
  disabled?: { issues?: boolean; mergeRequests?: boolean; jobs?: boolean };
  issues?: FakeIssue[];
  mergeRequests?: FakeMergeRequest[];
  pipelines?: FakePipeline[];
}

export interface GitLabFakeModel {
  users: FakeGitLabUser[];
  groups: FakeGitLabGroup[];
  projects: FakeGitLabProject[];
  /** The data clock (epoch ms): what edits stamp as created/updated; each edit moves it on a minute. */
  time?: number;
}

export interface GitLabFakeOptions extends CommonFakeOptions {
  clientId?: string;
  clientSecret?: string;
  /** The user signed in at the authorize page (default `jdoe`). */
  username?: string;
  authorize?: 'approve' | 'deny';
  /** Access token lifetime (default 7,200 s). */
  accessTokenTtlSeconds?: number;
  /** A relative URL root (`/gitlab`) the instance is served under. */
  pathPrefix?: string;
  version?: string;
  /** The clock of the OAuth server and of rate-limit windows (default Date.now). */
  now?: () => number;
  /** The data to serve (default: `defaultGitLabModel()`). */
  model?: GitLabFakeModel;
  /** Keyset pagination of the repository tree (default true); false plays an instance that only pages by number. */
  treeKeyset?: boolean;
  /** Weak ETags on JSON answers and 304 on a matching If-None-Match (default true). */
  etags?: boolean;
  /** Enforce a request quota: `limit` API requests per `windowSeconds`, then 429 with Retry-After until the window resets. */
  rateLimit?: { limit: number; windowSeconds: number };
  /** Archive downloads allowed per minute (GitLab.com: 5); beyond, 429. Default: unlimited. */
  archivesPerMinute?: number;
}

export interface ThrottleOptions {
  /** Seconds sent as Retry-After; null or absent: no Retry-After header. */
  retryAfter?: number | null;
  /** Also leave out the RateLimit-* headers (GitLab sometimes sends neither). Default true when there is no Retry-After. */
  bare?: boolean;
  /** Only requests whose path (without the prefix) matches. */
  paths?: RegExp;
}

export interface GitLabFake extends HttpFake<GitLabFakeOptions> {
  model: GitLabFakeModel;
  oauth: FakeOAuthServer;
  /** The instance's base URL (with the path prefix). */
  baseUrl: string;
  /** API requests received (`/api/v4/…`), in order. */
  apiRequests(): RecordedRequest[];
  /** 429s answered (throttles, an exhausted quota, the archive limit). */
  stats: { throttled: number };
  /** Answers the next `count` API requests (matching `paths`) with 429. */
  throttleNext(count: number, options?: ThrottleOptions): void;
  /** Forgets throttles not used up yet. */
  clearThrottles(): void;
  project(path: string): FakeGitLabProject;
  pushCommit(path: string, change?: CommitChange): FakeCommit;
  forcePush(path: string, change?: CommitChange & { drop?: number }): FakeCommit;
  deleteFile(path: string, file: string): FakeCommit;
  closeIssue(path: string, iid: number): FakeIssue;
  addIssue(path: string, issue: Partial<FakeIssue> & { title: string }): FakeIssue;
  addMergeRequest(path: string, mr: Partial<FakeMergeRequest> & { title: string; sourceBranch: string }): FakeMergeRequest;
  addPipeline(path: string, pipeline?: Partial<Omit<FakePipeline, 'jobs'>> & { jobs?: number }): FakePipeline;
}

export interface CommitChange {
  branch?: string;
  /** path → new content, or null to delete the file. */
  files?: Record<string, string | null>;
  message?: string;
  /** Username of the author (default the first member). */
  author?: string;
}

// ---------------------------------------------------------------------------------------------
// Deterministic data

const GENERATED_EPOCH = Date.UTC(2025, 0, 6, 9, 0, 0);
const sha1 = (text: string) => createHash('sha1').update(text).digest('hex');
/** Git's blob id: sha1("blob <bytes>\0" + content). */
export const gitBlobSha = (content: string) => createHash('sha1').update(`blob ${Buffer.byteLength(content)}\0`).update(content).digest('hex');
const iso = (ms: number) => new Date(ms).toISOString();

/** mulberry32: a small seeded PRNG, so a seed always generates the same group. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]! };
}

const AREAS = ['api', 'core', 'billing', 'core/internal', 'util'];

/** Small source files in TypeScript and Python (and some that are no code), with real imports and a package.json. */
export function generatedFiles(count: number, projectPath: string): Record<string, string> {
  const files: Record<string, string> = {
    'README.md': `# ${projectPath}\n\nGenerated by the GitLab fake.\n`,
    'package.json': `${JSON.stringify({ name: projectPath.replace(/\//g, '-'), version: '1.0.0', type: 'module', dependencies: { express: '^4.19.2' }, devDependencies: { jest: '^29.7.0' } }, null, 2)}\n`,
    'pyproject.toml': `[project]\nname = "${projectPath.split('/').pop()}"\nversion = "0.1.0"\ndependencies = ["requests>=2.31"]\n`,
  };
  for (let i = 0; files && Object.keys(files).length < count; i++) {
    const area = AREAS[i % AREAS.length]!;
    switch (i % 3) {
      case 0:
        files[`src/${area}/mod${i}.ts`] = `import express from 'express';\n\nexport function handler${i}(input: string): string {\n  return input.trim() + '${i}';\n}\n\nexport class Service${i} {\n  run(): number {\n    return ${i};\n  }\n}\n\nexport const app${i} = express();\n`;
        break;
      case 1:
        files[`app/${area}/mod_${i}.py`] = `import requests\n\n\ndef compute_${i}(value):\n    return value * ${i}\n\n\nclass Worker${i}:\n    def run(self):\n        return compute_${i}(1)\n`;
        break;
      default:
        files[`docs/${area}/notes-${i}.md`] = `# Notes ${i}\n\nNothing to parse here.\n`;
    }
  }
  return files;
}

export interface ProjectDataOptions {
  files?: number;
  commits?: number;
  issues?: number;
  mergeRequests?: number;
  pipelines?: number;
  jobsPerPipeline?: number;
  /** Feature branches besides the default one (default: one per open merge request, at least 1). */
  seed?: number;
}

const userEmail = (user: FakeGitLabUser) => user.email ?? `${user.username}@example.com`;

/**
 * Repository, issues, merge requests and pipelines for one project. The default branch has a
 * linear history with a merge every 10 commits (whose side commit is dated before its parent, the
 * case that breaks `since`-based incremental syncs); open merge requests have a source branch.
 */
export function generateProjectData(project: FakeGitLabProject, users: FakeGitLabUser[], options: ProjectDataOptions = {}): void {
  const fullPath = `${project.namespace}/${project.path}`;
  const random = prng((options.seed ?? 1) * 7919 + project.id);
  const authors = users.length ? users : [{ id: 1, username: 'root', name: 'Administrator' }];
  const blobs = new Map<string, string>();
  const tree: FakeTree = new Map();
  for (const [path, content] of Object.entries(generatedFiles(options.files ?? 12, fullPath))) {
    const sha = gitBlobSha(content);
    blobs.set(sha, content);
    tree.set(path, sha);
  }
  const commits = new Map<string, FakeCommit>();
  const main: FakeCommit[] = [];
  const commitCount = Math.max(1, options.commits ?? 8);
  const makeCommit = (index: string, parents: string[], at: number, title: string): FakeCommit => {
    const author = random.pick(authors);
    const commit: FakeCommit = {
      id: sha1(`${project.id}:${index}:${title}`),
      parents,
      title,
      message: `${title}\n\nSigned-off-by: ${author.name} <${userEmail(author)}>\n`,
      authorName: author.name,
      authorEmail: userEmail(author),
      authoredDate: iso(at),
      committedDate: iso(at),
      tree,
    };
    commits.set(commit.id, commit);
    return commit;
  };
  for (let i = 0; i < commitCount; i++) {
    const at = GENERATED_EPOCH + i * 3_600_000;
    const parents = i === 0 ? [] : [main[i - 1]!.id];
    if (i % 10 === 9 && i >= 3) {
      // A merge: its side commit branched off two commits back and is dated before the previous commit.
      const side = makeCommit(`side-${i}`, [main[i - 3]!.id], at - 2.5 * 3_600_000, `Side work for ${i}`);
      parents.push(side.id);
    }
    main.push(makeCommit(`main-${i}`, parents, at, i === 0 ? 'Initial commit' : parents.length > 1 ? `Merge branch 'topic-${i}' into ${project.defaultBranch}` : `Change ${i} of ${project.path}`));
  }
  const branches = new Map<string, string>([[project.defaultBranch, main.at(-1)!.id]]);
  const last = GENERATED_EPOCH + commitCount * 3_600_000;

  const issueCount = options.issues ?? 5;
  const issues: FakeIssue[] = [];
  for (let iid = 1; iid <= issueCount; iid++) {
    const created = last + iid * 600_000;
    const closed = iid % 3 === 0;
    issues.push({
      id: project.id * 100_000 + iid,
      iid,
      title: `Issue ${iid} of ${project.path}`,
      description: iid % 4 === 0 ? `Related to #${Math.max(1, iid - 1)}.` : 'Something to fix.',
      state: closed ? 'closed' : 'opened',
      author: random.pick(authors).username,
      labels: iid % 2 ? ['bug'] : ['feature', 'backend'],
      createdAt: iso(created),
      updatedAt: iso(created + 60_000),
      closedAt: closed ? iso(created + 60_000) : null,
    });
  }

  const mrCount = options.mergeRequests ?? 3;
  const mergeRequests: FakeMergeRequest[] = [];
  for (let iid = 1; iid <= mrCount; iid++) {
    const created = last + issueCount * 600_000 + iid * 600_000;
    const state: FakeMergeRequest['state'] = iid % 3 === 1 ? 'opened' : iid % 3 === 2 ? 'merged' : 'closed';
    const sourceBranch = `feature/change-${iid}`;
    let sha: string | null = main.at(-1)!.id;
    if (state === 'opened') {
      const head = makeCommit(`feature-${iid}`, [main.at(-1)!.id], created - 300_000, `Work on change ${iid}`);
      branches.set(sourceBranch, head.id);
      sha = head.id;
    }
    const closes = issueCount > 0 ? ((iid * 2 - 1) % issueCount) + 1 : 0;
    mergeRequests.push({
      id: project.id * 100_000 + 50_000 + iid,
      iid,
      title: `Change ${iid} of ${project.path}`,
      description: closes ? (iid % 2 ? `Closes #${closes}` : `This fixes #${closes} and implements ${fullPath}#${closes}.`) : 'No issue.',
      state,
      author: random.pick(authors).username,
      sourceBranch,
      targetBranch: project.defaultBranch,
      sha,
      mergeCommitSha: state === 'merged' ? main.at(-1)!.id : null,
      createdAt: iso(created),
      updatedAt: iso(created + 120_000),
      mergedAt: state === 'merged' ? iso(created + 120_000) : null,
      closedAt: state === 'closed' ? iso(created + 120_000) : null,
    });
  }

  const pipelineCount = options.pipelines ?? 3;
  const jobsPer = options.jobsPerPipeline ?? 3;
  const pipelines: FakePipeline[] = [];
  for (let k = 1; k <= pipelineCount; k++) {
    const commit = main[Math.max(0, main.length - pipelineCount + k - 1)]!;
    const created = Date.parse(commit.committedDate) + 120_000;
    pipelines.push(makePipeline(project, k, commit.id, project.defaultBranch, k % 4 === 0 ? 'failed' : 'success', created, jobsPer, random.pick(authors).username));
  }

  project.repository = { commits, branches, protectedBranches: new Set([project.defaultBranch]), blobs };
  project.issues = issues;
  project.mergeRequests = mergeRequests;
  project.pipelines = pipelines;
}

const STAGES = ['build', 'test', 'deploy'];

function makePipeline(project: FakeGitLabProject, iid: number, sha: string, ref: string, status: string, created: number, jobs: number, user: string): FakePipeline {
  const id = project.id * 10_000 + iid;
  const list: FakeJob[] = [];
  for (let j = 0; j < jobs; j++) {
    const stage = STAGES[Math.min(j, STAGES.length - 1)]!;
    const finished = status === 'running' && j === jobs - 1 ? null : created + (j + 1) * 60_000;
    list.push({
      id: id * 100 + j,
      name: j < STAGES.length ? `${stage}-job` : `${stage}-job-${j}`,
      stage,
      status: status === 'failed' && j === jobs - 1 ? 'failed' : finished === null ? 'running' : 'success',
      createdAt: iso(created),
      startedAt: iso(created + j * 60_000),
      finishedAt: finished === null ? null : iso(finished),
      duration: finished === null ? null : 60,
    });
  }
  const updated = created + jobs * 60_000;
  return { id, iid, status, ref, sha, source: 'push', user, createdAt: iso(created), updatedAt: iso(updated), jobs: list };
}

export interface GenerateGroupOptions extends ProjectDataOptions {
  /** Projects in the group (every third one in the subgroup, when there is one). */
  projects: number;
  group?: string;
  /** A subgroup path under the group (default `platform`; false for none). */
  subgroup?: string | false;
  /** Usernames who are members of every project (default `jdoe`). */
  members?: string[];
  /** Authors besides the members (default 5). */
  developers?: number;
}

/** A generated group of any size (projects × files × commits × issues × merge requests × pipelines), the same for the same seed. */
export function generateGitLabGroup(options: GenerateGroupOptions): GitLabFakeModel {
  const group = options.group ?? 'acme';
  const subgroup = options.subgroup === false ? undefined : `${group}/${options.subgroup ?? 'platform'}`;
  const members = options.members ?? ['jdoe'];
  const users: FakeGitLabUser[] = [
    { id: 7, username: 'jdoe', name: 'Jane Doe', email: 'jane.doe@example.com' },
    { id: 8, username: 'rsmith', name: 'Robin Smith' },
  ];
  for (let d = 1; d <= (options.developers ?? 5); d++) users.push({ id: 100 + d, username: `dev${d}`, name: `Developer ${d}` });
  const groups: FakeGitLabGroup[] = [{ id: 70, path: group, name: group.charAt(0).toUpperCase() + group.slice(1) }];
  if (subgroup) groups.push({ id: 71, path: subgroup, name: 'Platform' });
  const projects: FakeGitLabProject[] = [];
  for (let i = 0; i < options.projects; i++) {
    const project: FakeGitLabProject = {
      id: 2000 + i,
      namespace: subgroup && i % 3 === 2 ? subgroup : group,
      path: `svc-${String(i).padStart(3, '0')}`,
      name: `Service ${i}`,
      visibility: 'private',
      defaultBranch: 'main',
      members,
      description: `Generated service ${i}.`,
    };
    generateProjectData(project, users, options);
    projects.push(project);
  }
  const latest = Math.max(GENERATED_EPOCH, ...projects.flatMap((p) => [...(p.issues ?? []), ...(p.mergeRequests ?? []), ...(p.pipelines ?? [])].map((x) => Date.parse(x.updatedAt))));
  return { users, groups, projects, time: latest + 3_600_000 };
}

/** jdoe, member of three acme projects (each with a small repository, issues, MRs and pipelines); one internal project jdoe is no member of. */
export function defaultGitLabModel(): GitLabFakeModel {
  const project = (id: number, namespace: string, path: string, members: string[], extra: Partial<FakeGitLabProject> = {}): FakeGitLabProject => ({
    id,
    namespace,
    path,
    name: path,
    visibility: 'private',
    defaultBranch: 'main',
    members,
    ...extra,
  });
  const model: GitLabFakeModel = {
    users: [
      { id: 7, username: 'jdoe', name: 'Jane Doe', email: 'jane.doe@example.com' },
      { id: 8, username: 'rsmith', name: 'Robin Smith' },
    ],
    groups: [
      { id: 70, path: 'acme', name: 'Acme' },
      { id: 71, path: 'acme/platform', name: 'Platform' },
    ],
    projects: [
      project(1001, 'acme', 'payments', ['jdoe', 'rsmith']),
      project(1002, 'acme', 'checkout', ['jdoe']),
      project(1003, 'acme/platform', 'deploy', ['jdoe'], { visibility: 'internal' }),
      project(1004, 'acme', 'hr-tools', ['rsmith']),
    ],
  };
  for (const p of model.projects) generateProjectData(p, model.users);
  model.time = GENERATED_EPOCH + 30 * 86_400_000;
  return model;
}

// ---------------------------------------------------------------------------------------------
// Edits between syncs

function findProject(model: GitLabFakeModel, path: string): FakeGitLabProject {
  const project = model.projects.find((p) => `${p.namespace}/${p.path}` === path || String(p.id) === path);
  if (!project) throw new Error(`the fake has no project ${path}`);
  return project;
}

function repositoryOf(project: FakeGitLabProject): FakeRepository {
  if (!project.repository) throw new Error(`${project.namespace}/${project.path} has an empty repository`);
  return project.repository;
}

/** Moves the data clock on a minute and answers the new time. */
function tick(model: GitLabFakeModel): string {
  model.time = (model.time ?? Date.now()) + 60_000;
  return iso(model.time);
}

function userNamed(model: GitLabFakeModel, username: string | undefined, project: FakeGitLabProject): FakeGitLabUser {
  const name = username ?? project.members[0] ?? 'jdoe';
  return model.users.find((u) => u.username === name) ?? { id: 0, username: name, name };
}

function commitOn(model: GitLabFakeModel, project: FakeGitLabProject, parent: string | undefined, change: CommitChange): FakeCommit {
  const repository = repositoryOf(project);
  const base = parent ? repository.commits.get(parent)?.tree : undefined;
  const tree: FakeTree = new Map(base ?? []);
  for (const [path, content] of Object.entries(change.files ?? {})) {
    if (content === null) tree.delete(path);
    else {
      const sha = gitBlobSha(content);
      repository.blobs.set(sha, content);
      tree.set(path, sha);
    }
  }
  const at = tick(model);
  const author = userNamed(model, change.author, project);
  const title = change.message ?? 'Update files';
  const commit: FakeCommit = {
    id: sha1(`${project.id}:${parent ?? ''}:${at}:${title}`),
    parents: parent ? [parent] : [],
    title,
    message: `${title}\n`,
    authorName: author.name,
    authorEmail: userEmail(author),
    authoredDate: at,
    committedDate: at,
    tree,
  };
  repository.commits.set(commit.id, commit);
  return commit;
}

export function pushCommit(model: GitLabFakeModel, path: string, change: CommitChange = {}): FakeCommit {
  const project = findProject(model, path);
  const repository = repositoryOf(project);
  const branch = change.branch ?? project.defaultBranch;
  const commit = commitOn(model, project, repository.branches.get(branch), change);
  repository.branches.set(branch, commit.id);
  return commit;
}

/** Rewrites a branch: drops its last `drop` commits (default 1) and puts a new commit on what is left. */
export function forcePush(model: GitLabFakeModel, path: string, change: CommitChange & { drop?: number } = {}): FakeCommit {
  const project = findProject(model, path);
  const repository = repositoryOf(project);
  const branch = change.branch ?? project.defaultBranch;
  let base = repository.branches.get(branch);
  for (let i = 0; i < (change.drop ?? 1) && base; i++) base = repository.commits.get(base)?.parents[0];
  const commit = commitOn(model, project, base, { message: 'Rewritten history', ...change });
  repository.branches.set(branch, commit.id);
  return commit;
}

export function closeIssue(model: GitLabFakeModel, path: string, iid: number): FakeIssue {
  const issue = findProject(model, path).issues?.find((i) => i.iid === iid);
  if (!issue) throw new Error(`${path} has no issue #${iid}`);
  const at = tick(model);
  Object.assign(issue, { state: 'closed', closedAt: at, updatedAt: at });
  return issue;
}

export function addIssue(model: GitLabFakeModel, path: string, input: Partial<FakeIssue> & { title: string }): FakeIssue {
  const project = findProject(model, path);
  project.issues ??= [];
  const iid = Math.max(0, ...project.issues.map((i) => i.iid)) + 1;
  const at = tick(model);
  const issue: FakeIssue = { id: project.id * 100_000 + iid, iid, description: '', state: 'opened', author: project.members[0] ?? 'jdoe', labels: [], createdAt: at, updatedAt: at, closedAt: null, ...input };
  project.issues.push(issue);
  return issue;
}

export function addMergeRequest(model: GitLabFakeModel, path: string, input: Partial<FakeMergeRequest> & { title: string; sourceBranch: string }): FakeMergeRequest {
  const project = findProject(model, path);
  project.mergeRequests ??= [];
  const iid = Math.max(0, ...project.mergeRequests.map((m) => m.iid)) + 1;
  const at = tick(model);
  const mr: FakeMergeRequest = {
    id: project.id * 100_000 + 50_000 + iid,
    iid,
    description: '',
    state: 'opened',
    author: project.members[0] ?? 'jdoe',
    targetBranch: project.defaultBranch,
    sha: project.repository?.branches.get(input.sourceBranch) ?? null,
    mergeCommitSha: null,
    createdAt: at,
    updatedAt: at,
    mergedAt: null,
    closedAt: null,
    ...input,
  };
  project.mergeRequests.push(mr);
  return mr;
}

export function addPipeline(model: GitLabFakeModel, path: string, input: Partial<Omit<FakePipeline, 'jobs'>> & { jobs?: number } = {}): FakePipeline {
  const project = findProject(model, path);
  project.pipelines ??= [];
  const iid = Math.max(0, ...project.pipelines.map((p) => p.iid)) + 1;
  const ref = input.ref ?? project.defaultBranch;
  const sha = input.sha ?? project.repository?.branches.get(ref) ?? '0'.repeat(40);
  const at = Date.parse(tick(model));
  const { jobs, ...rest } = input;
  const pipeline = { ...makePipeline(project, iid, sha, ref, input.status ?? 'success', at, jobs ?? 3, input.user ?? project.members[0] ?? 'jdoe'), ...rest };
  project.pipelines.push(pipeline);
  return pipeline;
}

// ---------------------------------------------------------------------------------------------
// The server

function gitlabError(status: number): FakeReply {
  switch (status) {
    case 401:
      return reply(401, { message: '401 Unauthorized' });
    case 403:
      return reply(403, { message: '403 Forbidden' });
    case 404:
      return reply(404, { message: '404 Not Found' });
    case 429:
      return reply(429, 'Retry later\n', { 'content-type': 'text/plain' });
    case 502:
    case 503:
      return html(status, '<!DOCTYPE html><html><head><title>GitLab is not responding (502)</title></head><body><h1>502</h1>Whoops, GitLab is taking too much time to respond.</body></html>');
    default:
      return reply(status, { message: '500 Internal Server Error' });
  }
}

function projectView(project: FakeGitLabProject, model: GitLabFakeModel, base: string, simple: boolean) {
  const fullPath = `${project.namespace}/${project.path}`;
  const group = model.groups.find((g) => g.path === project.namespace);
  const view: Record<string, unknown> = {
    id: project.id,
    description: project.description ?? null,
    name: project.name,
    path: project.path,
    path_with_namespace: fullPath,
    name_with_namespace: `${group?.name ?? project.namespace} / ${project.name}`,
    default_branch: project.repository ? project.defaultBranch : null,
    web_url: `${base}/${fullPath}`,
    http_url_to_repo: `${base}/${fullPath}.git`,
    namespace: { id: group?.id ?? 0, name: group?.name ?? project.namespace, path: project.namespace.split('/').pop(), kind: group ? 'group' : 'user', full_path: project.namespace, parent_id: null, web_url: `${base}/groups/${project.namespace}` },
    topics: [],
    created_at: '2024-01-15T10:00:00.000Z',
    last_activity_at: '2025-06-01T12:00:00.000Z',
  };
  if (!simple) {
    const off = project.disabled ?? {};
    Object.assign(view, {
      visibility: project.visibility,
      archived: project.archived ?? false,
      empty_repo: !project.repository,
      issues_enabled: !off.issues,
      merge_requests_enabled: !off.mergeRequests,
      jobs_enabled: !off.jobs,
      issues_access_level: off.issues ? 'disabled' : 'enabled',
      merge_requests_access_level: off.mergeRequests ? 'disabled' : 'enabled',
      builds_access_level: off.jobs ? 'disabled' : 'enabled',
    });
  }
  return view;
}

const userView = (model: GitLabFakeModel, username: string, base: string) => {
  const user = model.users.find((u) => u.username === username);
  return { id: user?.id ?? 0, username, name: user?.name ?? username, state: 'active', locked: false, avatar_url: null, web_url: `${base}/${username}` };
};

const commitView = (commit: FakeCommit, projectUrl: string) => ({
  id: commit.id,
  short_id: commit.id.slice(0, 8),
  created_at: commit.committedDate,
  parent_ids: commit.parents,
  title: commit.title,
  message: commit.message,
  author_name: commit.authorName,
  author_email: commit.authorEmail,
  authored_date: commit.authoredDate,
  committer_name: commit.authorName,
  committer_email: commit.authorEmail,
  committed_date: commit.committedDate,
  trailers: {},
  extended_trailers: {},
  web_url: `${projectUrl}/-/commit/${commit.id}`,
});

interface TreeEntry {
  id: string;
  name: string;
  type: 'tree' | 'blob';
  path: string;
  mode: string;
}

const treeEntriesCache = new WeakMap<FakeTree, TreeEntry[]>();
function treeEntries(tree: FakeTree): TreeEntry[] {
  let entries = treeEntriesCache.get(tree);
  if (entries) return entries;
  const dirs = new Set<string>();
  for (const path of tree.keys()) {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  entries = [
    ...[...dirs].map((path): TreeEntry => ({ id: sha1(`tree:${path}:${[...tree].filter(([p]) => p.startsWith(`${path}/`)).map(([p, s]) => `${p}=${s}`).join(',')}`), name: path.split('/').pop()!, type: 'tree', path, mode: '040000' })),
    ...[...tree].map(([path, sha]): TreeEntry => ({ id: sha, name: path.split('/').pop()!, type: 'blob', path, mode: '100644' })),
  ].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  treeEntriesCache.set(tree, entries);
  return entries;
}

/** Commits reachable from `tip` (parents followed), as a set. */
function reachable(repository: FakeRepository, tip: string | undefined): Set<string> {
  const seen = new Set<string>();
  const stack = tip ? [tip] : [];
  while (stack.length) {
    const sha = stack.pop()!;
    if (seen.has(sha)) continue;
    const commit = repository.commits.get(sha);
    if (!commit) continue;
    seen.add(sha);
    stack.push(...commit.parents);
  }
  return seen;
}

/** A branch name or a (prefix of a) commit SHA → the commit SHA. */
function resolveRef(repository: FakeRepository, ref: string): string | undefined {
  if (repository.branches.has(ref)) return repository.branches.get(ref);
  if (repository.commits.has(ref)) return ref;
  if (/^[0-9a-f]{7,40}$/.test(ref)) for (const sha of repository.commits.keys()) if (sha.startsWith(ref)) return sha;
  return undefined;
}

async function archiveOf(project: FakeGitLabProject, commit: FakeCommit): Promise<Buffer> {
  const repository = repositoryOf(project);
  const top = `${project.path}-${commit.id}-${commit.id}`;
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (chunk) => chunks.push(chunk as Buffer));
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  const mtime = new Date(commit.committedDate);
  const write = (header: Partial<Header> & { name: string }, body?: Buffer) =>
    new Promise<void>((resolve, reject) => {
      if (body === undefined) pack.entry(header, (error) => (error ? reject(error) : resolve()));
      else pack.entry(header, body, (error) => (error ? reject(error) : resolve()));
    });
  await write({ name: `${top}/`, type: 'directory', mtime });
  for (const entry of treeEntries(commit.tree)) {
    if (entry.type === 'tree') await write({ name: `${top}/${entry.path}/`, type: 'directory', mtime });
    else await write({ name: `${top}/${entry.path}`, mtime }, Buffer.from(repository.blobs.get(entry.id) ?? ''));
  }
  pack.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

const byTime = (field: 'createdAt' | 'updatedAt') => (a: { createdAt: string; updatedAt: string; id: number }, b: { createdAt: string; updatedAt: string; id: number }) =>
  Date.parse(a[field]) - Date.parse(b[field]) || a.id - b.id;

export async function startGitLabFake(options: GitLabFakeOptions = {}): Promise<GitLabFake> {
  const { model: givenModel, ...rest } = options;
  const opts: GitLabFakeOptions = { ...rest };
  const model = givenModel ?? defaultGitLabModel();
  const now = () => (opts.now ?? Date.now)();
  const prefix = (opts.pathPrefix ?? '').replace(/\/+$/, '');
  const settings = (): FakeOAuthSettings => ({
    apps: [{ clientId: opts.clientId ?? DEFAULT_GITLAB_CLIENT_ID, clientSecret: opts.clientSecret ?? DEFAULT_GITLAB_CLIENT_SECRET }],
    accessTokenTtlSeconds: opts.accessTokenTtlSeconds ?? 7200,
    refreshTokens: true,
    requirePkce: true,
    prefixes: { access: 'glpat-oauth-', refresh: 'glrt-' },
    now,
  });
  const oauth = new FakeOAuthServer(settings);
  const quota = { limit: 2000, remaining: 2000, windowEndsAt: 0 };
  const archiveTimes: number[] = [];
  const throttles: { count: number; options: ThrottleOptions }[] = [];
  const stats = { throttled: 0 };

  /** RateLimit-* headers; with `rateLimit` set, the quota is enforced (`exhausted`: answer 429). */
  const rateLimit = (): { headers: Record<string, string>; exhausted: boolean } => {
    const limit = opts.rateLimit?.limit ?? 2000;
    const windowMs = (opts.rateLimit?.windowSeconds ?? 60) * 1000;
    if (now() >= quota.windowEndsAt || quota.limit !== limit) {
      quota.limit = limit;
      quota.remaining = limit;
      quota.windowEndsAt = now() + windowMs;
    }
    let exhausted = quota.remaining <= 0;
    if (!exhausted) quota.remaining--;
    else if (!opts.rateLimit) {
      // Not enforced: headers only, the window starts over.
      quota.remaining = limit - 1;
      quota.windowEndsAt = now() + windowMs;
      exhausted = false;
    }
    const reset = Math.ceil(quota.windowEndsAt / 1000);
    return {
      exhausted,
      headers: {
        'ratelimit-limit': String(limit),
        'ratelimit-observed': String(limit - quota.remaining),
        'ratelimit-remaining': String(quota.remaining),
        'ratelimit-reset': String(reset),
        'ratelimit-resettime': new Date(reset * 1000).toUTCString(),
      },
    };
  };

  const pageUrl = (request: RecordedRequest, params: Record<string, string>) => {
    const next = new URL(request.url, `http://${request.headers.host}`);
    for (const [name, value] of Object.entries(params)) next.searchParams.set(name, value);
    return next.toString();
  };

  /** Page numbers (with or without totals), or keyset by id (`id_after`) when asked and `keysetBy` is given. */
  const paged = <T>(request: RecordedRequest, items: T[], view: (item: T) => unknown, options: { idOf?: (item: T) => number; totals?: boolean } = {}): FakeReply => {
    const perPage = Math.min(100, Math.max(1, Number(request.query.get('per_page') ?? 20) || 20));
    const headers: Record<string, string> = {};
    if (options.idOf && request.query.get('pagination') === 'keyset') {
      const idOf = options.idOf;
      const after = Number(request.query.get('id_after') ?? 0);
      const left = items.filter((item) => idOf(item) > after);
      const page = left.slice(0, perPage);
      if (left.length > perPage) headers.link = `<${pageUrl(request, { id_after: String(idOf(page.at(-1)!)) })}>; rel="next"`;
      return reply(200, page.map(view), headers);
    }
    const page = Math.max(1, Number(request.query.get('page') ?? 1) || 1);
    const totalPages = Math.max(1, Math.ceil(items.length / perPage));
    Object.assign(headers, {
      'x-page': String(page),
      'x-per-page': String(perPage),
      'x-next-page': page < totalPages ? String(page + 1) : '',
      'x-prev-page': page > 1 ? String(page - 1) : '',
    });
    if (options.totals !== false) Object.assign(headers, { 'x-total': String(items.length), 'x-total-pages': String(totalPages) });
    const links = [
      ...(page < totalPages ? [`<${pageUrl(request, { page: String(page + 1), per_page: String(perPage) })}>; rel="next"`] : []),
      ...(page > 1 ? [`<${pageUrl(request, { page: String(page - 1), per_page: String(perPage) })}>; rel="prev"`] : []),
      `<${pageUrl(request, { page: '1', per_page: String(perPage) })}>; rel="first"`,
      ...(options.totals !== false ? [`<${pageUrl(request, { page: String(totalPages), per_page: String(perPage) })}>; rel="last"`] : []),
    ];
    headers.link = links.join(', ');
    return reply(200, items.slice((page - 1) * perPage, page * perPage).map(view), headers);
  };

  const treePage = (request: RecordedRequest, entries: TreeEntry[]): FakeReply => {
    if (opts.treeKeyset === false || request.query.get('pagination') !== 'keyset') return paged(request, entries, (e) => e);
    const perPage = Math.min(100, Math.max(1, Number(request.query.get('per_page') ?? 20) || 20));
    const token = request.query.get('page_token');
    let start = 0;
    if (token) {
      let after = '';
      try {
        after = (JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { file_path?: string }).file_path ?? '';
      } catch {
        return reply(400, { error: 'page_token is invalid' });
      }
      start = entries.findIndex((e) => e.path > after);
      if (start < 0) start = entries.length;
    }
    const page = entries.slice(start, start + perPage);
    const headers: Record<string, string> = {};
    if (start + perPage < entries.length) {
      const next = Buffer.from(JSON.stringify({ file_path: page.at(-1)!.path })).toString('base64url');
      const url = new URL(pageUrl(request, { page_token: next }));
      url.searchParams.delete('page');
      headers.link = `<${url.toString()}>; rel="next"`;
    }
    return reply(200, page, headers);
  };

  const projectRoute = async (request: RecordedRequest, project: FakeGitLabProject, sub: string, base: string, username: string): Promise<FakeReply> => {
    const fullPath = `${project.namespace}/${project.path}`;
    const projectUrl = `${base}/${fullPath}`;
    const q = request.query;
    const repository = project.repository;
    if (sub === '') return reply(200, projectView(project, model, base, false));
    const off = project.disabled ?? {};
    if ((off.issues && sub.startsWith('/issues')) || (off.mergeRequests && sub.startsWith('/merge_requests')) || (off.jobs && (sub.startsWith('/pipelines') || sub.startsWith('/jobs')))) {
      return reply(403, { message: '403 Forbidden' });
    }

    if (sub === '/repository/branches') {
      if (!repository) return paged(request, [], (x) => x);
      const names = [...repository.branches.keys()].sort();
      return paged(request, names, (name) => ({
        name,
        merged: false,
        protected: repository.protectedBranches.has(name),
        developers_can_push: false,
        developers_can_merge: false,
        can_push: true,
        default: name === project.defaultBranch,
        web_url: `${projectUrl}/-/tree/${name}`,
        commit: commitView(repository.commits.get(repository.branches.get(name)!)!, projectUrl),
      }));
    }
    if (sub === '/repository/commits') {
      if (!repository) return reply(404, { message: '404 Tree Not Found' });
      const refName = q.get('ref_name') ?? project.defaultBranch;
      const range = /^(.+?)\.\.(.+)$/.exec(refName);
      let included: Set<string>;
      if (range) {
        const from = resolveRef(repository, range[1]!);
        const to = resolveRef(repository, range[2]!);
        if (!to || !from) return reply(404, { message: '404 Reference Not Found' });
        const excluded = reachable(repository, from);
        included = new Set([...reachable(repository, to)].filter((sha) => !excluded.has(sha)));
      } else {
        const tip = resolveRef(repository, refName);
        if (!tip) return reply(200, [], {});
        included = reachable(repository, tip);
      }
      const since = q.get('since');
      const order = [...repository.commits.keys()];
      const list = [...included]
        .map((sha) => repository.commits.get(sha)!)
        .filter((c) => !since || Date.parse(c.committedDate) >= Date.parse(since))
        .sort((a, b) => Date.parse(b.committedDate) - Date.parse(a.committedDate) || order.indexOf(b.id) - order.indexOf(a.id));
      return paged(request, list, (c) => commitView(c, projectUrl), { totals: false });
    }
    const oneCommit = /^\/repository\/commits\/([^/]+)$/.exec(sub);
    if (oneCommit) {
      const sha = repository ? resolveRef(repository, decodeURIComponent(oneCommit[1]!)) : undefined;
      if (!repository || !sha) return reply(404, { message: '404 Commit Not Found' });
      return reply(200, commitView(repository.commits.get(sha)!, projectUrl));
    }
    if (sub === '/repository/tree') {
      const sha = repository ? resolveRef(repository, q.get('ref') ?? project.defaultBranch) : undefined;
      if (!repository || !sha) return reply(404, { message: '404 Tree Not Found' });
      let entries = treeEntries(repository.commits.get(sha)!.tree);
      const path = q.get('path');
      if (path) entries = entries.filter((e) => e.path.startsWith(`${path.replace(/\/+$/, '')}/`));
      if (q.get('recursive') !== 'true') {
        const depth = path ? path.replace(/\/+$/, '').split('/').length + 1 : 1;
        entries = entries.filter((e) => e.path.split('/').length === depth);
      }
      return treePage(request, entries);
    }
    if (sub === '/repository/archive.tar.gz' || sub === '/repository/archive') {
      const sha = repository ? resolveRef(repository, q.get('sha') ?? project.defaultBranch) : undefined;
      if (!repository || !sha) return reply(404, { message: '404 File Not Found' });
      if (opts.archivesPerMinute !== undefined) {
        while (archiveTimes.length && archiveTimes[0]! <= now() - 60_000) archiveTimes.shift();
        if (archiveTimes.length >= opts.archivesPerMinute) {
          const retry = Math.max(1, Math.ceil((archiveTimes[0]! + 60_000 - now()) / 1000));
          stats.throttled++;
          return reply(429, { message: 'This endpoint has been requested too many times. Try again later.' }, { 'retry-after': String(retry) });
        }
        archiveTimes.push(now());
      }
      const body = await archiveOf(project, repository.commits.get(sha)!);
      return { status: 200, body, headers: { 'content-type': 'application/octet-stream', 'content-disposition': `attachment; filename="${project.path}-${sha}.tar.gz"` } };
    }
    if (sub === '/issues') {
      const after = q.get('updated_after');
      const state = q.get('state');
      const orderBy = q.get('order_by') === 'updated_at' ? 'updatedAt' : 'createdAt';
      let list = (project.issues ?? []).filter((i) => (!after || Date.parse(i.updatedAt) >= Date.parse(after)) && (!state || state === 'all' || i.state === state));
      list = list.sort(byTime(orderBy));
      if (q.get('sort') !== 'asc') list.reverse();
      return paged(request, list, (i) => ({
        id: i.id,
        iid: i.iid,
        project_id: project.id,
        title: i.title,
        description: i.description,
        state: i.state,
        created_at: i.createdAt,
        updated_at: i.updatedAt,
        closed_at: i.closedAt,
        closed_by: null,
        labels: i.labels,
        milestone: null,
        assignees: [],
        author: userView(model, i.author, base),
        type: 'ISSUE',
        issue_type: 'issue',
        user_notes_count: 0,
        confidential: false,
        web_url: `${projectUrl}/-/issues/${i.iid}`,
        references: { short: `#${i.iid}`, relative: `#${i.iid}`, full: `${fullPath}#${i.iid}` },
      }));
    }
    if (sub === '/merge_requests') {
      const after = q.get('updated_after');
      const state = q.get('state');
      const orderBy = q.get('order_by') === 'updated_at' ? 'updatedAt' : 'createdAt';
      let list = (project.mergeRequests ?? []).filter((m) => (!after || Date.parse(m.updatedAt) >= Date.parse(after)) && (!state || state === 'all' || m.state === state));
      list = list.sort(byTime(orderBy));
      if (q.get('sort') !== 'asc') list.reverse();
      return paged(request, list, (m) => ({
        id: m.id,
        iid: m.iid,
        project_id: project.id,
        title: m.title,
        description: m.description,
        state: m.state,
        created_at: m.createdAt,
        updated_at: m.updatedAt,
        merged_at: m.mergedAt,
        closed_at: m.closedAt,
        target_branch: m.targetBranch,
        source_branch: m.sourceBranch,
        author: userView(model, m.author, base),
        draft: false,
        work_in_progress: false,
        merge_status: 'can_be_merged',
        sha: m.sha,
        merge_commit_sha: m.mergeCommitSha,
        squash_commit_sha: null,
        web_url: `${projectUrl}/-/merge_requests/${m.iid}`,
        references: { short: `!${m.iid}`, relative: `!${m.iid}`, full: `${fullPath}!${m.iid}` },
      }));
    }
    const pipelineView = (p: FakePipeline) => ({ id: p.id, iid: p.iid, project_id: project.id, sha: p.sha, ref: p.ref, status: p.status, source: p.source, created_at: p.createdAt, updated_at: p.updatedAt, web_url: `${projectUrl}/-/pipelines/${p.id}` });
    const jobView = (p: FakePipeline, j: FakeJob) => ({
      id: j.id,
      status: j.status,
      stage: j.stage,
      name: j.name,
      ref: p.ref,
      tag: false,
      coverage: null,
      allow_failure: false,
      created_at: j.createdAt,
      started_at: j.startedAt,
      finished_at: j.finishedAt,
      erased_at: null,
      duration: j.duration,
      queued_duration: 0.5,
      user: userView(model, p.user, base),
      commit: repository?.commits.has(p.sha) ? commitView(repository.commits.get(p.sha)!, projectUrl) : { id: p.sha },
      pipeline: { id: p.id, project_id: project.id, ref: p.ref, sha: p.sha, status: p.status },
      web_url: `${projectUrl}/-/jobs/${j.id}`,
    });
    if (sub === '/pipelines') {
      const after = q.get('updated_after');
      let list = (project.pipelines ?? []).filter((p) => !after || Date.parse(p.updatedAt) >= Date.parse(after));
      list = q.get('order_by') === 'updated_at' ? list.sort(byTime('updatedAt')) : list.sort((a, b) => a.id - b.id);
      if (q.get('sort') !== 'asc') list.reverse();
      return paged(request, list, pipelineView);
    }
    const pipelineJobs = /^\/pipelines\/(\d+)\/jobs$/.exec(sub);
    if (pipelineJobs) {
      const pipeline = (project.pipelines ?? []).find((p) => p.id === Number(pipelineJobs[1]));
      if (!pipeline) return reply(404, { message: '404 Not found' });
      return paged(request, [...pipeline.jobs].sort((a, b) => b.id - a.id), (j) => jobView(pipeline, j));
    }
    if (sub === '/jobs') {
      const all = (project.pipelines ?? []).flatMap((p) => p.jobs.map((j) => ({ p, j }))).sort((a, b) => b.j.id - a.j.id);
      return paged(request, all, ({ p, j }) => jobView(p, j), { totals: false });
    }
    void username;
    return reply(404, { error: '404 Not Found' });
  };

  const handle = async (request: RecordedRequest): Promise<FakeReply> => {
    const base = `http://${request.headers.host}${prefix}`;
    if (prefix && !request.path.startsWith(`${prefix}/`)) return html(404, '<!DOCTYPE html><html><body>Not found</body></html>');
    const path = request.path.slice(prefix.length);

    if (request.method === 'GET' && path === '/.well-known/openid-configuration') {
      return reply(200, {
        issuer: base,
        authorization_endpoint: `${base}/oauth/authorize`,
        token_endpoint: `${base}/oauth/token`,
        revocation_endpoint: `${base}/oauth/revoke`,
        introspection_endpoint: `${base}/oauth/introspect`,
        userinfo_endpoint: `${base}/oauth/userinfo`,
        jwks_uri: `${base}/oauth/discovery/keys`,
        scopes_supported: ['api', 'read_api', 'read_user', 'read_repository', 'openid', 'profile', 'email'],
        response_types_supported: ['code'],
        grant_types_supported: ['authorization_code', 'refresh_token'],
        code_challenge_methods_supported: ['plain', 'S256'],
      });
    }
    if (request.method === 'GET' && path === '/oauth/authorize') {
      const outcome = oauth.authorize(request.query, opts.username ?? 'jdoe', { deny: opts.authorize === 'deny' });
      return outcome.ok ? reply(302, '', { location: outcome.location }) : html(outcome.status, `<html><body><h1>An error has occurred</h1><p>${outcome.description}</p></body></html>`);
    }
    if (request.method === 'POST' && path === '/oauth/token') {
      const outcome = await oauth.token(tokenParams(request.body, request.headers['content-type']), request.headers.authorization);
      if (!outcome.ok) return reply(outcome.status, { error: outcome.error, error_description: outcome.description });
      return reply(200, {
        access_token: outcome.accessToken,
        token_type: 'Bearer',
        expires_in: outcome.expiresIn,
        refresh_token: outcome.refreshToken,
        scope: outcome.grant.scopes.join(' '),
        created_at: Math.floor(now() / 1000),
      });
    }
    if (!path.startsWith('/api/v4/')) return html(404, '<!DOCTYPE html><html><body>Page Not Found</body></html>');

    const throttle = throttles.find((t) => !t.options.paths || t.options.paths.test(path));
    if (throttle) {
      if (--throttle.count <= 0) throttles.splice(throttles.indexOf(throttle), 1);
      const retryAfter = throttle.options.retryAfter ?? null;
      const bare = throttle.options.bare ?? retryAfter === null;
      stats.throttled++;
      return reply(429, { message: '429 Too Many Requests' }, { ...(retryAfter !== null ? { 'retry-after': String(retryAfter) } : {}), ...(bare ? {} : rateLimit().headers) });
    }
    const { exhausted, headers: limits } = rateLimit();
    if (exhausted) stats.throttled++;
    if (exhausted) return reply(429, 'Retry later\n', { 'content-type': 'text/plain', 'retry-after': String(Math.max(1, Math.ceil((quota.windowEndsAt - now()) / 1000))), ...limits });

    const answer = await apiRoute(request, path, base);
    answer.headers = { ...limits, ...(answer.headers ?? {}) };
    // Weak ETags on JSON answers, 304 on a match (GitLab's Rack::ETag / ConditionalGet).
    if (opts.etags !== false && request.method === 'GET' && answer.status === 200 && answer.body !== undefined && typeof answer.body !== 'string' && !(answer.body instanceof Uint8Array)) {
      const etag = `W/"${sha1(JSON.stringify(answer.body))}"`;
      answer.headers.etag = etag;
      if (request.headers['if-none-match'] === etag) return { status: 304, body: '', headers: { ...limits, etag } };
    }
    return answer;
  };

  const apiRoute = async (request: RecordedRequest, path: string, base: string): Promise<FakeReply> => {
    const grant = oauth.check(bearerToken(request));
    if (grant === 'expired') return reply(401, { error: 'invalid_token', error_description: 'Token is expired. You can either do re-authorization or token refresh.' }, { 'www-authenticate': 'Bearer realm="Protected by OAuth 2.0", error="invalid_token"' });
    if (!grant) return gitlabError(401);
    const user = model.users.find((u) => u.username === grant.subject);
    if (!user) return gitlabError(401);
    if (request.method !== 'GET') return reply(405, { message: '405 Method Not Allowed' });

    if (path === '/api/v4/version') {
      return reply(200, { version: opts.version ?? '17.5.1-ee', revision: '8fa1a4ad20d', kas: { enabled: true, externalUrl: null, version: '17.5.1' }, enterprise: true });
    }
    if (path === '/api/v4/user') {
      return reply(200, { id: user.id, username: user.username, name: user.name, state: 'active', locked: false, web_url: `${base}/${user.username}`, avatar_url: null });
    }
    const canRead = (p: FakeGitLabProject) => p.members.includes(user.username) || p.visibility !== 'private';
    if (path === '/api/v4/projects') {
      const membership = request.query.get('membership') === 'true';
      const archived = request.query.get('archived');
      const visible = model.projects
        .filter((p) => (membership ? p.members.includes(user.username) : canRead(p)))
        .filter((p) => (archived === null ? true : (p.archived ?? false) === (archived === 'true')))
        .sort((a, b) => a.id - b.id);
      const simple = request.query.get('simple') === 'true';
      return paged(request, visible, (p) => projectView(p, model, base, simple), { idOf: (p) => p.id });
    }
    // A project or group by id or by its URL-encoded path (`acme%2Fpayments`): match the raw, still encoded path.
    const raw = new URL(request.url, 'http://fake.invalid').pathname.slice(prefix.length);
    const group = /^\/api\/v4\/groups\/([^/]+)$/.exec(raw);
    if (group) {
      const key = decodeURIComponent(group[1]!);
      const found = model.groups.find((g) => String(g.id) === key || g.path === key);
      if (!found) return reply(404, { message: '404 Group Not Found' });
      const parent = model.groups.find((g) => found.path.startsWith(`${g.path}/`) && !found.path.slice(g.path.length + 1).includes('/'));
      return reply(200, { id: found.id, name: found.name, path: found.path.split('/').pop(), full_path: found.path, full_name: found.name, parent_id: parent?.id ?? null, visibility: 'private', web_url: `${base}/groups/${found.path}` });
    }
    const one = /^\/api\/v4\/projects\/([^/]+)(\/.*)?$/.exec(raw);
    if (one) {
      const key = decodeURIComponent(one[1]!);
      const project = model.projects.find((p) => String(p.id) === key || `${p.namespace}/${p.path}` === key);
      if (!project || !canRead(project)) return reply(404, { message: '404 Project Not Found' });
      return projectRoute(request, project, one[2] ?? '', base, user.username);
    }
    return reply(404, { error: '404 Not Found' });
  };

  const fake = await startHttpFake<GitLabFakeOptions>({
    options: opts,
    isUnguarded: (request) => !request.path.slice(prefix.length).startsWith('/api/'),
    errorReply: (status) => gitlabError(status),
    handle,
  });
  return Object.assign(fake, {
    model,
    oauth,
    baseUrl: `${fake.url}${prefix}`,
    stats,
    apiRequests: () => fake.requests.filter((r) => r.path.slice(prefix.length).startsWith('/api/v4/')),
    throttleNext(count: number, throttleOptions: ThrottleOptions = {}) {
      throttles.push({ count, options: throttleOptions });
    },
    clearThrottles() {
      throttles.length = 0;
    },
    project: (path: string) => findProject(model, path),
    pushCommit: (path: string, change?: CommitChange) => pushCommit(model, path, change),
    forcePush: (path: string, change?: CommitChange & { drop?: number }) => forcePush(model, path, change),
    deleteFile: (path: string, file: string) => pushCommit(model, path, { files: { [file]: null }, message: `Delete ${file}` }),
    closeIssue: (path: string, iid: number) => closeIssue(model, path, iid),
    addIssue: (path: string, issue: Partial<FakeIssue> & { title: string }) => addIssue(model, path, issue),
    addMergeRequest: (path: string, mr: Partial<FakeMergeRequest> & { title: string; sourceBranch: string }) => addMergeRequest(model, path, mr),
    addPipeline: (path: string, pipeline?: Partial<Omit<FakePipeline, 'jobs'>> & { jobs?: number }) => addPipeline(model, path, pipeline),
  });
}
