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
 * The data is a model object (`fake.model`: users, repositories, installations) that tests
 * change directly; the sync work adds branches, trees, commits and issues to the repositories.
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
import { FakeOAuthServer, tokenParams, type FakeOAuthSettings } from './oauth-fake.ts';

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
  /** The REST budget left (default 5,000); 0 answers 403 rate limited. */
  rateLimitRemaining?: number;
  now?: () => number;
}

export interface GitHubFake extends HttpFake<GitHubFakeOptions> {
  model: GitHubFakeModel;
  oauth: FakeOAuthServer;
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
    owner: { login: repo.owner, id: owner?.id ?? 0, type: owner?.type ?? 'User' },
    html_url: `${base}/${fullName}`,
    description: repo.description ?? null,
    fork: false,
    url: `${base}/repos/${fullName}`,
    default_branch: repo.defaultBranch,
    archived: repo.archived ?? false,
    visibility: repo.private ? 'private' : 'public',
  };
}

export async function startGitHubFake(options: GitHubFakeOptions = {}): Promise<GitHubFake> {
  const opts: GitHubFakeOptions = { ...options };
  const model = defaultGitHubModel();
  const now = () => (opts.now ?? Date.now)();
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

  const rateHeaders = (): Record<string, string> => {
    const limit = 5000;
    const remaining = Math.max(0, opts.rateLimitRemaining ?? limit - used);
    return {
      'x-ratelimit-limit': String(limit),
      'x-ratelimit-remaining': String(remaining),
      'x-ratelimit-used': String(limit - remaining),
      'x-ratelimit-reset': String(Math.floor(now() / 1000) + 3600),
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

    // --- REST ---------------------------------------------------------------------------
    const grant = oauth.check(bearerToken(request));
    if (!grant || grant === 'expired') return { ...githubError(401), headers: { 'www-authenticate': 'Bearer realm="GitHub"' } };
    used++;
    if ((opts.rateLimitRemaining ?? 1) <= 0) {
      return reply(403, { message: 'API rate limit exceeded for user ID 583231.', documentation_url: 'https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting' }, rateHeaders());
    }
    const user = model.users.find((u) => u.login === grant.subject);
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
    return githubError(404);
  };

  const fake = await startHttpFake<GitHubFakeOptions>({
    options: opts,
    isUnguarded: (request) => request.path.startsWith('/login/'),
    errorReply: (status) => githubError(status),
    handle,
  });
  return Object.assign(fake, { model, oauth });
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
