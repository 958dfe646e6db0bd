/**
 * A fake GitHub for tests and the local walkthrough: the OpenTrace GitHub App's user
 * authorization (web flow) and the REST routes the connection check calls, shaped like
 * github.com and api.github.com (one origin serves both: point GITHUB_URL and GITHUB_API_URL at it).
 *
 * OAuth (test/fakes/oauth-fake.ts): GET /login/oauth/authorize (PKCE S256 required; redirects
 * back with code + state, or error=access_denied when `authorize: 'deny'`; with
 * `installOnAuthorize` also installation_id and setup_action=install, as when the user installs
 * the app in the same flow), POST /login/oauth/access_token (JSON with `Accept: application/json`,
 * else form-encoded, as GitHub; errors come with status 200 and an `error` field:
 * bad_verification_code, bad_refresh_token, incorrect_client_credentials). User tokens `ghu_…`
 * expire after 8 h, refresh tokens `ghr_…` after 6 months and rotate on use.
 *
 * REST (Bearer user token; 401 "Bad credentials" otherwise): GET /user, GET /user/installations,
 * GET /user/installations/{id}/repositories, GET /rate_limit; `per_page`/`page` with Link
 * headers; x-ratelimit-* headers on every answer (a spent budget answers 403 "API rate limit
 * exceeded"). `mode` (401/403/404/429/5xx/slow) applies to the REST routes.
 *
 * Repositories (what the sync reads; only repositories an installation the user reaches grants):
 * GET /repos/{o}/{r}, …/branches, …/commits?sha=, …/git/trees/{sha}[?recursive=1] (`truncated: true`
 * past `treeTruncateAt` entries, as GitHub does past 100,000; sub-trees are served by SHA),
 * …/issues?state&since&sort&direction (pull requests included, with `pull_request`),
 * …/pulls?state&sort&direction, …/pulls/{n}, …/tarball/{ref} (302 to a short-lived
 * /_codeload/… URL that serves the tar.gz of the commit's files). Every 200 GET answer carries an
 * ETag; `If-None-Match` with it answers 304, which does not count against the rate limit
 * (x-ratelimit-remaining does not move). `secondaryRateLimit` answers one (or `times`) 403
 * "secondary rate limit" with retry-after once the REST request count reaches `afterRequests`.
 *
 * The data is a model object (`fake.model`: users, repositories, installations) that tests
 * change directly, and the git data of each repository (`fake.git`, test/fakes/github-org.ts):
 * `fake.generate(...)` fills an organization of any size from a seed; `fake.repo(name)` gives
 * the edits (push, delete a file, force-push, close an issue, open a pull request).
 */
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
import { FakeOAuthServer, s256, tokenParams, type FakeOAuthSettings } from './oauth-fake.ts';
import { createHash, randomBytes } from 'node:crypto';
import { FakeRepositoryGit, generateRepository, type FakeCommit, type FakeIssue, type GenerateOptions } from './github-org.ts';

export { FakeRepositoryGit, type FakeCommit, type FakeIssue, type GenerateOptions } from './github-org.ts';

export const DEFAULT_GITHUB_CLIENT_ID = 'Iv1.fakeopentrace01';
export const DEFAULT_GITHUB_CLIENT_SECRET = 'fake-github-app-client-secret-0123456789';
export const GITHUB_APP_SLUG = 'opentrace';

export interface FakeGitHubUser {
  id: number;
  login: string;
  name: string;
}

export interface FakeGitHubRepository {
  id: number;
  owner: string;
  name: string;
  private: boolean;
  defaultBranch: string;
  description?: string;
  archived?: boolean;
  /** Free room for the sync fakes (branches, trees, commits, issues…). */
  [more: string]: unknown;
}

export interface FakeGitHubInstallation {
  id: number;
  account: { id: number; login: string; type: 'Organization' | 'User' };
  repositorySelection: 'all' | 'selected';
  /** Full names (`owner/name`) of the repositories the installation grants. */
  repositories: string[];
  /** Logins of the users who can reach this installation (org members, the account owner). */
  users: string[];
}

export interface GitHubFakeModel {
  users: FakeGitHubUser[];
  repositories: FakeGitHubRepository[];
  installations: FakeGitHubInstallation[];
}

export interface GitHubFakeOptions extends CommonFakeOptions {
  clientId?: string;
  clientSecret?: string;
  /** The user signed in at the authorize page (default `octocat`). */
  login?: string;
  authorize?: 'approve' | 'deny';
  /** The user installs the app during the authorization: the callback carries installation_id and setup_action=install. */
  installOnAuthorize?: boolean;
  /** User token lifetime (default 8 h); null for an app with expiring tokens off. */
  accessTokenTtlSeconds?: number | null;
  /** The REST budget left (default: the limit minus what was used); 0 answers 403 rate limited. */
  rateLimitRemaining?: number;
  /** The primary rate limit per hour (default 5,000); every answer but a 304 uses one. */
  rateLimit?: number;
  /** A recursive tree listing with more entries than this is cut there with `truncated: true` (GitHub: 100,000). */
  treeTruncateAt?: number;
  /** Answer 403 "secondary rate limit" with retry-after once the REST request count reaches `afterRequests` (`times` answers, default 1). */
  secondaryRateLimit?: { afterRequests: number; retryAfterSeconds: number; times?: number };
  /** Every REST answer waits this long first. */
  restDelayMs?: number;
  /** Archive downloads answer 200 with an empty body (a broken download). */
  emptyArchives?: boolean;
  /** Every REST request waits for this first (a progress test holds some requests while it looks at the sync). */
  gate?: (request: RecordedRequest) => Promise<void> | void;
  now?: () => number;
}

export interface GitHubFakeStats {
  /** REST requests that reached a route (after authentication). */
  rest: number;
  /** Conditional requests answered 304 (not charged). */
  notModified: number;
  /** Answers charged against the primary rate limit. */
  charged: number;
  /** 403 secondary-rate-limit answers. */
  secondaryLimited: number;
  /** Tarball downloads served (the short-lived URL: not the API, not charged). */
  downloads: number;
}

export interface GenerateOrganizationOptions extends GenerateOptions {
  /** Repositories to fill: names (`acme/payments`) or a count of generated ones (`<owner>/repo-000`…). */
  repos: number | string[];
  owner?: string;
  /** The installation that grants them (default 4242, the acme one). */
  installationId?: number;
}

export interface GitHubFake extends HttpFake<GitHubFakeOptions> {
  model: GitHubFakeModel;
  oauth: FakeOAuthServer;
  /** Git data by repository full name. */
  git: Map<string, FakeRepositoryGit>;
  stats: GitHubFakeStats;
  /** Fills (and grants) repositories with generated files, history, branches, issues and pull requests. */
  generate(options: GenerateOrganizationOptions): string[];
  /** A repository's git data, for edits between syncs. */
  repo(fullName: string): FakeRepositoryGit;
  /** Requests to paths matching `pattern` since the fake started (or since `from`). */
  count(pattern: RegExp, from?: number): number;
  /** Tokens for `login` as the web flow would issue them (tests that store a connection directly). */
  issueToken(login?: string): Promise<{ accessToken: string; refreshToken?: string; expiresAt?: number; refreshTokenExpiresAt?: number }>;
}

/** octocat, member of the acme organization, where the app is installed on three of its repositories. */
export function defaultGitHubModel(): GitHubFakeModel {
  const repo = (id: number, owner: string, name: string, extra: Partial<FakeGitHubRepository> = {}): FakeGitHubRepository => ({ id, owner, name, private: true, defaultBranch: 'main', ...extra });
  return {
    users: [
      { id: 583231, login: 'octocat', name: 'The Octocat' },
      { id: 1001, login: 'hubot', name: 'Hubot' },
    ],
    repositories: [
      repo(101, 'acme', 'payments', { description: 'Payment service' }),
      repo(102, 'acme', 'checkout', { description: 'Checkout frontend and API' }),
      repo(103, 'acme', 'infra', { description: 'Terraform and Helm charts' }),
      repo(104, 'acme', 'secret-project'),
      repo(201, 'octocat', 'Hello-World', { private: false }),
    ],
    installations: [
      {
        id: 4242,
        account: { id: 9001, login: 'acme', type: 'Organization' },
        repositorySelection: 'selected',
        repositories: ['acme/payments', 'acme/checkout', 'acme/infra'],
        users: ['octocat'],
      },
    ],
  };
}

function githubError(status: number): FakeReply {
  const docs = 'https://docs.github.com/rest';
  switch (status) {
    case 401:
      return reply(401, { message: 'Bad credentials', documentation_url: docs, status: '401' });
    case 403:
      return reply(403, { message: 'Resource not accessible by integration', documentation_url: docs, status: '403' });
    case 404:
      return reply(404, { message: 'Not Found', documentation_url: docs, status: '404' });
    case 429:
      return reply(429, { message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.', documentation_url: docs, status: '429' });
    case 502:
    case 503:
      return html(status, '<html><body><h1>Unicorn!</h1>This page is taking too long to load.</body></html>');
    default:
      return reply(status, { message: 'Server Error', status: String(status) });
  }
}

function repositoryView(repo: FakeGitHubRepository, owner: FakeGitHubInstallation['account'] | undefined, base: string) {
  const fullName = `${repo.owner}/${repo.name}`;
  return {
    id: repo.id,
    node_id: Buffer.from(`010:Repository${repo.id}`).toString('base64'),
    name: repo.name,
    full_name: fullName,
    private: repo.private,
    owner: { login: repo.owner, id: owner?.id ?? 0, type: owner?.type ?? 'User', html_url: `${base}/${repo.owner}` },
    html_url: `${base}/${fullName}`,
    description: repo.description ?? null,
    fork: false,
    url: `${base}/repos/${fullName}`,
    default_branch: repo.defaultBranch,
    archived: repo.archived ?? false,
    visibility: repo.private ? 'private' : 'public',
  };
}

const userId = (login: string) => 100_000 + (parseInt(createHash('sha1').update(login).digest('hex').slice(0, 6), 16) % 900_000);
const userView = (login: string, base: string) => ({ login, id: userId(login), node_id: `U_${userId(login)}`, type: login.endsWith('[bot]') ? 'Bot' : 'User', html_url: `${base}/${login}` });

function commitView(commit: FakeCommit, fullName: string, base: string) {
  const person = { name: commit.author.name, email: commit.author.email, date: commit.date };
  return {
    sha: commit.sha,
    node_id: `C_${commit.sha.slice(0, 20)}`,
    url: `${base}/repos/${fullName}/commits/${commit.sha}`,
    html_url: `${base}/${fullName}/commit/${commit.sha}`,
    commit: { message: commit.message, author: person, committer: person, tree: { sha: commit.treeSha, url: `${base}/repos/${fullName}/git/trees/${commit.treeSha}` }, comment_count: 0 },
    author: commit.author.login ? userView(commit.author.login, base) : null,
    committer: commit.author.login ? userView(commit.author.login, base) : null,
    parents: commit.parents.map((sha) => ({ sha, url: `${base}/repos/${fullName}/commits/${sha}` })),
  };
}

function issueView(issue: FakeIssue, fullName: string, base: string) {
  return {
    id: userId(`${fullName}#${issue.number}`),
    node_id: `I_${issue.number}`,
    number: issue.number,
    title: issue.title,
    body: issue.body,
    state: issue.state,
    user: userView(issue.author, base),
    labels: issue.labels.map((name) => ({ name, color: 'd73a4a' })),
    comments: 0,
    created_at: issue.createdAt,
    updated_at: issue.updatedAt,
    closed_at: issue.closedAt,
    html_url: `${base}/${fullName}/${issue.pull ? 'pull' : 'issues'}/${issue.number}`,
    url: `${base}/repos/${fullName}/issues/${issue.number}`,
    ...(issue.pull ? { pull_request: { url: `${base}/repos/${fullName}/pulls/${issue.number}`, html_url: `${base}/${fullName}/pull/${issue.number}`, merged_at: issue.pull.mergedAt } } : {}),
  };
}

function pullView(issue: FakeIssue, fullName: string, base: string) {
  const pull = issue.pull!;
  return {
    id: userId(`${fullName}!${issue.number}`),
    node_id: `PR_${issue.number}`,
    number: issue.number,
    title: issue.title,
    body: issue.body,
    state: issue.state,
    draft: pull.draft,
    locked: false,
    user: userView(issue.author, base),
    created_at: issue.createdAt,
    updated_at: issue.updatedAt,
    closed_at: issue.closedAt,
    merged_at: pull.mergedAt,
    html_url: `${base}/${fullName}/pull/${issue.number}`,
    url: `${base}/repos/${fullName}/pulls/${issue.number}`,
    base: { label: `${fullName.split('/')[0]}:${pull.base}`, ref: pull.base, sha: '0'.repeat(40), repo: { full_name: fullName } },
    head: { label: `${fullName.split('/')[0]}:${pull.head}`, ref: pull.head, sha: pull.headSha, repo: { full_name: fullName } },
  };
}

const byTime = (field: 'createdAt' | 'updatedAt', direction: string) => (a: FakeIssue, b: FakeIssue) => {
  const order = a[field] < b[field] ? -1 : a[field] > b[field] ? 1 : a.number - b.number;
  return direction === 'asc' ? order : -order;
};

export async function startGitHubFake(options: GitHubFakeOptions = {}): Promise<GitHubFake> {
  const opts: GitHubFakeOptions = { ...options };
  const model = defaultGitHubModel();
  const now = () => (opts.now ?? Date.now)();
  const git = new Map<string, FakeRepositoryGit>();
  const stats: GitHubFakeStats = { rest: 0, notModified: 0, charged: 0, secondaryLimited: 0, downloads: 0 };
  const downloads = new Map<string, { fullName: string; sha: string; expiresAt: number }>();
  let secondaryLeft = 0;
  let secondarySetting: GitHubFakeOptions['secondaryRateLimit'];
  let resetAt = Math.floor(now() / 1000) + 3600;
  // Edits are stamped with the clock, strictly later than anything before (since= must see them).
  let lastStamp = 0;
  const stamp = () => {
    lastStamp = Math.max(now(), lastStamp + 1000);
    return new Date(lastStamp).toISOString().replace(/\.\d{3}Z$/, 'Z');
  };
  const settings = (): FakeOAuthSettings => ({
    apps: [{ clientId: opts.clientId ?? DEFAULT_GITHUB_CLIENT_ID, clientSecret: opts.clientSecret ?? DEFAULT_GITHUB_CLIENT_SECRET }],
    accessTokenTtlSeconds: opts.accessTokenTtlSeconds === undefined ? 8 * 3600 : opts.accessTokenTtlSeconds,
    refreshTokenTtlSeconds: 15_897_600,
    refreshTokens: opts.accessTokenTtlSeconds !== null,
    requirePkce: true,
    prefixes: { access: 'ghu_', refresh: 'ghr_' },
    now,
  });
  const oauth = new FakeOAuthServer(settings);
  let used = 0;

  const limit = () => opts.rateLimit ?? 5000;
  const remaining = () => Math.max(0, opts.rateLimitRemaining ?? limit() - used);
  const rateHeaders = (): Record<string, string> => {
    if (Math.floor(now() / 1000) >= resetAt) {
      used = 0;
      resetAt = Math.floor(now() / 1000) + 3600;
    }
    return {
      'x-ratelimit-limit': String(limit()),
      'x-ratelimit-remaining': String(remaining()),
      'x-ratelimit-used': String(limit() - remaining()),
      'x-ratelimit-reset': String(resetAt),
      'x-ratelimit-resource': 'core',
      'x-github-api-version-selected': '2022-11-28',
    };
  };

  /** One page of `items` with GitHub's Link header. */
  const paged = <T>(request: RecordedRequest, items: T[], wrap: (page: T[]) => unknown): FakeReply => {
    const perPage = Math.min(100, Math.max(1, Number(request.query.get('per_page') ?? 30) || 30));
    const page = Math.max(1, Number(request.query.get('page') ?? 1) || 1);
    const last = Math.max(1, Math.ceil(items.length / perPage));
    const headers = rateHeaders();
    const link = (n: number, rel: string) => {
      const url = new URL(request.url, `http://${request.headers.host}`);
      url.searchParams.set('per_page', String(perPage));
      url.searchParams.set('page', String(n));
      return `<${url.toString()}>; rel="${rel}"`;
    };
    const links = [...(page < last ? [link(page + 1, 'next'), link(last, 'last')] : []), ...(page > 1 ? [link(1, 'first'), link(page - 1, 'prev')] : [])];
    if (links.length) headers.link = links.join(', ');
    return reply(200, wrap(items.slice((page - 1) * perPage, page * perPage)), headers);
  };

  const handle = async (request: RecordedRequest): Promise<FakeReply> => {
    const base = `http://${request.headers.host}`;
    const login = opts.login ?? 'octocat';

    // --- the web flow -------------------------------------------------------------------
    if (request.method === 'GET' && request.path === '/login/oauth/authorize') {
      // With `installOnAuthorize`, the user also installed the app in this flow: GitHub then adds
      // installation_id and setup_action=install to the callback.
      const installation = opts.installOnAuthorize ? model.installations.find((i) => i.users.includes(login)) : undefined;
      const outcome = oauth.authorize(request.query, login, {
        deny: opts.authorize === 'deny',
        ...(installation ? { callbackParams: { installation_id: String(installation.id), setup_action: 'install' } } : {}),
      });
      return outcome.ok ? reply(302, '', { location: outcome.location }) : html(outcome.status, `<html><body><h1>${outcome.error}</h1><p>${outcome.description}</p></body></html>`);
    }
    if (request.method === 'POST' && request.path === '/login/oauth/access_token') {
      const outcome = await oauth.token(tokenParams(request.body, request.headers['content-type']), request.headers.authorization);
      const body: Record<string, string | number> = outcome.ok
        ? {
            access_token: outcome.accessToken,
            ...(outcome.expiresIn !== undefined ? { expires_in: outcome.expiresIn } : {}),
            ...(outcome.refreshToken ? { refresh_token: outcome.refreshToken } : {}),
            ...(outcome.refreshTokenExpiresIn !== undefined ? { refresh_token_expires_in: outcome.refreshTokenExpiresIn } : {}),
            scope: '',
            token_type: 'bearer',
          }
        : {
            // GitHub's names for the standard errors, answered with 200.
            error: outcome.error === 'invalid_grant' ? (request.body.includes('refresh_token') ? 'bad_refresh_token' : 'bad_verification_code') : outcome.error === 'invalid_client' ? 'incorrect_client_credentials' : outcome.error,
            error_description: outcome.description,
            error_uri: 'https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors',
          };
      if (/json/i.test(String(request.headers.accept ?? ''))) return reply(200, body);
      return reply(200, new URLSearchParams(Object.entries(body).map(([k, v]): [string, string] => [k, String(v)])).toString(), { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' });
    }

    // --- the short-lived archive download (codeload): the URL is the credential ----------
    const codeload = /^\/_codeload\/([^/]+)\/([^/]+)\/legacy\.tar\.gz\/([0-9a-f]{40})$/.exec(request.path);
    if (request.method === 'GET' && codeload) {
      const ticket = downloads.get(request.query.get('token') ?? '');
      if (!ticket || ticket.expiresAt <= now() || ticket.sha !== codeload[3] || ticket.fullName !== `${codeload[1]}/${codeload[2]}`) return html(404, '<html><body>Not Found</body></html>');
      stats.downloads++;
      const archive = opts.emptyArchives ? Buffer.alloc(0) : await git.get(ticket.fullName)!.tarball(ticket.sha);
      return { status: 200, body: archive, headers: { 'content-type': 'application/x-gzip', 'content-disposition': `attachment; filename=${codeload[1]}-${codeload[2]}-${ticket.sha.slice(0, 7)}.tar.gz` } };
    }

    // --- REST ---------------------------------------------------------------------------
    const grant = oauth.check(bearerToken(request));
    if (!grant || grant === 'expired') return { ...githubError(401), headers: { 'www-authenticate': 'Bearer realm="GitHub"' } };
    stats.rest++;
    if (opts.restDelayMs) await new Promise((resolve) => setTimeout(resolve, opts.restDelayMs));
    await opts.gate?.(request);
    if (opts.secondaryRateLimit !== secondarySetting) {
      secondarySetting = opts.secondaryRateLimit;
      secondaryLeft = secondarySetting?.times ?? 1;
    }
    if (secondarySetting && secondaryLeft > 0 && stats.rest >= secondarySetting.afterRequests) {
      secondaryLeft--;
      stats.secondaryLimited++;
      return reply(
        403,
        { message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.', documentation_url: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits', status: '403' },
        { ...rateHeaders(), 'retry-after': String(secondarySetting.retryAfterSeconds) },
      );
    }
    if (remaining() <= 0) {
      const headers = rateHeaders();
      headers['x-ratelimit-remaining'] = '0';
      return reply(403, { message: 'API rate limit exceeded for user ID 583231.', documentation_url: 'https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting' }, headers);
    }
    const answer = await rest(request, grant.subject, base);
    // Conditional requests: a matching ETag answers 304, which costs no rate limit.
    if (request.method === 'GET' && answer.status === 200 && typeof answer.body === 'object' && !(answer.body instanceof Uint8Array)) {
      const etag = `W/"${createHash('sha1').update(JSON.stringify(answer.body)).update(answer.headers?.link ?? '').digest('hex')}"`;
      if (request.headers['if-none-match'] === etag) {
        stats.notModified++;
        return { status: 304, headers: { ...rateHeaders(), etag } };
      }
      answer.headers = { ...answer.headers, etag };
    }
    used++;
    stats.charged++;
    answer.headers = { ...answer.headers, ...rateHeaders() };
    return answer;
  };

  const rest = async (request: RecordedRequest, subject: string, base: string): Promise<FakeReply> => {
    const user = model.users.find((u) => u.login === subject);
    if (!user) return githubError(401);

    if (request.method === 'GET' && request.path === '/user') {
      return reply(200, { login: user.login, id: user.id, node_id: `MDQ6VXNlcj${user.id}`, type: 'User', site_admin: false, name: user.name, html_url: `${base}/${user.login}` }, rateHeaders());
    }
    if (request.method === 'GET' && request.path === '/rate_limit') {
      const headers = rateHeaders();
      const core = { limit: Number(headers['x-ratelimit-limit']), remaining: Number(headers['x-ratelimit-remaining']), used: Number(headers['x-ratelimit-used']), reset: Number(headers['x-ratelimit-reset']) };
      return reply(200, { resources: { core }, rate: core }, headers);
    }
    const reachable = model.installations.filter((i) => i.users.includes(user.login));
    if (request.method === 'GET' && request.path === '/user/installations') {
      return paged(request, reachable, (page) => ({
        total_count: reachable.length,
        installations: page.map((i) => ({
          id: i.id,
          account: { login: i.account.login, id: i.account.id, type: i.account.type },
          app_id: 77,
          app_slug: GITHUB_APP_SLUG,
          target_type: i.account.type,
          repository_selection: i.repositorySelection,
          permissions: { contents: 'read', issues: 'read', pull_requests: 'read', metadata: 'read', members: 'read' },
          html_url: `${base}/organizations/${i.account.login}/settings/installations/${i.id}`,
        })),
      }));
    }
    const repos = /^\/user\/installations\/(\d+)\/repositories$/.exec(request.path);
    if (request.method === 'GET' && repos) {
      const installation = reachable.find((i) => i.id === Number(repos[1]));
      if (!installation) return githubError(404);
      const list = installation.repositories
        .map((fullName) => model.repositories.find((r) => `${r.owner}/${r.name}` === fullName))
        .filter((r): r is FakeGitHubRepository => r !== undefined);
      return paged(request, list, (page) => ({ total_count: list.length, repository_selection: installation.repositorySelection, repositories: page.map((r) => repositoryView(r, installation.account, base)) }));
    }

    const repoRoute = /^\/repos\/([^/]+)\/([^/]+)(\/.*)?$/.exec(request.path);
    if (request.method === 'GET' && repoRoute) {
      const fullName = `${repoRoute[1]}/${repoRoute[2]}`;
      const repo = model.repositories.find((r) => `${r.owner}/${r.name}`.toLowerCase() === fullName.toLowerCase());
      const data = repo ? git.get(`${repo.owner}/${repo.name}`) : undefined;
      // A user-to-server token reads what an installation the user reaches grants, nothing else.
      if (!repo || !reachable.some((i) => i.repositories.includes(`${repo.owner}/${repo.name}`))) return githubError(404);
      return repositoryRoute(request, repo, data, repoRoute[3] ?? '', base);
    }
    return githubError(404);
  };

  const repositoryRoute = (request: RecordedRequest, repo: FakeGitHubRepository, data: FakeRepositoryGit | undefined, rest: string, base: string): FakeReply => {
    const fullName = `${repo.owner}/${repo.name}`;
    const owner = model.installations.find((i) => i.account.login === repo.owner)?.account;
    if (rest === '' || rest === '/') return reply(200, repositoryView(repo, owner, base));
    if (!data) return githubError(404);
    if (rest === '/branches') {
      const branches = [...data.branches].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, sha]) => ({ name, commit: { sha, url: `${base}/repos/${fullName}/commits/${sha}` }, protected: data.protectedBranches.has(name) }));
      return paged(request, branches, (page) => page);
    }
    if (rest === '/commits') {
      const ref = request.query.get('sha') ?? data.defaultBranch;
      const head = data.branches.get(ref) ?? (data.commits.has(ref) ? ref : undefined);
      if (!head) return reply(404, { message: 'No commit found for SHA: ' + ref, documentation_url: 'https://docs.github.com/rest/commits/commits#list-commits', status: '404' });
      return paged(request, data.history(head), (page) => page.map((commit) => commitView(commit, fullName, base)));
    }
    const tree = /^\/git\/trees\/(.+)$/.exec(rest);
    if (tree) {
      const ref = tree[1]!;
      const commit = data.commits.get(data.branches.get(ref) ?? ref);
      const sha = data.trees.has(ref) ? ref : commit?.treeSha;
      if (!sha || !data.trees.has(sha)) return reply(404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest/git/trees#get-a-tree', status: '404' });
      const recursive = request.query.has('recursive') && request.query.get('recursive') !== '0' && request.query.get('recursive') !== 'false';
      const all = recursive ? data.listTree(sha) : data.trees.get(sha)!.map((entry) => ({ path: entry.name, type: entry.type, sha: entry.sha, mode: entry.mode, ...(entry.size !== undefined ? { size: entry.size } : {}) }));
      const cap = opts.treeTruncateAt ?? 100_000;
      const entries = all.slice(0, cap).map((entry) => ({ ...entry, url: `${base}/repos/${fullName}/git/${entry.type === 'tree' ? 'trees' : 'blobs'}/${entry.sha}` }));
      return reply(200, { sha, url: `${base}/repos/${fullName}/git/trees/${sha}`, tree: entries, truncated: all.length > cap });
    }
    if (rest === '/issues') {
      const state = request.query.get('state') ?? 'open';
      const since = request.query.get('since');
      const sort = request.query.get('sort') === 'updated' ? 'updatedAt' : 'createdAt';
      const direction = request.query.get('direction') ?? 'desc';
      const list = data.issues.filter((i) => (state === 'all' || i.state === state) && (!since || i.updatedAt >= since)).sort(byTime(sort, direction));
      return paged(request, list, (page) => page.map((issue) => issueView(issue, fullName, base)));
    }
    if (rest === '/pulls') {
      const state = request.query.get('state') ?? 'open';
      const sortParam = request.query.get('sort');
      const sort = sortParam === 'updated' ? 'updatedAt' : 'createdAt';
      const direction = request.query.get('direction') ?? (sortParam === null || sortParam === 'created' ? 'desc' : 'asc');
      const list = data.issues.filter((i) => i.pull && (state === 'all' || i.state === state)).sort(byTime(sort, direction));
      return paged(request, list, (page) => page.map((issue) => pullView(issue, fullName, base)));
    }
    const pull = /^\/pulls\/(\d+)$/.exec(rest);
    if (pull) {
      const issue = data.issues.find((i) => i.number === Number(pull[1]) && i.pull);
      return issue ? reply(200, pullView(issue, fullName, base)) : githubError(404);
    }
    const tarball = /^\/tarball(?:\/(.+))?$/.exec(rest);
    if (tarball) {
      const ref = (tarball[1] ?? data.defaultBranch).replace(/^refs\/heads\//, '');
      const sha = data.branches.get(ref) ?? (data.commits.has(ref) ? ref : undefined);
      if (!sha) return githubError(404);
      const token = randomBytes(12).toString('hex');
      downloads.set(token, { fullName, sha, expiresAt: now() + 5 * 60_000 });
      return reply(302, '', { location: `${base}/_codeload/${fullName}/legacy.tar.gz/${sha}?token=${token}` });
    }
    return githubError(404);
  };

  const fake = await startHttpFake<GitHubFakeOptions>({
    options: opts,
    isUnguarded: (request) => request.path.startsWith('/login/') || request.path.startsWith('/_codeload/'),
    errorReply: (status) => githubError(status),
    handle,
  });

  const generate = (options: GenerateOrganizationOptions): string[] => {
    const owner = options.owner ?? 'acme';
    const installation = model.installations.find((i) => i.id === (options.installationId ?? 4242));
    if (!installation) throw new Error(`no installation ${options.installationId}`);
    const names = Array.isArray(options.repos) ? options.repos : Array.from({ length: options.repos }, (_, i) => `${owner}/repo-${String(i).padStart(3, '0')}`);
    names.forEach((fullName, index) => {
      const [repoOwner, name] = fullName.split('/') as [string, string];
      let repo = model.repositories.find((r) => r.owner === repoOwner && r.name === name);
      if (!repo) {
        repo = { id: 50_000 + model.repositories.length, owner: repoOwner, name, private: true, defaultBranch: 'main', description: `Generated repository ${index}` };
        model.repositories.push(repo);
      }
      if (!installation.repositories.includes(fullName)) installation.repositories.push(fullName);
      const data = new FakeRepositoryGit(fullName, repo.defaultBranch, stamp);
      generateRepository(data, index, options);
      git.set(fullName, data);
    });
    return names;
  };
  const repo = (fullName: string) => {
    const data = git.get(fullName);
    if (!data) throw new Error(`the fake has no git data for ${fullName}: generate() it first`);
    return data;
  };
  const count = (pattern: RegExp, from = 0) => fake.requests.slice(from).filter((request) => pattern.test(request.path)).length;
  const issueToken = async (login = opts.login ?? 'octocat') => {
    const verifier = randomBytes(32).toString('base64url');
    const clientId = opts.clientId ?? DEFAULT_GITHUB_CLIENT_ID;
    const redirectUri = 'http://127.0.0.1/callback';
    const authorized = oauth.authorize(new URLSearchParams({ client_id: clientId, redirect_uri: redirectUri, state: 'test', code_challenge: s256(verifier), code_challenge_method: 'S256' }), login);
    if (!authorized.ok) throw new Error(authorized.description);
    const code = new URL(authorized.location).searchParams.get('code')!;
    const issued = await oauth.token(new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier, client_id: clientId, client_secret: opts.clientSecret ?? DEFAULT_GITHUB_CLIENT_SECRET }), undefined);
    if (!issued.ok) throw new Error(issued.description);
    const at = now();
    return {
      accessToken: issued.accessToken,
      ...(issued.refreshToken ? { refreshToken: issued.refreshToken } : {}),
      ...(issued.expiresIn !== undefined ? { expiresAt: at + issued.expiresIn * 1000 } : {}),
      ...(issued.refreshTokenExpiresIn !== undefined ? { refreshTokenExpiresAt: at + issued.refreshTokenExpiresIn * 1000 } : {}),
    };
  };
  return Object.assign(fake, { model, oauth, git, stats, generate, repo, count, issueToken });
}

/** Adds `count` repositories to an installation (pagination tests): `acme/repo-001`… */
export function addGitHubRepositories(model: GitHubFakeModel, installationId: number, count: number, owner = 'acme'): string[] {
  const installation = model.installations.find((i) => i.id === installationId);
  if (!installation) throw new Error(`no installation ${installationId}`);
  const names: string[] = [];
  for (let i = 1; i <= count; i++) {
    const name = `repo-${String(i).padStart(3, '0')}`;
    model.repositories.push({ id: 10_000 + i, owner, name, private: true, defaultBranch: 'main' });
    installation.repositories.push(`${owner}/${name}`);
    names.push(`${owner}/${name}`);
  }
  return names;
}
