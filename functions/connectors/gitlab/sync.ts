/**
 * The GitLab sync: one partition per project (`partitions()`), each synced by `sync(ctx, cursor)`
 * in phases, one page at a time, so a slice can hand back a cursor at any page boundary:
 *
 *   project → branches → commits → tree → code → issues → merge requests → pipelines (→ jobs)
 *
 * What it writes (ids: ids.ts; the vocabulary: ../shared/spec/graph.md):
 * - `organization` per group level of the project's namespace, CONTAINS group → subgroup and
 *   group → `repository` (the project);
 * - `branch` (HAS_BRANCH), its head `commit` (HEAD); the default branch's history: `commit`
 *   nodes, PARENT, `person` AUTHORED (commit authors by email: GitLab's commits carry no username);
 * - `directory` / `file` from the recursive tree (CONTAINS from the repository and each
 *   directory); code symbols, imports and dependencies from the archive (functions/code);
 * - `issue` (HAS_ISSUE), `pull_request` for merge requests (props.source `gitlab`,
 *   HAS_PULL_REQUEST, TARGETS the target branch, CLOSES from GitLab's closing pattern), AUTHORED
 *   by their authors (by username);
 * - `pipeline` (RAN_ON its commit), `job` (HAS_JOB).
 *
 * Incremental passes (the sync state, per project: ctx.state scope `project:<path>`):
 * - commits: `ref_name=<last synced head>..<head>` (a revision range: exactly the new commits,
 *   merged branches included, unlike `since`, which misses a merged branch's older-dated commits;
 *   also right after a force-push). The first sync reads the newest `commitDepth` commits; the
 *   oldest one read (the floor) bounds what a full pass re-reads (`<floor>..<head>`);
 * - tree and code analysis only when the head moved (code: with `previousShas` from the tree of
 *   the last analysed commit, so only changed files are parsed; a full pass parses everything);
 * - issues, merge requests, pipelines: `updated_after` = the newest `updated_at` seen (inclusive,
 *   so ties are never lost), ordered by `updated_at` ascending so the watermark moves page by page;
 * - ETags: the project, the branches and the first page of each listing are asked with
 *   If-None-Match; a 304 skips the work.
 * Watermarks are saved at the end of each slice, so an interrupted run resumes from them.
 * A full pass re-emits everything it still sees (the sweep deletes the rest): every branch, the
 * commits from the floor, the whole tree, all issues and merge requests, the newest
 * PIPELINE_WINDOW pipelines and their jobs.
 */
import { analyzeRepositoryArchive, CODE_GRAPH_KINDS, formatWarnings } from '../../code/index.ts';
import type { OAuthCredentials } from '../../oauth/credentials.ts';
import type { JsonValue, Props } from '#graph/model.ts';
import type { SyncContext, SyncResult } from '../types.ts';
import { closingReferences, GitLabIds, instancePrefix } from './ids.ts';
import { GitLabApiError, GitLabClient, GitLabWaitError, type ListResult, type PageRef, type TokenSource } from './rest.ts';
import { contextTokenSource, managedTokenSource } from './tokens.ts';
import type { GitLabConfig } from './index.ts';

type Ctx = SyncContext<GitLabConfig, OAuthCredentials>;

/** Commits of the default branch a first sync reads. */
export const DEFAULT_COMMIT_DEPTH = 500;
/** At most this many commits per listing (a range after a huge push, a full pass's window). */
export const MAX_COMMITS = 10_000;
/** Pipelines a full pass re-reads (newest first); older ones leave the graph at that sweep. */
export const PIPELINE_WINDOW = 100;
/** Projects listed when the connection names none (as the connection check does). */
const MAX_PROJECTS = 1000;
/** A step starts only with this much of the slice left. */
const STEP_MIN_MS = 20_000;
/** The archive analysis starts only with this much left (else the next slice does it). */
const CODE_MIN_MS = 90_000;
/** GitLab.com allows 5 archive downloads per minute. */
const GITLAB_COM_ARCHIVES_PER_MINUTE = 5;
const MAX_TEXT = 200;

type Phase = 'project' | 'branches' | 'commits' | 'tree' | 'code' | 'issues' | 'mrs' | 'pipelines' | 'jobs' | 'done';

const NEXT_PHASE: Record<Phase, Phase> = {
  project: 'branches',
  branches: 'commits',
  commits: 'tree',
  tree: 'code',
  code: 'issues',
  issues: 'mrs',
  mrs: 'pipelines',
  pipelines: 'done',
  jobs: 'done',
  done: 'done',
};

/** What a phase writes: marked incomplete (not swept) when the phase could not be read. */
const PHASE_KINDS: Partial<Record<Phase, readonly string[]>> = {
  branches: ['branch', 'HAS_BRANCH', 'HEAD', 'commit', 'AUTHORED', 'person'],
  commits: ['commit', 'PARENT', 'AUTHORED', 'person'],
  tree: ['directory', 'file', 'CONTAINS'],
  code: CODE_GRAPH_KINDS,
  issues: ['issue', 'HAS_ISSUE', 'AUTHORED', 'person'],
  mrs: ['pull_request', 'HAS_PULL_REQUEST', 'TARGETS', 'CLOSES', 'AUTHORED', 'person'],
  pipelines: ['pipeline', 'job', 'RAN_ON', 'HAS_JOB'],
  jobs: ['job', 'HAS_JOB'],
};

/** Where a project's pass stands (the slice cursor; small). */
export interface ProjectCursor {
  p: Phase;
  /** The next page of the phase. */
  at?: PageRef;
  /** The default branch's head this pass syncs. */
  head?: string;
  /** commits: the `ref_name` being listed, how many to read at most, how many were read. */
  ref?: string;
  cap?: number;
  n?: number;
  /** commits: this listing is a first read (its last commit becomes the floor). */
  first?: boolean;
  /** issues, mrs, pipelines: the `updated_after` of the listing in progress. */
  after?: string;
  /** pipelines: items of the current page already done. */
  skip?: number;
  /** full pass: the oldest pipeline id of the window. */
  min?: number;
  /** code: attempts cut short by the slice's deadline. */
  tries?: number;
}

/** What a project's sync remembers between passes (ctx.state). */
export interface ProjectState {
  projectId?: number;
  fullPath?: string;
  defaultBranch?: string | null;
  /** The default branch's head as the branches listing last saw it. */
  branchHead?: string;
  /** The head whose history is synced. */
  head?: string;
  /** The oldest synced commit (first-sync depth boundary); null: the whole history; absent: never synced. */
  floor?: string | null;
  floorCommit?: CommitLite;
  /** The commit whose tree was listed last. */
  treeSha?: string;
  /** The commit of the last complete code analysis. */
  analyzedSha?: string;
  issuesAfter?: string;
  mrsAfter?: string;
  pipelinesAfter?: string;
  etags?: Record<string, string>;
  features?: Features;
}

interface GitLabUser {
  username: string;
  name?: string;
  web_url?: string;
}

interface GitLabProject {
  id: number;
  path_with_namespace: string;
  default_branch?: string | null;
  visibility?: string;
  archived?: boolean;
  web_url?: string;
  description?: string | null;
  namespace: { full_path: string; kind?: string };
  issues_enabled?: boolean;
  merge_requests_enabled?: boolean;
  jobs_enabled?: boolean;
  issues_access_level?: string;
  merge_requests_access_level?: string;
  builds_access_level?: string;
}

/** Features switched off on the project: their phases are skipped (a full pass then sweeps what the graph held of them). */
interface Features {
  issues: boolean;
  mrs: boolean;
  pipelines: boolean;
}

const enabled = (flag: boolean | undefined, level: string | undefined) => flag !== false && level !== 'disabled';

interface CommitLite {
  id: string;
  short_id?: string;
  title?: string;
  author_name?: string;
  author_email?: string;
  authored_date?: string;
  committed_date?: string;
  web_url?: string;
  parent_ids?: string[];
}

interface GitLabBranch {
  name: string;
  default?: boolean;
  protected?: boolean;
  web_url?: string;
  commit: CommitLite;
}

interface GitLabTreeEntry {
  id: string;
  type: 'tree' | 'blob' | 'commit';
  path: string;
}

interface GitLabIssue {
  iid: number;
  title: string;
  state: string;
  labels?: string[];
  web_url?: string;
  created_at?: string;
  updated_at: string;
  closed_at?: string | null;
  author?: GitLabUser | null;
}

interface GitLabMergeRequest extends GitLabIssue {
  description?: string | null;
  source_branch: string;
  target_branch: string;
  draft?: boolean;
  merged_at?: string | null;
  sha?: string | null;
  merge_commit_sha?: string | null;
}

interface GitLabPipeline {
  id: number;
  iid?: number;
  status: string;
  ref?: string;
  sha: string;
  source?: string;
  created_at?: string;
  updated_at: string;
  web_url?: string;
}

interface GitLabJob {
  id: number;
  name: string;
  stage?: string;
  status: string;
  ref?: string;
  allow_failure?: boolean;
  created_at?: string;
  started_at?: string | null;
  finished_at?: string | null;
  duration?: number | null;
  web_url?: string;
  pipeline: { id: number };
}

export interface GitLabSyncOptions {
  /** The slice's sleeps (short rate-limit waits); tests pass one that returns at once. */
  sleep?: (ms: number) => Promise<void>;
  /** Where tokens come from (default: OAuthTokenManager over the runtime). */
  tokens?: (ctx: Ctx) => TokenSource;
  pipelineWindow?: number;
  /** Archive downloads per minute per connection (default: 5 on GitLab.com, GitLab.com's limit; no spacing elsewhere). */
  archivesPerMinute?: number;
}

/** Drops undefined values (props are JSON). */
function props(values: Record<string, JsonValue | undefined>): Props {
  const out: Props = {};
  for (const [key, value] of Object.entries(values)) if (value !== undefined) out[key] = value;
  return out;
}

const clip = (text: string | null | undefined, max = MAX_TEXT) => {
  const value = (text ?? '').replace(/\s+/g, ' ').trim();
  return value.length > max ? `${value.slice(0, max - 1)}…` : value;
};
const later = (a: string | undefined, b: string | undefined) => (!a ? b : !b ? a : Date.parse(b) > Date.parse(a) ? b : a);
const lite = (c: CommitLite): CommitLite => ({
  id: c.id,
  ...(c.short_id ? { short_id: c.short_id } : {}),
  ...(c.title ? { title: clip(c.title) } : {}),
  ...(c.author_name ? { author_name: c.author_name } : {}),
  ...(c.author_email ? { author_email: c.author_email } : {}),
  ...(c.authored_date ? { authored_date: c.authored_date } : {}),
  ...(c.committed_date ? { committed_date: c.committed_date } : {}),
  ...(c.web_url ? { web_url: c.web_url } : {}),
});

/** Archive downloads per connection (GitLab.com counts them per user: 5 per minute) in this process. */
const archiveStarts = new Map<string, number[]>();

/** One project's pass within one slice. */
class ProjectSync {
  readonly ctx: Ctx;
  readonly path: string;
  readonly client: GitLabClient;
  readonly state: ProjectState;
  readonly full: boolean;
  readonly options: GitLabSyncOptions;
  readonly base: string;
  ids: GitLabIds;
  /** Steps this slice did (the code analysis, and any next step, wait for a fresh slice only when there were some). */
  steps = 0;
  readonly #people = new Set<string>();

  constructor(ctx: Ctx, path: string, client: GitLabClient, state: ProjectState, options: GitLabSyncOptions) {
    this.ctx = ctx;
    this.path = path;
    this.client = client;
    this.state = state;
    this.options = options;
    this.full = ctx.mode === 'full';
    this.base = ctx.config.baseUrl.replace(/\/+$/, '');
    this.ids = new GitLabIds(this.base, state.fullPath ?? path);
  }

  get pid(): number | string {
    return this.state.projectId ?? this.path;
  }

  get incremental(): boolean {
    return !this.full;
  }

  #etag(name: string): string | undefined {
    return this.incremental ? this.state.etags?.[name] : undefined;
  }

  #keepEtag(name: string, etag: string | undefined): void {
    const etags = { ...(this.state.etags ?? {}) };
    if (etag) etags[name] = etag;
    else delete etags[name];
    this.state.etags = etags;
  }

  async node(id: string, type: string, name: string, values: Record<string, JsonValue | undefined> = {}): Promise<void> {
    await this.ctx.graph.upsertNode({ id, type, name: clip(name, 512) || id, props: props(values) });
  }

  async edge(from: string, type: string, to: string, values?: Record<string, JsonValue | undefined>): Promise<void> {
    await this.ctx.graph.upsertEdge({ from, type, to, ...(values ? { props: props(values) } : {}) });
  }

  /** A GitLab user (issues, merge requests): one node per slice, keyed by username. */
  async user(user: GitLabUser | null | undefined): Promise<string | undefined> {
    if (!user?.username) return undefined;
    const id = this.ids.user(user.username);
    if (!this.#people.has(id)) {
      this.#people.add(id);
      await this.node(id, 'person', user.name || user.username, { username: user.username, webUrl: user.web_url });
    }
    return id;
  }

  /** A commit author: GitLab's commits carry a name and an email, no username. */
  async author(commit: CommitLite): Promise<string | undefined> {
    if (!commit.author_email) return undefined;
    const id = this.ids.email(commit.author_email);
    if (!this.#people.has(id)) {
      this.#people.add(id);
      await this.node(id, 'person', commit.author_name || commit.author_email, { email: commit.author_email.toLowerCase() });
    }
    return id;
  }

  async commit(commit: CommitLite, parents: boolean): Promise<void> {
    const id = this.ids.commit(commit.id);
    await this.node(id, 'commit', commit.title ? clip(commit.title) : commit.id.slice(0, 8), {
      sha: commit.id,
      shortId: commit.short_id ?? commit.id.slice(0, 8),
      title: commit.title ? clip(commit.title) : undefined,
      authorName: commit.author_name,
      authoredAt: commit.authored_date,
      committedAt: commit.committed_date,
      webUrl: commit.web_url,
    });
    const author = await this.author(commit);
    if (author) await this.edge(author, 'AUTHORED', id);
    if (parents) for (const parent of commit.parent_ids ?? []) await this.edge(id, 'PARENT', this.ids.commit(parent));
  }

  // -------------------------------------------------------------------------------------------
  // Phases: each call does one unit of work (usually one page) and answers the next cursor.

  async step(c: ProjectCursor): Promise<ProjectCursor | 'yield' | 'gone'> {
    if (c.p === 'project') return this.project();
    const features = this.state.features;
    if ((c.p === 'issues' && features?.issues === false) || (c.p === 'mrs' && features?.mrs === false) || ((c.p === 'pipelines' || c.p === 'jobs') && features?.pipelines === false)) {
      return { p: NEXT_PHASE[c.p], ...(c.head ? { head: c.head } : {}) };
    }
    try {
      return await this.#phase(c);
    } catch (error) {
      // One part of the project cannot be read (a feature restricted to members with more rights,
      // a repository GitLab cannot serve): skip it, and keep what the graph holds of it this pass.
      if (!(error instanceof GitLabApiError) || (error.status !== 403 && error.status !== 404)) throw error;
      const reason = `${this.path}: ${error.message}`;
      this.ctx.warn(`${reason}; what the graph holds of it is kept.`);
      for (const kind of PHASE_KINDS[c.p] ?? []) this.ctx.markIncomplete(kind, reason);
      return { p: NEXT_PHASE[c.p], ...(c.head ? { head: c.head } : {}) };
    }
  }

  #phase(c: ProjectCursor): Promise<ProjectCursor | 'yield'> {
    switch (c.p) {
      case 'branches':
        return this.branches(c);
      case 'commits':
        return this.commits(c);
      case 'tree':
        return this.tree(c);
      case 'code':
        return this.code(c);
      case 'issues':
        return this.issues(c);
      case 'mrs':
        return this.mergeRequests(c);
      case 'pipelines':
        return this.pipelines(c);
      case 'jobs':
        return this.jobs(c);
      default:
        return Promise.resolve({ p: 'done' });
    }
  }

  async project(): Promise<ProjectCursor | 'gone'> {
    let answer: { data?: GitLabProject; etag?: string; notModified: boolean };
    try {
      answer = await this.client.one<GitLabProject>(() => this.client.api.Projects.show(this.path, { showExpanded: true } as never), { etag: this.#etag('project') });
    } catch (error) {
      if (error instanceof GitLabApiError && (error.status === 404 || error.status === 403)) return 'gone';
      throw error;
    }
    const repoPhase: Phase = 'branches';
    if (answer.notModified && this.state.projectId !== undefined) {
      return { p: this.state.defaultBranch ? repoPhase : 'issues' };
    }
    const project = answer.data!;
    this.state.projectId = project.id;
    this.state.fullPath = project.path_with_namespace;
    this.state.defaultBranch = project.default_branch ?? null;
    this.state.features = {
      issues: enabled(project.issues_enabled, project.issues_access_level),
      mrs: enabled(project.merge_requests_enabled, project.merge_requests_access_level),
      pipelines: enabled(project.jobs_enabled, project.builds_access_level),
    };
    this.ids = new GitLabIds(this.base, project.path_with_namespace);
    this.#keepEtag('project', answer.etag);

    const segments = project.namespace.full_path.split('/');
    for (let i = 0; i < segments.length; i++) {
      const fullPath = segments.slice(0, i + 1).join('/');
      const immediate = i === segments.length - 1;
      await this.node(this.ids.group(fullPath), 'organization', fullPath, {
        fullPath,
        kind: immediate && project.namespace.kind === 'user' ? 'user' : 'group',
        webUrl: `${this.base}/${fullPath}`,
      });
      if (i > 0) await this.edge(this.ids.group(segments.slice(0, i).join('/')), 'CONTAINS', this.ids.group(fullPath));
    }
    const repository = this.ids.repository();
    await this.node(repository, 'repository', project.path_with_namespace, {
      projectId: project.id,
      fullPath: project.path_with_namespace,
      defaultBranch: project.default_branch ?? undefined,
      visibility: project.visibility,
      archived: project.archived,
      description: project.description ? clip(project.description, 300) : undefined,
      webUrl: project.web_url,
    });
    await this.edge(this.ids.group(project.namespace.full_path), 'CONTAINS', repository);
    // An empty repository has no branches, commits or files.
    return { p: project.default_branch ? repoPhase : 'issues' };
  }

  async branches(c: ProjectCursor): Promise<ProjectCursor> {
    const page = await this.client.list<GitLabBranch>((paging) => this.client.api.Branches.all(this.pid, paging as never), c.at, { etag: c.at ? undefined : this.#etag('branches') });
    if (page.notModified) return { p: 'commits', ...(this.state.branchHead ? { head: this.state.branchHead } : {}) };
    let head = c.head;
    const repository = this.ids.repository();
    for (const branch of page.items) {
      const id = this.ids.branch(branch.name);
      const isDefault = branch.default ?? branch.name === this.state.defaultBranch;
      if (isDefault) head = branch.commit.id;
      await this.node(id, 'branch', branch.name, { default: isDefault, protected: branch.protected ?? false, headSha: branch.commit.id, webUrl: branch.web_url });
      await this.edge(repository, 'HAS_BRANCH', id);
      await this.commit(branch.commit, false);
      await this.edge(id, 'HEAD', this.ids.commit(branch.commit.id));
    }
    if (!c.at) this.#keepEtag('branches', page.next ? undefined : page.etag);
    if (page.next) return { p: 'branches', at: page.next, ...(head ? { head } : {}) };
    if (head) this.state.branchHead = head;
    else delete this.state.branchHead;
    return { p: 'commits', ...(head ? { head } : {}) };
  }

  async commits(c: ProjectCursor): Promise<ProjectCursor> {
    const head = c.head;
    if (!head) return { p: 'tree' };
    let cursor = c;
    if (cursor.ref === undefined) {
      if (this.incremental && this.state.head === head) return { p: 'tree', head };
      const depth = this.ctx.config.commitDepth ?? DEFAULT_COMMIT_DEPTH;
      if (this.state.head && this.incremental) cursor = { p: 'commits', head, ref: `${this.state.head}..${head}`, cap: MAX_COMMITS, n: 0 };
      else if (this.state.head && this.state.floor !== undefined) {
        // A full pass re-reads what the graph holds: everything after the floor, and the floor.
        if (this.state.floor && this.state.floorCommit) await this.commit(this.state.floorCommit, false);
        cursor = { p: 'commits', head, ref: this.state.floor ? `${this.state.floor}..${head}` : head, cap: MAX_COMMITS, n: 0 };
      } else cursor = { p: 'commits', head, ref: head, cap: depth, n: 0, first: true };
    }
    let page: ListResult<CommitLite>;
    try {
      page = await this.client.list<CommitLite>((paging) => this.client.api.Commits.all(this.pid, { refName: cursor.ref, ...paging } as never), cursor.at);
    } catch (error) {
      // The last synced head is gone (garbage-collected after a force-push): read anew from the head.
      if (error instanceof GitLabApiError && error.status === 404 && cursor.ref?.includes('..')) {
        return { p: 'commits', head, ref: head, cap: this.ctx.config.commitDepth ?? DEFAULT_COMMIT_DEPTH, n: 0, first: true };
      }
      throw error;
    }
    const cap = cursor.cap ?? MAX_COMMITS;
    const read = cursor.n ?? 0;
    const taken = page.items.slice(0, Math.max(0, cap - read));
    const n = read + taken.length;
    const capped = n >= cap && (taken.length < page.items.length || page.next !== undefined);
    for (let i = 0; i < taken.length; i++) {
      // The floor's parents are outside what the graph holds: no PARENT edges from it.
      await this.commit(taken[i]!, !(capped && i === taken.length - 1));
    }
    await this.ctx.progress({ phase: `${this.path}: commits`, done: n });
    if (!capped && page.next) return { ...cursor, at: page.next, n };

    if (capped) {
      const floor = taken.at(-1)!;
      this.state.floor = floor.id;
      this.state.floorCommit = lite(floor);
      if (!cursor.first) this.ctx.warn(`${this.path}: more than ${cap} commits to read; the graph keeps the newest ${cap}.`);
    } else if (cursor.first) {
      this.state.floor = null;
      delete this.state.floorCommit;
    }
    this.state.head = head;
    return { p: 'tree', head };
  }

  async tree(c: ProjectCursor): Promise<ProjectCursor> {
    const head = c.head;
    if (!head) return { p: 'code' };
    if (!c.at && this.incremental && this.state.treeSha === head) return { p: 'code', head };
    const page = await this.client.list<GitLabTreeEntry>(
      (paging) => this.client.api.Repositories.allRepositoryTrees(this.pid, { ref: head, recursive: true, ...paging } as never),
      c.at,
      { keyset: true },
    );
    const repository = this.ids.repository();
    for (const entry of page.items) {
      if (entry.type === 'commit') continue; // a submodule
      const slash = entry.path.lastIndexOf('/');
      const parent = slash < 0 ? repository : this.ids.directory(entry.path.slice(0, slash));
      const name = entry.path.slice(slash + 1);
      const id = entry.type === 'tree' ? this.ids.directory(entry.path) : this.ids.file(entry.path);
      if (entry.type === 'tree') await this.node(id, 'directory', name, { path: entry.path });
      else await this.node(id, 'file', name, { path: entry.path, sha: entry.id });
      await this.edge(parent, 'CONTAINS', id);
    }
    const n = (c.n ?? 0) + page.items.length;
    await this.ctx.progress({ phase: `${this.path}: files`, done: n });
    if (page.next) return { p: 'tree', head, at: page.next, n };
    this.state.treeSha = head;
    return { p: 'code', head };
  }

  /** path → blob SHA of a commit's tree (every page), for the incremental analysis; undefined when it cannot be read. */
  async #blobShas(sha: string): Promise<Map<string, string> | undefined> {
    const shas = new Map<string, string>();
    let at: PageRef | undefined;
    do {
      let page;
      try {
        page = await this.client.list<GitLabTreeEntry>((paging) => this.client.api.Repositories.allRepositoryTrees(this.pid, { ref: sha, recursive: true, ...paging } as never), at, { keyset: true });
      } catch (error) {
        if (error instanceof GitLabApiError && error.status === 404) return undefined;
        throw error;
      }
      for (const entry of page.items) if (entry.type === 'blob') shas.set(entry.path, entry.id);
      at = page.next;
    } while (at);
    return shas;
  }

  /** GitLab.com serves 5 archives a minute per user: space them (or hand the wait back). */
  async #spaceArchives(): Promise<void> {
    const perMinute = this.options.archivesPerMinute ?? (instancePrefix(this.base) === '' ? GITLAB_COM_ARCHIVES_PER_MINUTE : undefined);
    if (perMinute === undefined) return;
    const now = this.ctx.now().getTime();
    const starts = (archiveStarts.get(this.client.quotaKey) ?? []).filter((at) => at > now - 60_000);
    if (starts.length >= perMinute) await this.client.pause(starts[0]! + 60_000 - now, `${perMinute} archive downloads per minute`);
    starts.push(this.ctx.now().getTime());
    archiveStarts.set(this.client.quotaKey, starts);
  }

  async code(c: ProjectCursor): Promise<ProjectCursor | 'yield'> {
    const head = c.head;
    if (!head || (this.incremental && this.state.analyzedSha === head)) return { p: 'issues' };
    if (this.steps > 0 && this.ctx.remainingMs() < CODE_MIN_MS) return 'yield';
    // Incremental: files whose blob did not change since the last complete analysis are not parsed.
    const previousShas = this.incremental && this.state.analyzedSha ? await this.#blobShas(this.state.analyzedSha) : undefined;
    await this.#spaceArchives();
    const archive = (await this.client.api.Repositories.showArchive(this.pid, { sha: head, fileType: 'tar.gz', asStream: true })) as unknown as ReadableStream<Uint8Array>;
    const result = await analyzeRepositoryArchive({
      repository: this.ids.repo,
      archive,
      graph: this.ctx.graph,
      ...(previousShas ? { previousShas } : {}),
      signal: AbortSignal.timeout(Math.max(10_000, this.ctx.remainingMs() - 30_000)),
      onProgress: (stats) => this.ctx.progress({ phase: `${this.path}: code`, done: stats.files }),
    });
    if (result.complete) {
      this.state.analyzedSha = head;
      for (const line of formatWarnings(result.warnings)) this.ctx.warn(`${this.path}: ${line}`);
      return { p: 'issues' };
    }
    const aborted = result.warnings.some((warning) => warning.code === 'aborted');
    if (aborted && (c.tries ?? 0) < 1) return { p: 'code', head, tries: (c.tries ?? 0) + 1 };
    for (const line of formatWarnings(result.warnings)) this.ctx.warn(`${this.path}: ${line}`);
    for (const kind of CODE_GRAPH_KINDS) this.ctx.markIncomplete(kind, `${this.path}: ${result.incompleteReason ?? 'the archive was not read to the end'}`);
    return { p: 'issues' };
  }

  async issues(c: ProjectCursor): Promise<ProjectCursor> {
    const after = c.at ? c.after : this.full ? undefined : this.state.issuesAfter;
    const page = await this.client.list<GitLabIssue>(
      (paging) => this.client.api.Issues.all({ projectId: this.pid, scope: 'all', orderBy: 'updated_at', sort: 'asc', ...(after ? { updatedAfter: after } : {}), ...paging } as never),
      c.at,
      { etag: c.at ? undefined : this.#etag('issues') },
    );
    if (page.notModified) return { p: 'mrs' };
    const repository = this.ids.repository();
    for (const issue of page.items) {
      const id = this.ids.issue(issue.iid);
      await this.node(id, 'issue', issue.title || `#${issue.iid}`, {
        iid: issue.iid,
        state: issue.state,
        labels: (issue.labels ?? []).slice(0, 20).map((label) => clip(label, 60)),
        webUrl: issue.web_url,
        createdAt: issue.created_at,
        updatedAt: issue.updated_at,
        closedAt: issue.closed_at ?? undefined,
      });
      await this.edge(repository, 'HAS_ISSUE', id);
      const author = await this.user(issue.author);
      if (author) await this.edge(author, 'AUTHORED', id);
      this.state.issuesAfter = later(this.state.issuesAfter, issue.updated_at);
    }
    if (!c.at) this.#keepEtag('issues', page.next ? undefined : page.etag);
    const n = (c.n ?? 0) + page.items.length;
    await this.ctx.progress({ phase: `${this.path}: issues`, done: n });
    if (page.next) return { p: 'issues', at: page.next, n, ...(after ? { after } : {}) };
    return { p: 'mrs' };
  }

  async mergeRequests(c: ProjectCursor): Promise<ProjectCursor> {
    const after = c.at ? c.after : this.full ? undefined : this.state.mrsAfter;
    const page = await this.client.list<GitLabMergeRequest>(
      (paging) => this.client.api.MergeRequests.all({ projectId: this.pid, state: 'all', scope: 'all', orderBy: 'updated_at', sort: 'asc', ...(after ? { updatedAfter: after } : {}), ...paging } as never),
      c.at,
      { etag: c.at ? undefined : this.#etag('mrs') },
    );
    if (page.notModified) return { p: 'pipelines' };
    const repository = this.ids.repository();
    const namespace = (this.state.fullPath ?? this.path).split('/').slice(0, -1).join('/');
    for (const mr of page.items) {
      const id = this.ids.mergeRequest(mr.iid);
      await this.node(id, 'pull_request', mr.title || `!${mr.iid}`, {
        source: 'gitlab',
        iid: mr.iid,
        state: mr.state,
        draft: mr.draft ?? false,
        sourceBranch: mr.source_branch,
        targetBranch: mr.target_branch,
        sha: mr.sha ?? undefined,
        mergeCommitSha: mr.merge_commit_sha ?? undefined,
        webUrl: mr.web_url,
        createdAt: mr.created_at,
        updatedAt: mr.updated_at,
        mergedAt: mr.merged_at ?? undefined,
        closedAt: mr.closed_at ?? undefined,
      });
      await this.edge(repository, 'HAS_PULL_REQUEST', id);
      const author = await this.user(mr.author);
      if (author) await this.edge(author, 'AUTHORED', id);
      await this.edge(id, 'TARGETS', this.ids.branch(mr.target_branch));
      for (const reference of closingReferences(mr.description, this.base)) {
        // `other#3` is relative to the project's namespace, `group/other#3` a full path.
        const project = reference.project === undefined ? undefined : reference.project.includes('/') ? reference.project : `${namespace}/${reference.project}`;
        await this.edge(id, 'CLOSES', project === undefined ? this.ids.issue(reference.iid) : this.ids.issue(reference.iid, `${this.ids.prefix}${project}`));
      }
      this.state.mrsAfter = later(this.state.mrsAfter, mr.updated_at);
    }
    if (!c.at) this.#keepEtag('mrs', page.next ? undefined : page.etag);
    const n = (c.n ?? 0) + page.items.length;
    await this.ctx.progress({ phase: `${this.path}: merge requests`, done: n });
    if (page.next) return { p: 'mrs', at: page.next, n, ...(after ? { after } : {}) };
    return { p: 'pipelines' };
  }

  async #pipeline(pipeline: GitLabPipeline): Promise<void> {
    const id = this.ids.pipeline(pipeline.id);
    await this.node(id, 'pipeline', `Pipeline #${pipeline.id}`, {
      id: pipeline.id,
      iid: pipeline.iid,
      status: pipeline.status,
      ref: pipeline.ref,
      sha: pipeline.sha,
      trigger: pipeline.source,
      webUrl: pipeline.web_url,
      createdAt: pipeline.created_at,
      updatedAt: pipeline.updated_at,
    });
    await this.edge(id, 'RAN_ON', this.ids.commit(pipeline.sha));
  }

  async #job(job: GitLabJob): Promise<void> {
    const id = this.ids.job(job.id);
    await this.node(id, 'job', job.name, {
      id: job.id,
      stage: job.stage,
      status: job.status,
      ref: job.ref,
      pipelineId: job.pipeline.id,
      allowFailure: job.allow_failure,
      webUrl: job.web_url,
      createdAt: job.created_at,
      startedAt: job.started_at ?? undefined,
      finishedAt: job.finished_at ?? undefined,
      duration: job.duration ?? undefined,
    });
    await this.edge(this.ids.pipeline(job.pipeline.id), 'HAS_JOB', id);
  }

  async pipelines(c: ProjectCursor): Promise<ProjectCursor | 'yield'> {
    const window = this.options.pipelineWindow ?? PIPELINE_WINDOW;
    const incremental = this.incremental && this.state.pipelinesAfter !== undefined;
    if (!incremental) {
      // The window: the newest pipelines by id; their jobs come from the project's job list.
      const page = await this.client.list<GitLabPipeline>((paging) => this.client.api.Pipelines.all(this.pid, { orderBy: 'id', sort: 'desc', ...paging } as never), c.at);
      const taken = page.items.slice(0, Math.max(0, window - (c.n ?? 0)));
      let min = c.min;
      for (const pipeline of taken) {
        await this.#pipeline(pipeline);
        this.state.pipelinesAfter = later(this.state.pipelinesAfter, pipeline.updated_at);
        min = min === undefined ? pipeline.id : Math.min(min, pipeline.id);
      }
      const n = (c.n ?? 0) + taken.length;
      if (page.next && n < window) return { p: 'pipelines', at: page.next, n, ...(min !== undefined ? { min } : {}) };
      return min === undefined ? { p: 'done' } : { p: 'jobs', min };
    }
    // Incremental: pipelines updated since the watermark, and each one's jobs (retried ones too, as the project job list has them).
    const after = c.at || c.skip ? c.after : this.state.pipelinesAfter;
    const page = await this.client.list<GitLabPipeline>(
      (paging) => this.client.api.Pipelines.all(this.pid, { orderBy: 'updated_at', sort: 'asc', updatedAfter: after, ...paging } as never),
      c.at,
      { etag: c.at || c.skip ? undefined : this.#etag('pipelines') },
    );
    if (page.notModified) return { p: 'done' };
    for (let i = c.skip ?? 0; i < page.items.length; i++) {
      if (i > (c.skip ?? 0) && this.ctx.remainingMs() < STEP_MIN_MS) return { ...c, p: 'pipelines', skip: i, ...(after ? { after } : {}) };
      const pipeline = page.items[i]!;
      await this.#pipeline(pipeline);
      let at: PageRef | undefined;
      do {
        const jobs = await this.client.list<GitLabJob>((paging) => this.client.api.Jobs.all(this.pid, { pipelineId: pipeline.id, includeRetried: true, ...paging } as never), at);
        for (const job of jobs.items) await this.#job({ ...job, pipeline: { id: pipeline.id } });
        at = jobs.next;
      } while (at);
      this.state.pipelinesAfter = later(this.state.pipelinesAfter, pipeline.updated_at);
    }
    if (!c.at && !c.skip) this.#keepEtag('pipelines', page.next ? undefined : page.etag);
    if (page.next) return { p: 'pipelines', at: page.next, ...(after ? { after } : {}) };
    return { p: 'done' };
  }

  /** Full pass: the project's jobs, newest first, until a whole page is older than the window. */
  async jobs(c: ProjectCursor): Promise<ProjectCursor> {
    const min = c.min ?? Number.POSITIVE_INFINITY;
    const page = await this.client.list<GitLabJob>((paging) => this.client.api.Jobs.all(this.pid, paging as never), c.at);
    let inWindow = 0;
    for (const job of page.items) {
      if (!job.pipeline || job.pipeline.id < min) continue;
      inWindow++;
      await this.#job(job);
    }
    if (page.next && inWindow > 0) return { p: 'jobs', at: page.next, min };
    return { p: 'done' };
  }
}

function parseProjectCursor(raw: string | undefined): ProjectCursor | undefined {
  if (!raw) return undefined;
  try {
    const parsed = JSON.parse(raw) as ProjectCursor;
    return parsed && typeof parsed.p === 'string' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function parseCursor(raw: string | undefined): { i: number; c?: ProjectCursor } {
  if (!raw) return { i: 0 };
  try {
    const parsed = JSON.parse(raw) as { i?: number; c?: ProjectCursor };
    return { i: Number.isInteger(parsed.i) ? parsed.i! : 0, ...(parsed.c ? { c: parsed.c } : {}) };
  } catch {
    return { i: 0 };
  }
}

export function createGitLabSync(options: GitLabSyncOptions = {}) {
  /** The token: the runner's `ctx.freshCredentials` (OAuthTokenManager: refreshed under the connection's lease), else the manager directly. */
  const tokensFor = (ctx: Ctx): TokenSource =>
    options.tokens?.(ctx) ??
    (ctx.freshCredentials
      ? contextTokenSource((request) => ctx.freshCredentials!(request))
      : managedTokenSource({ connection: { tenantId: ctx.tenantId, id: ctx.connectionId }, remainingMs: () => ctx.remainingMs(), now: () => ctx.now().getTime() }));

  const clientFor = (ctx: Ctx) =>
    new GitLabClient({
      baseUrl: ctx.config.baseUrl,
      fetch: ctx.fetch,
      tokens: tokensFor(ctx),
      now: () => ctx.now().getTime(),
      remainingMs: () => ctx.remainingMs(),
      // GitLab's limits are per user: this connection's, whatever else this process syncs.
      quotaKey: `${new URL(ctx.config.baseUrl).origin}|${ctx.tenantId}/${ctx.connectionId}`,
      // Every GitLab request counts against its rate limit, a 304 too.
      onRequest: () => ctx.countRateLimited?.(1),
      ...(options.sleep ? { sleep: options.sleep } : {}),
    });

  /** The projects to sync: config.projects, else every non-archived project the user is a member of (up to 1,000). */
  async function listProjects(ctx: Ctx, client: GitLabClient): Promise<string[]> {
    if (ctx.config.projects) return [...ctx.config.projects];
    const paths: string[] = [];
    let at: PageRef | undefined;
    do {
      const page = await client.list<{ path_with_namespace: string }>(
        (paging) => client.api.Projects.all({ membership: true, simple: true, archived: false, orderBy: 'id', sort: 'asc', ...paging } as never),
        at,
        { keyset: true },
      );
      for (const project of page.items) if (typeof project.path_with_namespace === 'string') paths.push(project.path_with_namespace);
      at = page.next;
    } while (at && paths.length < MAX_PROJECTS);
    return paths.slice(0, MAX_PROJECTS);
  }

  /**
   * One project, from `cursor` until done or the slice's end. Every slice does at least one step
   * (`slice.steps`), however short its budget, so a run always moves on.
   */
  async function syncProject(ctx: Ctx, client: GitLabClient, path: string, start: ProjectCursor | undefined, slice: { steps: number }): Promise<{ done: boolean; cursor?: ProjectCursor; waitSeconds?: number }> {
    const scope = `project:${path}`;
    const state: ProjectState = { ...((await ctx.state.get(scope)) as ProjectState | undefined) };
    const project = new ProjectSync(ctx, path, client, state, options);
    project.steps = slice.steps;
    let cursor: ProjectCursor = start ?? { p: 'project' };
    let answer: { done: boolean; cursor?: ProjectCursor; waitSeconds?: number };
    try {
      for (;;) {
        if (cursor.p === 'done') {
          answer = { done: true };
          break;
        }
        if (project.steps > 0 && ctx.remainingMs() < STEP_MIN_MS) {
          answer = { done: false, cursor };
          break;
        }
        const next = await project.step(cursor);
        project.steps++;
        slice.steps = project.steps;
        if (next === 'gone') {
          ctx.warn(`GitLab project ${path} is not readable any more (deleted, moved, or access lost): nothing of it was synced; a full sync removes what the graph holds of it.`);
          return { done: true };
        }
        if (next === 'yield') {
          answer = { done: false, cursor };
          break;
        }
        cursor = next;
      }
    } catch (error) {
      if (!(error instanceof GitLabWaitError)) throw error;
      ctx.logger.info('gitlab asked to wait', { project: path, phase: cursor.p, waitSeconds: error.seconds });
      answer = { done: false, cursor, waitSeconds: error.seconds };
    }
    await ctx.state.put(scope, state as Record<string, unknown>);
    return answer;
  }

  return {
    async partitions(ctx: Ctx): Promise<string[]> {
      return listProjects(ctx, clientFor(ctx));
    },

    async sync(ctx: Ctx, raw: string | undefined): Promise<SyncResult> {
      const client = clientFor(ctx);
      const slice = { steps: 0 };
      if (ctx.partition !== '*') {
        const result = await syncProject(ctx, client, ctx.partition, parseProjectCursor(raw), slice);
        return result.done ? { done: true } : { done: false, cursor: JSON.stringify(result.cursor), ...(result.waitSeconds ? { waitSeconds: result.waitSeconds } : {}) };
      }
      // No fan-out: every project in turn, in this one partition.
      const projects = await listProjects(ctx, client);
      let { i, c } = parseCursor(raw);
      for (; i < projects.length; i++, c = undefined) {
        if (slice.steps > 0 && ctx.remainingMs() < STEP_MIN_MS) return { done: false, cursor: JSON.stringify({ i, ...(c ? { c } : {}) }) };
        const result = await syncProject(ctx, client, projects[i]!, c, slice);
        if (!result.done) return { done: false, cursor: JSON.stringify({ i, c: result.cursor }), ...(result.waitSeconds ? { waitSeconds: result.waitSeconds } : {}) };
      }
      return { done: true };
    },
  };
}
