/**
 * The GitHub sync: one partition per repository (`owner/name`), each synced by
 * `syncGitHubRepository` in phases that read like GitHub's REST reference:
 *
 *   repo      GET /repos/{o}/{r}                        organization (or user) + repository, CONTAINS
 *   branches  GET /repos/{o}/{r}/branches               branch, HAS_BRANCH, HEAD → commit
 *   commits   GET /repos/{o}/{r}/commits?sha={head}     commit, PARENT, person, AUTHORED (default branch:
 *                                                       back to the last synced SHA, or `commitDepth`)
 *   tree      GET /repos/{o}/{r}/git/trees/{head}?recursive=1, walking sub-trees when `truncated`
 *                                                       directory, file, CONTAINS
 *   code      GET /repos/{o}/{r}/tarball/{head} (302)   symbols, packages, DEFINES / IMPORTS / DEPENDS_ON
 *                                                       (functions/code, incremental against the last analysis)
 *   issues    GET /repos/{o}/{r}/issues?state=all&sort=updated&direction=desc[&since=]
 *                                                       issue, HAS_ISSUE, person, AUTHORED
 *   pulls     GET /repos/{o}/{r}/pulls?state=all&sort=updated&direction=desc
 *                                                       pull_request, HAS_PULL_REQUEST, TARGETS, CLOSES, AUTHORED
 *
 * Incremental passes lean on conditional requests (a 304 costs no rate limit) and on what the
 * repository's sync state remembers (`repo:<owner/name>`: ETags, the default branch's head, the
 * commit whose commits / tree / code are in the graph, the newest issue and pull request seen):
 * - the repository and the branch list are asked with `If-None-Match`; an unchanged branch list
 *   means an unchanged default head, so commits, tree and code are skipped unless a phase of an
 *   earlier pass did not finish for that head;
 * - the first page of issues is asked without `since` (so its URL and ETag stay the same from pass
 *   to pass) and with `If-None-Match`: a 304 means no issue or pull request changed, and the pass
 *   is over. Otherwise the listing (later pages with `since`) stops at the first item older than
 *   the last pass's newest, and pull requests are listed (first page conditional too) only when
 *   one changed.
 * So a no-change incremental pass costs three requests per repository, all 304s: none counts
 * against the primary rate limit. A full pass asks everything unconditionally and re-emits it all
 * (the sweep deletes what it did not see); it still stores the ETags for the next incremental.
 *
 * Each phase records its marker in the sync state only when it finished, and the slice writes the
 * state after its graph writes (functions/sync/slice.ts), so an interrupted sync resumes with the
 * phase it was in. Within a run, the cursor (phase, next page URL, head) carries a partition across
 * slices: before `ctx.remainingMs()` runs low, and when a rate limit asks for a longer wait than
 * a slice should spend in-process (`waitSeconds`: the state machine's Wait state waits).
 */
import type { SyncContext, SyncResult } from '../types.ts';
import type { GraphEdgeInput, GraphNodeInput, Props } from '#graph/model.ts';
import type { OAuthCredentials } from '../../oauth/credentials.ts';
import { analyzeRepositoryArchive, CODE_GRAPH_KINDS, formatWarnings } from '../../code/index.ts';
import { githubIds as ids } from './ids.ts';
import { githubUrls } from './oauth.ts';
import { GitHubRequestError, GitHubRest, RateLimitWait, type Answer, type TokenSource } from './rest.ts';

export interface GitHubSyncConfig {
  installationId?: number;
  repositories?: string[];
}

type Ctx = SyncContext<GitHubSyncConfig, OAuthCredentials>;

/** Knobs, from the environment of the GitHub sync Lambda. */
export interface GitHubSyncSettings {
  /** Commits of the default branch a first (or full) pass reads; the graph keeps this rolling window. */
  commitDepth: number;
  /** Rate-limit waits up to this long happen in-process; longer ones go to the state machine's Wait. */
  maxInlineWaitSeconds: number;
  /** Milliseconds per second of retry-after / backoff (1000; tests shorten it). */
  retryAfterBaseMs: number;
}

const envNumber = (env: NodeJS.ProcessEnv, name: string, fallback: number) => {
  const value = Number(env[name]);
  return env[name] !== undefined && env[name] !== '' && Number.isFinite(value) && value >= 0 ? value : fallback;
};

export function githubSyncSettings(env: NodeJS.ProcessEnv = process.env): GitHubSyncSettings {
  return {
    commitDepth: Math.max(1, Math.floor(envNumber(env, 'GITHUB_COMMIT_DEPTH', 500))),
    maxInlineWaitSeconds: envNumber(env, 'GITHUB_MAX_INLINE_WAIT_SECONDS', 60),
    retryAfterBaseMs: envNumber(env, 'GITHUB_RETRY_BASE_MS', 1000),
  };
}

/** The repository's sync state (`repo:<owner/name>`): what finished, for which head, and the ETags. */
interface RepoState {
  repo?: { etag?: string; id: number; defaultBranch: string; owner: string; ownerType: string };
  /** ETag of the branch list (kept when it fits one page) and the default branch's head it showed. */
  branches?: { etag?: string; defaultHead?: string };
  commitsHead?: string;
  treeHead?: string;
  analyzedSha?: string;
  issues?: { etag?: string; since?: string };
  pulls?: { etag?: string; since?: string };
}

type Phase = 'repo' | 'branches' | 'commits' | 'tree' | 'code' | 'issues' | 'pulls' | 'done';

/** What carries one repository's pass from slice to slice (small: ids, SHAs, one URL). */
interface Cursor {
  phase: Phase;
  next?: string;
  head?: string;
  branchesEtag?: string;
  pages?: number;
  count?: number;
  codeRetried?: boolean;
  issuesEtag?: string;
  newestIssue?: string;
  prs?: boolean;
  pullsEtag?: string;
  newestPull?: string;
}

interface RepositoryAnswer {
  id: number;
  full_name: string;
  name: string;
  private: boolean;
  default_branch: string;
  description: string | null;
  archived?: boolean;
  html_url?: string;
  language?: string | null;
  owner: { login: string; type?: string; html_url?: string };
}
interface BranchAnswer {
  name: string;
  commit: { sha: string };
  protected?: boolean;
}
interface UserAnswer {
  login: string;
  type?: string;
}
interface CommitAnswer {
  sha: string;
  html_url?: string;
  commit: { message: string; author?: { name?: string; email?: string; date?: string } | null };
  author?: UserAnswer | null;
  parents: { sha: string }[];
}
interface TreeAnswer {
  sha: string;
  truncated: boolean;
  tree: { path: string; type: 'blob' | 'tree' | 'commit'; sha: string; size?: number }[];
}
interface IssueAnswer {
  number: number;
  title: string;
  state: string;
  user?: UserAnswer | null;
  labels?: ({ name?: string } | string)[];
  comments?: number;
  created_at: string;
  updated_at: string;
  closed_at: string | null;
  html_url?: string;
  pull_request?: unknown;
}
interface PullAnswer {
  number: number;
  title: string;
  body?: string | null;
  state: string;
  draft?: boolean;
  merged_at: string | null;
  user?: UserAnswer | null;
  created_at: string;
  updated_at: string;
  closed_at: string | null;
  html_url?: string;
  base: { ref: string };
  head: { ref: string; sha?: string };
}

const clip = (text: string | null | undefined, max: number) => {
  const value = (text ?? '').replace(/\s+/g, ' ').trim();
  return value.length > max ? `${value.slice(0, max - 1)}…` : value;
};
const firstLine = (message: string) => message.split('\n')[0] ?? '';
const later = (a: string | undefined, b: string | undefined) => (!a ? b : !b ? a : a > b ? a : b);

/** "Fixes #12", "closes acme/api#3", "Resolved: #7" (GitHub's closing keywords). */
const CLOSING = /\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\b:?\s+(?:([A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+))?#(\d+)\b/gi;
export function closingReferences(text: string, fullName: string): { repo: string; number: number }[] {
  const found = new Map<string, { repo: string; number: number }>();
  for (const match of text.matchAll(CLOSING)) {
    const repo = match[1] ?? fullName;
    const number = Number(match[2]);
    if (Number.isSafeInteger(number) && number > 0) found.set(`${repo.toLowerCase()}#${number}`, { repo, number });
  }
  return [...found.values()];
}

const withSince = (url: string, since: string | undefined) => {
  if (!since) return url;
  const parsed = new URL(url);
  parsed.searchParams.set('since', since);
  return parsed.toString();
};

const stateScope = (fullName: string) => `repo:${fullName.toLowerCase()}`;

/** The repositories of a connection: its configured selection, else what the installation grants (up to 1,000). */
export async function githubPartitions(ctx: Ctx): Promise<string[]> {
  if (ctx.config.repositories) return [...ctx.config.repositories];
  if (ctx.config.installationId === undefined) throw new GitHubRequestError(0, 'The connection names no GitHub App installation and no repositories: test the connection (POST …/test) or PATCH config.repositories.');
  const rest = restFor(ctx, githubSyncSettings());
  const names: string[] = [];
  let url: string | undefined = rest.url(`user/installations/${ctx.config.installationId}/repositories?per_page=100`);
  for (let page = 0; url && page < 10; page++) {
    const answer: Answer<{ repositories?: { full_name?: string }[] }> | undefined = await rest.get(url);
    if (!answer || answer.notModified) break;
    for (const repo of answer.data.repositories ?? []) if (typeof repo.full_name === 'string') names.push(repo.full_name);
    url = answer.next;
  }
  return names;
}

function restFor(ctx: Ctx, settings: GitHubSyncSettings): GitHubRest {
  let current = ctx.credentials.accessToken;
  const tokens: TokenSource = {
    token: async () => current,
    renew: async (rejected) => {
      if (!ctx.freshCredentials) throw new GitHubRequestError(401, 'GitHub refused the token (401) and this runner cannot renew it: connect GitHub again.');
      current = (await ctx.freshCredentials({ rejectedAccessToken: rejected })).accessToken;
    },
  };
  return new GitHubRest({
    baseUrl: githubUrls().api,
    fetch: ctx.fetch,
    tokens,
    logger: ctx.logger,
    remainingMs: () => ctx.remainingMs(),
    countRateLimited: (count) => ctx.countRateLimited?.(count),
    id: ctx.connectionId,
    maxInlineWaitSeconds: settings.maxInlineWaitSeconds,
    retryAfterBaseMs: settings.retryAfterBaseMs,
  });
}

export async function syncGitHubRepository(ctx: Ctx, cursor: string | undefined): Promise<SyncResult> {
  if (ctx.partition === '*') throw new GitHubRequestError(0, 'The GitHub sync runs per repository: this run has no repository partition (start a new sync).');
  return new RepositorySync(ctx, githubSyncSettings()).run(cursor);
}

class RepositorySync {
  readonly #ctx: Ctx;
  readonly #settings: GitHubSyncSettings;
  readonly #rest: GitHubRest;
  readonly #fullName: string;
  readonly #incremental: boolean;
  /** The slice's time at its start: reserves are a share of it (5 s of a 14-minute Lambda slice, less of a short local one). */
  readonly #startRemaining: number;
  #state: RepoState = {};
  #cursor: Cursor = { phase: 'repo' };
  #steps = 0;
  /** Set by a phase that wants a fresh slice (the code analysis). */
  #yieldNow = false;
  /** path → blob SHA of the head's tree, when this slice listed it. */
  #currentShas: Map<string, string> | undefined;

  constructor(ctx: Ctx, settings: GitHubSyncSettings) {
    this.#ctx = ctx;
    this.#settings = settings;
    this.#rest = restFor(ctx, settings);
    this.#fullName = ctx.partition;
    this.#incremental = ctx.mode === 'incremental';
    this.#startRemaining = Math.max(0, ctx.remainingMs());
  }

  get #reserveMs(): number {
    return Math.min(5_000, this.#startRemaining * 0.2);
  }

  async run(cursorText: string | undefined): Promise<SyncResult> {
    if (cursorText) this.#cursor = JSON.parse(cursorText) as Cursor;
    this.#state = ((await this.#ctx.state.get(stateScope(this.#fullName))) ?? {}) as RepoState;
    try {
      while (this.#cursor.phase !== 'done') {
        if (this.#yieldNow || (this.#steps > 0 && this.#ctx.remainingMs() < this.#reserveMs)) return await this.#handBack();
        await this.#step();
        this.#steps++;
      }
      await this.#saveState();
      return { done: true };
    } catch (error) {
      if (error instanceof RateLimitWait) return this.#handBack(error.waitSeconds);
      throw error;
    }
  }

  async #handBack(waitSeconds?: number): Promise<SyncResult> {
    await this.#saveState();
    return { done: false, cursor: JSON.stringify(this.#cursor), ...(waitSeconds !== undefined ? { waitSeconds } : {}) };
  }

  async #saveState(): Promise<void> {
    await this.#ctx.state.put(stateScope(this.#fullName), this.#state as Record<string, unknown>);
  }

  #go(phase: Phase): void {
    const head = this.#cursor.head;
    const keep = { head, issuesEtag: this.#cursor.issuesEtag, newestIssue: this.#cursor.newestIssue, prs: this.#cursor.prs };
    this.#cursor = { phase, ...Object.fromEntries(Object.entries(keep).filter(([, value]) => value !== undefined)) };
  }

  async #progress(phase: string, done: number, total?: number): Promise<void> {
    await this.#ctx.progress({ phase, done, ...(total !== undefined ? { total } : {}) });
  }

  async #step(): Promise<void> {
    switch (this.#cursor.phase) {
      case 'repo':
        return this.#repository();
      case 'branches':
        return this.#branches();
      case 'commits':
        return this.#commits();
      case 'tree':
        return this.#tree();
      case 'code':
        return this.#code();
      case 'issues':
        return this.#issues();
      case 'pulls':
        return this.#pulls();
      default:
        this.#cursor = { phase: 'done' };
    }
  }

  async #node(node: GraphNodeInput): Promise<void> {
    await this.#ctx.graph.upsertNode(node);
  }

  async #edge(from: string, type: string, to: string, props?: Props): Promise<void> {
    const edge: GraphEdgeInput = { from, type, to, ...(props ? { props } : {}) };
    await this.#ctx.graph.upsertEdge(edge);
  }

  /** A person by GitHub login, or by email when GitHub could not attribute a commit to an account. */
  async #person(login: string | undefined, email?: string): Promise<string | undefined> {
    if (login) {
      const id = ids.person(login);
      await this.#node({ id, type: 'person', name: login, props: { login } });
      return id;
    }
    if (email) {
      const id = ids.personByEmail(email);
      await this.#node({ id, type: 'person', name: email.toLowerCase(), props: { email: email.toLowerCase() } });
      return id;
    }
    return undefined;
  }

  async #repository(): Promise<void> {
    const known = this.#state.repo;
    const answer = await this.#rest.get<RepositoryAnswer>(this.#rest.url(`repos/${this.#fullName}`), { etag: this.#incremental ? known?.etag : undefined, accept404: true });
    if (!answer) {
      // Deleted, renamed away, or no longer granted: a full pass then sweeps its items (they are not seen).
      this.#ctx.warn(`${this.#fullName}: GitHub answers 404 Not Found (deleted, renamed, or no longer granted to the OpenTrace GitHub App); nothing was synced for it.`);
      this.#cursor = { phase: 'done' };
      return;
    }
    if (!answer.notModified) {
      const repo = answer.data;
      const ownerType = repo.owner.type ?? 'User';
      const org = ids.organization(repo.owner.login);
      const repoId = ids.repository(this.#fullName);
      await this.#node({ id: org, type: 'organization', name: repo.owner.login, props: { login: repo.owner.login, accountType: ownerType, ...(repo.owner.html_url ? { url: repo.owner.html_url } : {}) } });
      await this.#node({
        id: repoId,
        type: 'repository',
        name: this.#fullName,
        props: {
          fullName: this.#fullName,
          owner: repo.owner.login,
          private: repo.private,
          defaultBranch: repo.default_branch,
          archived: repo.archived ?? false,
          ...(repo.description ? { description: clip(repo.description, 300) } : {}),
          ...(repo.language ? { language: repo.language } : {}),
          ...(repo.html_url ? { url: repo.html_url } : {}),
          source: 'github',
        },
      });
      await this.#edge(org, 'CONTAINS', repoId);
      this.#state.repo = { ...(answer.etag ? { etag: answer.etag } : {}), id: repo.id, defaultBranch: repo.default_branch, owner: repo.owner.login, ownerType };
    } else if (!known) {
      throw new GitHubRequestError(304, `GitHub answered 304 for ${this.#fullName} without a stored repository.`);
    }
    await this.#progress('repository', 1);
    this.#go('branches');
  }

  async #branches(): Promise<void> {
    const first = this.#rest.url(`repos/${this.#fullName}/branches?per_page=100`);
    const url = this.#cursor.next ?? first;
    const known = this.#state.branches;
    const conditional = this.#incremental && url === first && known?.etag !== undefined;
    const answer = await this.#rest.get<BranchAnswer[]>(url, { etag: conditional ? known!.etag : undefined, accept404: true });
    if (answer?.notModified) {
      // No branch moved: the default head is the one the stored list showed.
      this.#cursor.head = known?.defaultHead;
      this.#go('commits');
      return;
    }
    const defaultBranch = this.#state.repo!.defaultBranch;
    const repoId = ids.repository(this.#fullName);
    for (const branch of answer?.data ?? []) {
      const id = ids.branch(this.#fullName, branch.name);
      await this.#node({ id, type: 'branch', name: branch.name, props: { name: branch.name, repository: this.#fullName, protected: branch.protected ?? false, default: branch.name === defaultBranch } });
      await this.#edge(repoId, 'HAS_BRANCH', id);
      await this.#edge(id, 'HEAD', ids.commit(this.#fullName, branch.commit.sha));
      if (branch.name === defaultBranch) this.#cursor.head = branch.commit.sha;
    }
    this.#cursor.pages = (this.#cursor.pages ?? 0) + 1;
    if (url === first) this.#cursor.branchesEtag = answer?.etag;
    if (answer?.next) {
      this.#cursor.next = answer.next;
      return;
    }
    // The ETag of a one-page list stands for every branch; a longer list is read again each pass.
    const single = this.#cursor.pages === 1;
    this.#state.branches = { ...(single && this.#cursor.branchesEtag ? { etag: this.#cursor.branchesEtag } : {}), ...(this.#cursor.head ? { defaultHead: this.#cursor.head } : {}) };
    await this.#progress('branches', answer?.data.length ?? 0);
    this.#go('commits');
  }

  async #commits(): Promise<void> {
    const head = this.#cursor.head;
    if (!head || (this.#incremental && this.#state.commitsHead === head)) return this.#go('tree');
    const since = this.#incremental ? this.#state.commitsHead : undefined;
    const url = this.#cursor.next ?? this.#rest.url(`repos/${this.#fullName}/commits?sha=${head}&per_page=100`);
    const answer = await this.#rest.get<CommitAnswer[]>(url, { accept404: true });
    let count = this.#cursor.count ?? 0;
    let finished = !answer || answer.notModified || !answer.next;
    for (const commit of answer && !answer.notModified ? answer.data : []) {
      if (since && commit.sha === since) {
        finished = true;
        break;
      }
      count++;
      const atDepth = count >= this.#settings.commitDepth;
      await this.#commit(commit, !atDepth);
      if (atDepth) {
        finished = true;
        break;
      }
    }
    this.#cursor.count = count;
    await this.#progress('commits', count, this.#settings.commitDepth);
    if (!finished && answer && !answer.notModified) {
      this.#cursor.next = answer.next;
      return;
    }
    this.#state.commitsHead = head;
    this.#go('tree');
  }

  async #commit(commit: CommitAnswer, withParents: boolean): Promise<void> {
    const id = ids.commit(this.#fullName, commit.sha);
    const message = firstLine(commit.commit.message);
    await this.#node({
      id,
      type: 'commit',
      name: clip(message, 100) || commit.sha.slice(0, 7),
      props: {
        sha: commit.sha,
        message: clip(message, 200),
        repository: this.#fullName,
        ...(commit.commit.author?.date ? { authoredAt: commit.commit.author.date } : {}),
        ...(commit.html_url ? { url: commit.html_url } : {}),
      },
    });
    // The window's oldest commit keeps no PARENT edge: its parent is outside the graph.
    if (withParents) for (const parent of commit.parents) await this.#edge(id, 'PARENT', ids.commit(this.#fullName, parent.sha));
    const person = await this.#person(commit.author?.login, commit.commit.author?.email);
    if (person) await this.#edge(person, 'AUTHORED', id);
  }

  /** Every entry of a tree (path, type, SHA), walking sub-trees when GitHub truncates the recursive listing. */
  async #listTree(ref: string): Promise<TreeAnswer['tree'] | undefined> {
    const answer = await this.#rest.get<TreeAnswer>(this.#rest.url(`repos/${this.#fullName}/git/trees/${ref}?recursive=1`), { accept404: true });
    if (!answer || answer.notModified) return undefined;
    if (!answer.data.truncated) return answer.data.tree;
    this.#ctx.logger.info('github tree truncated: walking sub-trees', { repository: this.#fullName, ref });
    const entries: TreeAnswer['tree'] = [];
    const walk = async (sha: string, prefix: string): Promise<void> => {
      const level = await this.#rest.get<TreeAnswer>(this.#rest.url(`repos/${this.#fullName}/git/trees/${sha}`));
      if (!level || level.notModified) throw new GitHubRequestError(404, `GitHub did not answer the tree ${sha} of ${this.#fullName}.`);
      for (const entry of level.data.tree) {
        const path = `${prefix}${entry.path}`;
        entries.push({ ...entry, path });
        if (entry.type !== 'tree') continue;
        const sub = await this.#rest.get<TreeAnswer>(this.#rest.url(`repos/${this.#fullName}/git/trees/${entry.sha}?recursive=1`));
        if (!sub || sub.notModified) throw new GitHubRequestError(404, `GitHub did not answer the tree ${entry.sha} of ${this.#fullName}.`);
        if (sub.data.truncated) await walk(entry.sha, `${path}/`);
        else for (const nested of sub.data.tree) entries.push({ ...nested, path: `${path}/${nested.path}` });
      }
    };
    await walk(ref, '');
    return entries;
  }

  async #tree(): Promise<void> {
    const head = this.#cursor.head;
    if (!head || (this.#incremental && this.#state.treeHead === head)) return this.#go('code');
    const entries = await this.#listTree(head);
    if (!entries) {
      this.#ctx.warn(`${this.#fullName}: GitHub did not list the tree of ${head.slice(0, 7)}; its files were not synced.`);
      this.#ctx.markIncomplete('file', `the tree of ${this.#fullName} could not be listed`);
      this.#ctx.markIncomplete('directory', `the tree of ${this.#fullName} could not be listed`);
      this.#ctx.markIncomplete('CONTAINS', `the tree of ${this.#fullName} could not be listed`);
      return this.#go('code');
    }
    const repoId = ids.repository(this.#fullName);
    const shas = new Map<string, string>();
    let done = 0;
    for (const entry of entries) {
      if (entry.type === 'commit') continue; // a submodule: another repository's commit
      const slash = entry.path.lastIndexOf('/');
      const parent = slash === -1 ? repoId : ids.directory(this.#fullName, entry.path.slice(0, slash));
      if (entry.type === 'tree') {
        const id = ids.directory(this.#fullName, entry.path);
        await this.#node({ id, type: 'directory', name: entry.path, props: { path: entry.path, repository: this.#fullName } });
        await this.#edge(parent, 'CONTAINS', id);
      } else {
        const id = ids.file(this.#fullName, entry.path);
        await this.#node({ id, type: 'file', name: entry.path, props: { path: entry.path, repository: this.#fullName, sha: entry.sha, ...(entry.size !== undefined ? { size: entry.size } : {}) } });
        await this.#edge(parent, 'CONTAINS', id);
        shas.set(entry.path, entry.sha);
      }
      if (++done % 1000 === 0) await this.#progress('files', done, entries.length);
    }
    await this.#progress('files', done, entries.length);
    this.#currentShas = shas;
    this.#state.treeHead = head;
    this.#go('code');
  }

  async #code(): Promise<void> {
    const head = this.#cursor.head;
    if (!head || (this.#incremental && this.#state.analyzedSha === head)) return this.#go('issues');
    // The analysis wants a good part of a slice: start it in a fresh one unless this one is young.
    const need = Math.min(60_000, this.#startRemaining * 0.5);
    if (this.#steps > 0 && this.#ctx.remainingMs() < need) {
      this.#yieldNow = true;
      return;
    }
    const incomplete = (reason: string) => {
      for (const kind of CODE_GRAPH_KINDS) this.#ctx.markIncomplete(kind, reason);
    };
    try {
      const currentShas = this.#currentShas ?? toShaMap(await this.#listTree(head));
      const previous = this.#incremental && this.#state.analyzedSha ? toShaMap(await this.#listTree(this.#state.analyzedSha)) : undefined;
      const budget = Math.max(5_000, this.#ctx.remainingMs() - 2_000);
      const signal = AbortSignal.timeout(budget);
      const archive = await this.#rest.tarball(this.#fullName, head, signal);
      await this.#progress('code', 0);
      const result = await analyzeRepositoryArchive({
        repository: { source: 'github', repoKey: this.#fullName },
        archive,
        graph: this.#ctx.graph,
        ...(previous && previous.size > 0 ? { previousShas: previous } : {}),
        ...(currentShas && currentShas.size > 0 ? { currentShas } : {}),
        signal,
        onProgress: (stats) => this.#progress('code', stats.files),
        progressEvery: 200,
      });
      for (const line of formatWarnings(result.warnings)) this.#ctx.warn(`${this.#fullName}: ${line}`);
      if (result.complete && result.stats.entries === 0) {
        // GitHub's archive always holds at least its top-level folder: an empty one is a broken
        // download, not an empty repository, and must not read as "every symbol is gone".
        this.#ctx.warn(`${this.#fullName}: GitHub's archive of ${head.slice(0, 7)} was empty; its symbols and dependencies are kept from the last complete analysis.`);
        incomplete('the archive download was empty');
      } else if (result.complete) {
        this.#state.analyzedSha = head;
      } else if (signal.aborted && !this.#cursor.codeRetried && this.#steps > 0) {
        // Out of time in a slice that did other work first: once more, in a slice of its own.
        this.#cursor.codeRetried = true;
        this.#yieldNow = true;
        return;
      } else {
        this.#ctx.warn(`${this.#fullName}: the code analysis did not finish (${result.incompleteReason ?? 'stopped early'}); its symbols and dependencies are kept from the last complete one.`);
        incomplete(result.incompleteReason ?? 'the analysis stopped early');
      }
    } catch (error) {
      if (error instanceof RateLimitWait) throw error;
      if (!(error instanceof GitHubRequestError)) throw error;
      this.#ctx.warn(`${this.#fullName}: the code could not be analysed: ${error.message}`);
      incomplete(error.message);
    }
    this.#go('issues');
  }

  async #issues(): Promise<void> {
    const first = this.#rest.url(`repos/${this.#fullName}/issues?state=all&sort=updated&direction=desc&per_page=100`);
    const url = this.#cursor.next ?? first;
    const known = this.#state.issues;
    const since = this.#incremental ? known?.since : undefined;
    const answer = await this.#rest.get<IssueAnswer[]>(url, { etag: this.#incremental && url === first ? known?.etag : undefined, accept404: true });
    // Issues turned off for the repository (410 Gone): pull requests are still listed.
    if (!answer) return this.#go('pulls');
    if (answer.notModified) {
      // Not one issue or pull request changed since the last listing: the pass is over.
      this.#cursor = { phase: 'done' };
      return;
    }
    if (url === first) this.#cursor.issuesEtag = answer.etag;
    const repoId = ids.repository(this.#fullName);
    let reachedOld = false;
    let count = this.#cursor.count ?? 0;
    for (const issue of answer.data) {
      if (since && issue.updated_at < since) {
        reachedOld = true;
        break;
      }
      this.#cursor.newestIssue = later(this.#cursor.newestIssue, issue.updated_at);
      if (issue.pull_request) {
        // Pull requests come from /pulls (base branch, merge state); this says one changed.
        this.#cursor.prs = true;
        continue;
      }
      const id = ids.issue(this.#fullName, issue.number);
      const labels = (issue.labels ?? []).map((label) => (typeof label === 'string' ? label : label.name)).filter((name): name is string => typeof name === 'string').slice(0, 10);
      await this.#node({
        id,
        type: 'issue',
        name: clip(issue.title, 200) || `#${issue.number}`,
        props: {
          number: issue.number,
          title: clip(issue.title, 200),
          state: issue.state,
          repository: this.#fullName,
          createdAt: issue.created_at,
          updatedAt: issue.updated_at,
          ...(issue.closed_at ? { closedAt: issue.closed_at } : {}),
          ...(labels.length > 0 ? { labels } : {}),
          ...(issue.html_url ? { url: issue.html_url } : {}),
        },
      });
      await this.#edge(repoId, 'HAS_ISSUE', id);
      const person = await this.#person(issue.user?.login);
      if (person) await this.#edge(person, 'AUTHORED', id);
      count++;
    }
    this.#cursor.count = count;
    await this.#progress('issues', count);
    if (!reachedOld && answer.next) {
      // Later pages carry `since`: GitHub then leaves out what is older (the first page's URL stays constant for its ETag).
      this.#cursor.next = withSince(answer.next, since);
      return;
    }
    this.#go('pulls');
  }

  async #pulls(): Promise<void> {
    const knownPulls = this.#state.pulls;
    // Incremental, and no pull request among the changed issues: nothing to read.
    if (this.#incremental && !this.#cursor.next && !this.#cursor.prs && knownPulls) return this.#finishListings();
    const first = this.#rest.url(`repos/${this.#fullName}/pulls?state=all&sort=updated&direction=desc&per_page=100`);
    const url = this.#cursor.next ?? first;
    const since = this.#incremental ? knownPulls?.since : undefined;
    const answer = await this.#rest.get<PullAnswer[]>(url, { etag: this.#incremental && url === first ? knownPulls?.etag : undefined, accept404: true });
    if (!answer || answer.notModified) return this.#finishListings();
    if (url === first) this.#cursor.pullsEtag = answer.etag;
    const repoId = ids.repository(this.#fullName);
    let reachedOld = false;
    let count = this.#cursor.count ?? 0;
    for (const pull of answer.data) {
      if (since && pull.updated_at < since) {
        reachedOld = true;
        break;
      }
      this.#cursor.newestPull = later(this.#cursor.newestPull, pull.updated_at);
      const id = ids.pullRequest(this.#fullName, pull.number);
      const merged = pull.merged_at !== null && pull.merged_at !== undefined;
      await this.#node({
        id,
        type: 'pull_request',
        name: clip(pull.title, 200) || `#${pull.number}`,
        props: {
          number: pull.number,
          title: clip(pull.title, 200),
          state: merged ? 'merged' : pull.state,
          merged,
          draft: pull.draft ?? false,
          base: pull.base.ref,
          head: pull.head.ref,
          repository: this.#fullName,
          source: 'github',
          createdAt: pull.created_at,
          updatedAt: pull.updated_at,
          ...(pull.closed_at ? { closedAt: pull.closed_at } : {}),
          ...(pull.merged_at ? { mergedAt: pull.merged_at } : {}),
          ...(pull.html_url ? { url: pull.html_url } : {}),
        },
      });
      await this.#edge(repoId, 'HAS_PULL_REQUEST', id);
      await this.#edge(id, 'TARGETS', ids.branch(this.#fullName, pull.base.ref));
      for (const ref of closingReferences(`${pull.title}\n${pull.body ?? ''}`, this.#fullName)) await this.#edge(id, 'CLOSES', ids.issue(ref.repo, ref.number));
      const person = await this.#person(pull.user?.login);
      if (person) await this.#edge(person, 'AUTHORED', id);
      count++;
    }
    this.#cursor.count = count;
    await this.#progress('pull requests', count);
    if (!reachedOld && answer.next) {
      this.#cursor.next = answer.next;
      return;
    }
    this.#finishListings();
  }

  /** Issues and pull requests both listed: the next pass starts from what this one saw. */
  #finishListings(): void {
    const { issuesEtag, newestIssue, pullsEtag, newestPull } = this.#cursor;
    const issues = this.#state.issues ?? {};
    const pulls = this.#state.pulls ?? {};
    this.#state.issues = { ...issues, ...(issuesEtag ? { etag: issuesEtag } : {}), ...(later(issues.since, newestIssue) ? { since: later(issues.since, newestIssue)! } : {}) };
    this.#state.pulls = { ...pulls, ...(pullsEtag ? { etag: pullsEtag } : {}), ...(later(pulls.since, newestPull) ? { since: later(pulls.since, newestPull)! } : {}) };
    this.#cursor = { phase: 'done' };
  }
}

function toShaMap(entries: TreeAnswer['tree'] | undefined): Map<string, string> | undefined {
  if (!entries) return undefined;
  return new Map(entries.filter((entry) => entry.type === 'blob').map((entry) => [entry.path, entry.sha]));
}
