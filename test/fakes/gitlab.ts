/**
 * A fake GitLab (GitLab.com or a self-managed instance, optionally under a relative URL root
 * such as `/gitlab`) for tests and the local walkthrough, shaped like GitLab's documented API.
 *
 * OAuth (test/fakes/oauth-fake.ts): GET /oauth/authorize (PKCE S256 required; redirects back
 * with code + state, or error=access_denied when `authorize: 'deny'`), POST /oauth/token
 * (authorization_code with code_verifier, refresh_token; 2 h access tokens; every refresh
 * rotates the refresh token: a used one answers 400 invalid_grant, as does every request while
 * `fake.oauth.failRefreshes` > 0; `fake.oauth.stats.refreshes` counts refresh requests,
 * `fake.oauth.gate` holds token requests), GET /.well-known/openid-configuration.
 *
 * REST v4 (Bearer token; 401 `{"message":"401 Unauthorized"}`, or invalid_token "Token is
 * expired" for an expired one): GET /api/v4/version, /api/v4/user, /api/v4/projects
 * (`membership`, `page`/`per_page`, X-Total/X-Next-Page/Link headers; `pagination=keyset` with
 * `id_after`), /api/v4/projects/{id or url-encoded path}. RateLimit-* headers on every answer.
 *
 * The data is a model object (`fake.model`: users, groups, projects) that tests change directly;
 * the sync work adds branches, trees, commits, issues, merge requests and pipelines to projects.
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

export const DEFAULT_GITLAB_CLIENT_ID = 'fake-gitlab-application-id-0123456789abcdef';
export const DEFAULT_GITLAB_CLIENT_SECRET = 'gloas-fake-gitlab-client-secret-0123456789';

export interface FakeGitLabUser {
  id: number;
  username: string;
  name: string;
}

export interface FakeGitLabGroup {
  id: number;
  path: string;
  name: string;
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
  /** Free room for the sync fakes (tree, commits, issues, merge requests, pipelines…). */
  [more: string]: unknown;
}

export interface GitLabFakeModel {
  users: FakeGitLabUser[];
  groups: FakeGitLabGroup[];
  projects: FakeGitLabProject[];
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
  now?: () => number;
}

export interface GitLabFake extends HttpFake<GitLabFakeOptions> {
  model: GitLabFakeModel;
  oauth: FakeOAuthServer;
  /** The instance's base URL (with the path prefix). */
  baseUrl: string;
}

/** jdoe, member of three acme projects; one internal project jdoe is no member of. */
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
  return {
    users: [
      { id: 7, username: 'jdoe', name: 'Jane Doe' },
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
}

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
    name: project.name,
    path: project.path,
    path_with_namespace: fullPath,
    name_with_namespace: `${group?.name ?? project.namespace} / ${project.name}`,
    default_branch: project.defaultBranch,
    web_url: `${base}/${fullPath}`,
    http_url_to_repo: `${base}/${fullPath}.git`,
    namespace: { id: group?.id ?? 0, name: group?.name ?? project.namespace, path: project.namespace.split('/').pop(), kind: 'group', full_path: project.namespace },
    created_at: '2024-01-15T10:00:00.000Z',
    last_activity_at: '2025-06-01T12:00:00.000Z',
  };
  if (!simple) Object.assign(view, { visibility: project.visibility, archived: project.archived ?? false, issues_enabled: true, merge_requests_enabled: true, jobs_enabled: true });
  return view;
}

export async function startGitLabFake(options: GitLabFakeOptions = {}): Promise<GitLabFake> {
  const opts: GitLabFakeOptions = { ...options };
  const model = defaultGitLabModel();
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
  let remaining = 2000;

  const rateHeaders = (): Record<string, string> => {
    remaining = remaining > 0 ? remaining - 1 : 2000;
    return { 'ratelimit-limit': '2000', 'ratelimit-remaining': String(remaining), 'ratelimit-reset': String(Math.floor(now() / 1000) + 60), 'ratelimit-observed': String(2000 - remaining) };
  };

  const paged = <T>(request: RecordedRequest, items: T[], view: (item: T) => unknown, idOf: (item: T) => number): FakeReply => {
    const perPage = Math.min(100, Math.max(1, Number(request.query.get('per_page') ?? 20) || 20));
    const headers = rateHeaders();
    const url = (params: Record<string, string>) => {
      const next = new URL(request.url, `http://${request.headers.host}`);
      for (const [name, value] of Object.entries(params)) next.searchParams.set(name, value);
      return next.toString();
    };
    if (request.query.get('pagination') === 'keyset') {
      const after = Number(request.query.get('id_after') ?? 0);
      const rest = items.filter((item) => idOf(item) > after);
      const page = rest.slice(0, perPage);
      if (rest.length > perPage) headers.link = `<${url({ id_after: String(idOf(page.at(-1)!)) })}>; rel="next"`;
      return reply(200, page.map(view), headers);
    }
    const page = Math.max(1, Number(request.query.get('page') ?? 1) || 1);
    const totalPages = Math.max(1, Math.ceil(items.length / perPage));
    Object.assign(headers, {
      'x-page': String(page),
      'x-per-page': String(perPage),
      'x-total': String(items.length),
      'x-total-pages': String(totalPages),
      'x-next-page': page < totalPages ? String(page + 1) : '',
      'x-prev-page': page > 1 ? String(page - 1) : '',
    });
    const links = [
      ...(page < totalPages ? [`<${url({ page: String(page + 1), per_page: String(perPage) })}>; rel="next"`] : []),
      `<${url({ page: '1', per_page: String(perPage) })}>; rel="first"`,
      `<${url({ page: String(totalPages), per_page: String(perPage) })}>; rel="last"`,
    ];
    headers.link = links.join(', ');
    return reply(200, items.slice((page - 1) * perPage, page * perPage).map(view), headers);
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

    const grant = oauth.check(bearerToken(request));
    if (grant === 'expired') return reply(401, { error: 'invalid_token', error_description: 'Token is expired. You can either do re-authorization or token refresh.' }, { 'www-authenticate': 'Bearer realm="Protected by OAuth 2.0", error="invalid_token"' });
    if (!grant) return gitlabError(401);
    const user = model.users.find((u) => u.username === grant.subject);
    if (!user) return gitlabError(401);

    if (request.method === 'GET' && path === '/api/v4/version') {
      return reply(200, { version: opts.version ?? '17.5.1-ee', revision: '8fa1a4ad20d', kas: { enabled: true, externalUrl: null, version: '17.5.1' }, enterprise: true }, rateHeaders());
    }
    if (request.method === 'GET' && path === '/api/v4/user') {
      return reply(200, { id: user.id, username: user.username, name: user.name, state: 'active', locked: false, web_url: `${base}/${user.username}`, avatar_url: null }, rateHeaders());
    }
    if (request.method === 'GET' && path === '/api/v4/projects') {
      const membership = request.query.get('membership') === 'true';
      const archived = request.query.get('archived');
      const visible = model.projects
        .filter((p) => (membership ? p.members.includes(user.username) : p.members.includes(user.username) || p.visibility !== 'private'))
        .filter((p) => (archived === null ? true : (p.archived ?? false) === (archived === 'true')))
        .sort((a, b) => a.id - b.id);
      const simple = request.query.get('simple') === 'true';
      return paged(request, visible, (p) => projectView(p, model, base, simple), (p) => p.id);
    }
    // A project by id or by its URL-encoded path (`acme%2Fpayments`): match the raw, still encoded path.
    const one = /^\/api\/v4\/projects\/([^/]+)$/.exec(new URL(request.url, 'http://fake.invalid').pathname.slice(prefix.length));
    if (request.method === 'GET' && one) {
      const key = decodeURIComponent(one[1]!);
      const project = model.projects.find((p) => String(p.id) === key || `${p.namespace}/${p.path}` === key);
      if (!project || (!project.members.includes(user.username) && project.visibility === 'private')) return reply(404, { message: '404 Project Not Found' }, rateHeaders());
      return reply(200, projectView(project, model, base, false), rateHeaders());
    }
    return reply(404, { error: '404 Not Found' });
  };

  const fake = await startHttpFake<GitLabFakeOptions>({
    options: opts,
    isUnguarded: (request) => !request.path.slice(prefix.length).startsWith('/api/'),
    errorReply: (status) => gitlabError(status),
    handle,
  });
  return Object.assign(fake, { model, oauth, baseUrl: `${fake.url}${prefix}` });
}
