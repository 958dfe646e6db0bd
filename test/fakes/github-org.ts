/**
 * Git data for the GitHub fake (test/fakes/github.ts): repositories with real git object ids
 * (blob SHA-1 as git computes it, content-addressed trees), branches, a commit history, issues and
 * pull requests, generated deterministically from a seed at any size; plus the edits a test makes
 * between two syncs (push a commit, delete a file, force-push a branch, close an issue, open a
 * pull request) and the tar.gz a tarball download serves.
 *
 * Only the trees of commits that were ever a branch head are materialized (a history of 200
 * commits × 300 files would otherwise be 60,000 tree entries per repository): older commits carry
 * a tree SHA that the trees route answers 404 for, as GitHub would for an object it garbage
 * collected. The sync only ever asks for the trees of heads.
 */
import { createHash } from 'node:crypto';
import { createGzip } from 'node:zlib';
import { pack } from 'tar-stream';

export interface FakeAuthor {
  name: string;
  email: string;
  /** The GitHub account the email belongs to; null for a commit GitHub cannot attribute. */
  login: string | null;
}

export interface FakeCommit {
  sha: string;
  treeSha: string;
  parents: string[];
  message: string;
  author: FakeAuthor;
  date: string;
}

export interface FakeTreeEntry {
  name: string;
  type: 'blob' | 'tree';
  sha: string;
  mode: string;
  size?: number;
}

export interface FakePullFacts {
  base: string;
  head: string;
  headSha: string;
  merged: boolean;
  mergedAt: string | null;
  draft: boolean;
}

export interface FakeIssue {
  number: number;
  title: string;
  body: string;
  state: 'open' | 'closed';
  author: string;
  labels: string[];
  createdAt: string;
  updatedAt: string;
  closedAt: string | null;
  /** Present on a pull request (GitHub numbers issues and pull requests in one sequence). */
  pull?: FakePullFacts;
}

const sha1 = (data: string | Buffer) => createHash('sha1').update(data).digest('hex');
export const blobSha = (content: Buffer) => createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');

/** A small deterministic PRNG (mulberry32), so a seed always generates the same organization. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class FakeRepositoryGit {
  readonly fullName: string;
  defaultBranch: string;
  readonly branches = new Map<string, string>();
  readonly protectedBranches = new Set<string>();
  readonly commits = new Map<string, FakeCommit>();
  readonly trees = new Map<string, FakeTreeEntry[]>();
  readonly blobs = new Map<string, Buffer>();
  readonly issues: FakeIssue[] = [];
  /** Increases on every change a listing would show (the fake's ETags hash the answers anyway). */
  #clock: () => string;

  constructor(fullName: string, defaultBranch: string, clock: () => string) {
    this.fullName = fullName;
    this.defaultBranch = defaultBranch;
    this.#clock = clock;
  }

  get owner(): string {
    return this.fullName.split('/')[0]!;
  }

  get name(): string {
    return this.fullName.split('/')[1]!;
  }

  /** Stores the files as blobs and nested trees; returns the root tree's SHA. */
  writeTree(files: Map<string, Buffer>): string {
    interface Dir {
      dirs: Map<string, Dir>;
      files: Map<string, Buffer>;
    }
    const root: Dir = { dirs: new Map(), files: new Map() };
    for (const [path, content] of files) {
      const parts = path.split('/');
      let dir = root;
      for (const part of parts.slice(0, -1)) {
        let next = dir.dirs.get(part);
        if (!next) dir.dirs.set(part, (next = { dirs: new Map(), files: new Map() }));
        dir = next;
      }
      dir.files.set(parts.at(-1)!, content);
    }
    const write = (dir: Dir): string => {
      const entries: FakeTreeEntry[] = [];
      for (const [name, content] of dir.files) {
        const sha = blobSha(content);
        this.blobs.set(sha, content);
        entries.push({ name, type: 'blob', sha, mode: '100644', size: content.length });
      }
      for (const [name, sub] of dir.dirs) entries.push({ name, type: 'tree', sha: write(sub), mode: '040000' });
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      const sha = sha1(`tree\0${entries.map((e) => `${e.mode} ${e.name}\0${e.sha}`).join('\n')}`);
      this.trees.set(sha, entries);
      return sha;
    };
    return write(root);
  }

  /** Every file of a materialized tree: path → blob SHA (and size). */
  listTree(treeSha: string, prefix = ''): { path: string; type: 'blob' | 'tree'; sha: string; mode: string; size?: number }[] {
    const entries = this.trees.get(treeSha);
    if (!entries) return [];
    const out: { path: string; type: 'blob' | 'tree'; sha: string; mode: string; size?: number }[] = [];
    for (const entry of entries) {
      const path = `${prefix}${entry.name}`;
      out.push({ path, type: entry.type, sha: entry.sha, mode: entry.mode, ...(entry.size !== undefined ? { size: entry.size } : {}) });
      if (entry.type === 'tree') out.push(...this.listTree(entry.sha, `${path}/`));
    }
    return out;
  }

  /** The files of a commit whose tree is materialized (a branch head now or once). */
  filesAt(commitSha: string): Map<string, Buffer> {
    const commit = this.commits.get(commitSha);
    if (!commit || !this.trees.has(commit.treeSha)) throw new Error(`${this.fullName}: the tree of ${commitSha} is not materialized`);
    const files = new Map<string, Buffer>();
    for (const entry of this.listTree(commit.treeSha)) if (entry.type === 'blob') files.set(entry.path, this.blobs.get(entry.sha)!);
    return files;
  }

  /** Adds a commit (its tree given, or an unmaterialized placeholder) and returns it. */
  addCommit(parents: string[], message: string, author: FakeAuthor, date: string, treeSha?: string): FakeCommit {
    const tree = treeSha ?? sha1(`placeholder-tree\0${this.fullName}\0${parents.join(',')}\0${message}`);
    const sha = sha1(`commit\0${tree}\0${parents.join(',')}\0${author.email}\0${date}\0${message}`);
    const commit: FakeCommit = { sha, treeSha: tree, parents, message, author, date };
    this.commits.set(sha, commit);
    return commit;
  }

  /** A push to `branch`: a commit on its head with the changed and deleted files. */
  push(branch: string, change: { files?: Record<string, string>; delete?: string[]; message?: string; author?: FakeAuthor }): FakeCommit {
    const head = this.branches.get(branch);
    if (!head) throw new Error(`${this.fullName} has no branch ${branch}`);
    const files = this.filesAt(head);
    for (const [path, content] of Object.entries(change.files ?? {})) files.set(path, Buffer.from(content));
    for (const path of change.delete ?? []) {
      if (!files.delete(path)) throw new Error(`${this.fullName}: no file ${path} to delete`);
    }
    const author = change.author ?? { name: 'The Octocat', email: 'octocat@github.com', login: 'octocat' };
    const summary = [...Object.keys(change.files ?? {}).map((path) => `update ${path}`), ...(change.delete ?? []).map((path) => `delete ${path}`)].join(', ');
    const commit = this.addCommit([head], change.message ?? (summary.charAt(0).toUpperCase() + summary.slice(1) || 'Empty commit'), author, this.#clock(), this.writeTree(files));
    this.branches.set(branch, commit.sha);
    return commit;
  }

  /**
   * A force-push: `branch` is reset `dropCommits` commits back (first parents) and a new commit with
   * the head's files plus `files` goes on top, so the old head is no longer in its history.
   */
  forcePush(branch: string, dropCommits: number, change: { files?: Record<string, string>; message?: string } = {}): FakeCommit {
    const head = this.branches.get(branch);
    if (!head) throw new Error(`${this.fullName} has no branch ${branch}`);
    const files = this.filesAt(head);
    for (const [path, content] of Object.entries(change.files ?? {})) files.set(path, Buffer.from(content));
    let base = head;
    for (let i = 0; i < dropCommits; i++) base = this.commits.get(base)!.parents[0] ?? base;
    const author = { name: 'Mona Lisa', email: 'mona@github.com', login: 'mona' };
    const commit = this.addCommit([base], change.message ?? 'Rewrite history', author, this.#clock(), this.writeTree(files));
    this.branches.set(branch, commit.sha);
    return commit;
  }

  /** The history from `sha` (first parents first, as GitHub lists a linear history), newest first. */
  history(sha: string): FakeCommit[] {
    const out: FakeCommit[] = [];
    const seen = new Set<string>();
    const queue = [sha];
    while (queue.length > 0) {
      const next = queue.shift()!;
      if (seen.has(next)) continue;
      seen.add(next);
      const commit = this.commits.get(next);
      if (!commit) continue;
      out.push(commit);
      queue.push(...commit.parents);
    }
    return out.sort((a, b) => (a.date < b.date ? 1 : a.date > b.date ? -1 : 0));
  }

  issue(number: number): FakeIssue {
    const issue = this.issues.find((i) => i.number === number);
    if (!issue) throw new Error(`${this.fullName} has no issue #${number}`);
    return issue;
  }

  closeIssue(number: number): FakeIssue {
    const issue = this.issue(number);
    const now = this.#clock();
    issue.state = 'closed';
    issue.closedAt = now;
    issue.updatedAt = now;
    return issue;
  }

  openIssue(title: string, body = '', author = 'octocat'): FakeIssue {
    const now = this.#clock();
    const issue: FakeIssue = { number: this.#nextNumber(), title, body, state: 'open', author, labels: [], createdAt: now, updatedAt: now, closedAt: null };
    this.issues.push(issue);
    return issue;
  }

  openPullRequest(title: string, body: string, head: string, author = 'octocat'): FakeIssue {
    const issue = this.openIssue(title, body, author);
    issue.pull = { base: this.defaultBranch, head, headSha: this.branches.get(head) ?? this.branches.get(this.defaultBranch)!, merged: false, mergedAt: null, draft: false };
    return issue;
  }

  mergePullRequest(number: number): FakeIssue {
    const issue = this.issue(number);
    if (!issue.pull) throw new Error(`#${number} is not a pull request`);
    const now = this.#clock();
    Object.assign(issue.pull, { merged: true, mergedAt: now });
    Object.assign(issue, { state: 'closed', closedAt: now, updatedAt: now });
    return issue;
  }

  #nextNumber(): number {
    return this.issues.reduce((max, issue) => Math.max(max, issue.number), 0) + 1;
  }

  /** The tar.gz GitHub's tarball download serves: every file under `<owner>-<repo>-<sha7>/`. */
  async tarball(commitSha: string): Promise<Buffer> {
    const files = this.filesAt(commitSha);
    const archive = pack();
    const top = `${this.owner}-${this.name}-${commitSha.slice(0, 7)}`;
    const gzip = createGzip();
    const chunks: Buffer[] = [];
    const done = new Promise<void>((resolve, reject) => {
      gzip.on('data', (chunk: Buffer) => chunks.push(chunk));
      gzip.on('end', resolve);
      gzip.on('error', reject);
    });
    archive.pipe(gzip);
    archive.entry({ name: `${top}/`, type: 'directory' });
    for (const [path, content] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) archive.entry({ name: `${top}/${path}`, size: content.length }, content);
    archive.finalize();
    await done;
    return Buffer.concat(chunks);
  }
}

export interface GenerateOptions {
  seed?: number;
  files: number;
  commits: number;
  issues: number;
  pulls: number;
  /** Branches besides the default one (default 2). */
  branches?: number;
  /** When the generated history starts (default 2026-01-01). Edits later are stamped with the fake's clock. */
  start?: Date;
}

export const PEOPLE: FakeAuthor[] = [
  { name: 'The Octocat', email: 'octocat@github.com', login: 'octocat' },
  { name: 'Hubot', email: 'hubot@github.com', login: 'hubot' },
  { name: 'Mona Lisa', email: 'mona@github.com', login: 'mona' },
  { name: 'Ada Lovelace', email: 'ada@acme.dev', login: 'ada-l' },
  { name: 'Grace Hopper', email: 'grace@acme.dev', login: 'ghopper' },
  // Commits GitHub cannot attribute to an account (an email no account claims).
  { name: 'Build Bot', email: 'build-bot@ci.acme.dev', login: null },
];

const NPM = ['express', 'zod', 'lodash', 'left-pad', 'undici', 'pino'];
const PYPI = ['requests', 'pyyaml', 'boto3', 'fastapi'];

/** Deterministic small source files in TypeScript and Python, with imports between them and manifests. */
export function generateFiles(repoIndex: number, count: number, rand: () => number): Map<string, Buffer> {
  const files = new Map<string, string>();
  const npm = NPM.filter((_, i) => (repoIndex + i) % 2 === 0 || i === 0);
  const pypi = PYPI.filter((_, i) => (repoIndex + i) % 2 === 1 || i === 0);
  files.set('package.json', `${JSON.stringify({ name: `repo-${repoIndex}`, version: '1.0.0', dependencies: Object.fromEntries(npm.map((name) => [name, `^${1 + (name.length % 4)}.0.0`])), devDependencies: { typescript: '^5.4.0' } }, null, 2)}\n`);
  files.set('requirements.txt', `${pypi.join('\n')}\n`);
  files.set('README.md', `# repo-${repoIndex}\n\nGenerated by the GitHub fake.\n`);
  const perDir = 10;
  const sources = Math.max(0, count - files.size);
  for (let i = 0; i < sources; i++) {
    const dir = Math.floor(i / perDir);
    const python = i % 3 === 2;
    if (python) {
      const module = `lib/pkg_${dir}/mod_${i}.py`;
      const sibling = (i - 1 + sources) % sources;
      const lines = [
        '"""Generated module."""',
        'import os',
        `import ${pypi[i % pypi.length] === 'pyyaml' ? 'yaml' : pypi[i % pypi.length]}`,
        ...(Math.floor(sibling / perDir) === dir && sibling % 3 === 2 ? [`from .mod_${sibling} import helper_${sibling}`] : []),
        '',
        `MAX_ITEMS_${i} = ${Math.floor(rand() * 1000)}`,
        '',
        `def helper_${i}(value):`,
        `    return value * ${1 + (i % 7)}`,
        '',
        `class Service${i}:`,
        `    def run(self, items):`,
        `        return [helper_${i}(item) for item in items]`,
        '',
      ];
      files.set(module, lines.join('\n'));
    } else {
      const module = `src/mod-${dir}/file-${i}.ts`;
      const target = Math.floor(rand() * sources);
      const targetDir = Math.floor(target / perDir);
      const imports = [`import { Router } from '${npm[i % npm.length]}';`];
      if (target % 3 !== 2 && target !== i) imports.push(`import { fn${target} } from '${targetDir === dir ? '.' : `../mod-${targetDir}`}/file-${target}.ts';`);
      const lines = [
        ...imports,
        '',
        `export const LIMIT_${i} = ${Math.floor(rand() * 100)};`,
        '',
        `export function fn${i}(input: number): number {`,
        `  return input + LIMIT_${i};`,
        '}',
        '',
        `export class Handler${i} {`,
        `  handle(value: number): number {`,
        `    return fn${i}(value);`,
        '  }',
        '}',
        '',
      ];
      files.set(module, lines.join('\n'));
    }
  }
  return new Map([...files].map(([path, content]) => [path, Buffer.from(content)]));
}

/** Fills a repository with a generated history, branches, issues and pull requests. */
export function generateRepository(repo: FakeRepositoryGit, repoIndex: number, options: GenerateOptions): void {
  const rand = random((options.seed ?? 1) * 1_000_003 + repoIndex);
  const start = (options.start ?? new Date('2026-01-01T00:00:00Z')).getTime();
  const stamp = (minutes: number) => new Date(start + minutes * 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const commits = Math.max(1, options.commits);
  const pick = () => PEOPLE[Math.floor(rand() * PEOPLE.length)]!;

  // History: placeholder trees except the head's, which holds the generated files.
  let parent: string | undefined;
  const shas: string[] = [];
  for (let i = 0; i < commits; i++) {
    const head = i === commits - 1;
    const tree = head ? repo.writeTree(generateFiles(repoIndex, options.files, rand)) : undefined;
    const commit = repo.addCommit(parent ? [parent] : [], i === 0 ? 'Initial commit' : `Change ${i}: ${['fix', 'feat', 'chore', 'refactor'][i % 4]} module ${i % 17}`, pick(), stamp(i * 10), tree);
    shas.push(commit.sha);
    parent = commit.sha;
  }
  repo.branches.set(repo.defaultBranch, parent!);
  repo.protectedBranches.add(repo.defaultBranch);
  const extra = options.branches ?? 2;
  for (let b = 0; b < extra; b++) repo.branches.set(b === 0 ? 'develop' : `feature/topic-${b}`, shas[Math.max(0, shas.length - 2 - b)]!);

  // Issues first, then pull requests, one numbering; some PRs close issues ("Fixes #n").
  const base = commits * 10;
  for (let n = 1; n <= options.issues; n++) {
    const closed = n % 4 === 0;
    repo.issues.push({
      number: n,
      title: `Issue ${n}: ${['crash on start', 'slow query', 'typo in docs', 'flaky test'][n % 4]}`,
      body: `Seen in module ${n % 17}.`,
      state: closed ? 'closed' : 'open',
      author: PEOPLE[n % 5]!.login!,
      labels: n % 3 === 0 ? ['bug'] : [],
      createdAt: stamp(base + n),
      updatedAt: stamp(base + n + (closed ? 5 : 1)),
      closedAt: closed ? stamp(base + n + 5) : null,
    });
  }
  for (let p = 1; p <= options.pulls; p++) {
    const number = options.issues + p;
    const merged = p % 3 !== 0;
    const fixes = options.issues > 0 ? 1 + ((p * 7) % options.issues) : 0;
    const body = fixes === 0 ? 'No linked issue.' : p % 2 === 0 ? `This change resolves #${fixes}.` : `Fixes #${fixes}\n\nAlso see #${number}.`;
    repo.issues.push({
      number,
      title: `PR ${p}: improve module ${p % 17}`,
      body,
      state: merged ? 'closed' : 'open',
      author: PEOPLE[p % 5]!.login!,
      labels: [],
      createdAt: stamp(base + options.issues + p),
      updatedAt: stamp(base + options.issues + p + 2),
      closedAt: merged ? stamp(base + options.issues + p + 2) : null,
      pull: { base: repo.defaultBranch, head: `feature/pr-${p}`, headSha: shas[Math.max(0, shas.length - 1 - (p % shas.length))]!, merged, mergedAt: merged ? stamp(base + options.issues + p + 2) : null, draft: p % 5 === 0 },
    });
  }
}
