/**
 * GitLab (GitLab.com or a self-managed instance) through OAuth 2 with PKCE. The connection keeps
 * the instance's `baseUrl` (read-only: the token belongs to that instance) and the projects to
 * sync (`projects`, "group/project" paths; every project the user is a member of on connect,
 * changeable with PATCH, the guide's "Select the projects you want to sync").
 *
 * The live check, with the stored token (refreshed first when about to expire), all requests
 * through the outbound-safety fetch (a self-managed base URL is user input):
 *   1. `instance`:  GET {baseUrl}/api/v4/version: a GitLab API answers there, and which version.
 *   2. `user`:      GET /api/v4/user: the token works, whose it is.
 *   3. `projects`:  GET /api/v4/projects?membership=true (all pages, up to 1,000 projects): what
 *                   the user can read; every selected project must be readable (a selected
 *                   project outside the membership list is looked up by path).
 *
 * The sync (sync.ts): one partition per project: groups, the project, branches, commits, the
 * tree, code symbols and dependencies, issues, merge requests, pipelines and jobs.
 */
import { z } from 'zod';
import type { Connector, VerifyContext } from '../types.ts';
import {
  CheckFailure,
  CheckList,
  isObject,
  joinUrl,
  readBody,
  rejectedDetail,
  secretsOf,
  serviceUrlSchema,
  unexpectedStatusDetail,
  upstreamSaid,
  type ReadBody,
  type Upstream,
} from '../http-checks.ts';
import { oauthCredentialsSchema, type OAuthCredentials } from '../../oauth/credentials.ts';
import { treeSitterBundleFiles } from '../../code/bundle-files.ts';
import { createGitLabSync, DEFAULT_COMMIT_DEPTH } from './sync.ts';

export const MAX_GITLAB_PROJECTS = 1000;
const PROJECT_PAGES = MAX_GITLAB_PROJECTS / 100;
/** At most this many selected projects outside the membership list are looked up one by one. */
const MAX_PROJECT_LOOKUPS = 25;

export interface GitLabConfig {
  baseUrl: string;
  projects?: string[];
  /** Commits of the default branch a first sync reads (default 500); later syncs add every new one. */
  commitDepth?: number;
}

const projectPath = z.string().regex(/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)+$/, 'a project is its full path, "group/project" (subgroups allowed)').max(255);

export const gitlabConfigSchema = z
  .object({
    baseUrl: serviceUrlSchema('https://gitlab.com').meta({
      readOnly: true,
      description: 'The GitLab instance (https://gitlab.com, or a self-managed one registered with PUT /v1/integrations/gitlab/instances). Set on connect; read-only.',
    }),
    projects: z
      .array(projectPath)
      .max(MAX_GITLAB_PROJECTS)
      .optional()
      .describe('The projects to sync ("group/project"). Set on connect to every project you are a member of.'),
    commitDepth: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .optional()
      .describe(`Commits of each default branch the first sync reads, newest first (default ${DEFAULT_COMMIT_DEPTH}); later syncs add every new commit.`),
  })
  .describe('The GitLab instance and the projects to sync. Tokens are never part of the config.');

interface Answer {
  body: ReadBody;
  headers: Headers;
}

function nextPage(headers: Headers): string | undefined {
  for (const part of (headers.get('link') ?? '').split(',')) {
    const match = /<([^>]+)>\s*;\s*rel="?next"?/.exec(part.trim());
    if (match) return match[1];
  }
  return undefined;
}

const list = (names: string[]) => `${names.slice(0, 5).join(', ')}${names.length > 5 ? `, and ${names.length - 5} more` : ''}`;

async function verifyGitLab(ctx: VerifyContext<GitLabConfig, OAuthCredentials>) {
  const base = ctx.config.baseUrl.replace(/\/+$/, '');
  const upstream: Upstream = { product: 'GitLab', origin: base };
  const checks = new CheckList({ upstream, secrets: secretsOf(ctx.credentials), logger: ctx.logger });
  const origin = new URL(base).origin;

  const get = async (pathOrUrl: string): Promise<Answer> => {
    const url = /^https?:\/\//.test(pathOrUrl) ? new URL(pathOrUrl) : joinUrl(base, pathOrUrl);
    if (url.origin !== origin) throw new CheckFailure(`GitLab pointed to ${url.origin} for the next page, which is not ${origin}; OpenTrace does not send the token there.`);
    const response = await ctx.fetch(url, { headers: { accept: 'application/json', authorization: `Bearer ${ctx.credentials.accessToken}` }, signal: checks.signal });
    return { body: await readBody(response), headers: response.headers };
  };
  const failure = ({ body, headers }: Answer, path: string) => {
    if (body.status === 401) return new CheckFailure(rejectedDetail(upstream, 'the token', '401 Unauthorized', body, 'The authorization was revoked or has expired: connect GitLab again.'));
    if (body.status === 403) return new CheckFailure(`GitLab refused ${path} (403 Forbidden): the token lacks the read_api scope, or the account is blocked.${upstreamSaid(body)}`);
    return new CheckFailure(unexpectedStatusDetail(upstream, body, headers, path));
  };

  const instance = await checks.run('instance', async () => {
    const answer = await get('api/v4/version');
    if (answer.body.status === 404) throw new CheckFailure(`${base} has no GitLab API at /api/v4 (404 Not Found). The base URL must be the GitLab instance itself.`);
    if (answer.body.status !== 200) throw failure(answer, '/api/v4/version');
    const json = isObject(answer.body.json) ? answer.body.json : {};
    if (typeof json.version !== 'string') throw new CheckFailure(`${base}/api/v4/version did not answer with GitLab's version: the base URL must be the GitLab instance itself.`);
    return { detail: `${base} is GitLab ${json.version}.`, value: { version: json.version } };
  });
  if (!instance.ok) return checks.result();

  const user = await checks.run('user', async () => {
    const answer = await get('api/v4/user');
    if (answer.body.status !== 200) throw failure(answer, '/api/v4/user');
    const json = isObject(answer.body.json) ? answer.body.json : {};
    if (typeof json.username !== 'string') throw new CheckFailure(`${base}/api/v4/user did not answer with a GitLab user.`);
    return { detail: `The token works: authorized by GitLab user ${json.username}.`, value: { username: json.username } };
  });
  if (!user.ok) return checks.result({ gitlabVersion: instance.value.version });

  const projects = await checks.run('projects', async () => {
    const paths: string[] = [];
    let total: number | undefined;
    let next: string | undefined = 'api/v4/projects?membership=true&simple=true&archived=false&order_by=id&sort=asc&per_page=100';
    for (let page = 0; next && page < PROJECT_PAGES; page++) {
      const answer = await get(next);
      if (answer.body.status !== 200) throw failure(answer, '/api/v4/projects');
      for (const project of Array.isArray(answer.body.json) ? answer.body.json : []) {
        if (isObject(project) && typeof project.path_with_namespace === 'string') paths.push(project.path_with_namespace);
      }
      const totalHeader = Number(answer.headers.get('x-total'));
      if (answer.headers.has('x-total') && Number.isFinite(totalHeader)) total = totalHeader;
      const nextNumber = answer.headers.get('x-next-page');
      next = nextPage(answer.headers) ?? (nextNumber ? `api/v4/projects?membership=true&simple=true&archived=false&order_by=id&sort=asc&per_page=100&page=${encodeURIComponent(nextNumber)}` : undefined);
    }
    const selected = ctx.config.projects;
    if (selected) {
      const readable = new Set(paths.map((path) => path.toLowerCase()));
      const outside = selected.filter((path) => !readable.has(path.toLowerCase()));
      const missing: string[] = [];
      for (const path of outside.slice(0, MAX_PROJECT_LOOKUPS)) {
        const answer = await get(`api/v4/projects/${encodeURIComponent(path)}`);
        if (answer.body.status === 404 || answer.body.status === 403) missing.push(path);
        else if (answer.body.status !== 200) throw failure(answer, `/api/v4/projects/${encodeURIComponent(path)}`);
      }
      missing.push(...outside.slice(MAX_PROJECT_LOOKUPS));
      if (missing.length > 0) {
        throw new CheckFailure(`${user.value.username} cannot read ${list(missing)} on ${base} (not found, or no access). Ask for access to ${missing.length === 1 ? 'it' : 'them'}, or leave ${missing.length === 1 ? 'it' : 'them'} out of config.projects.`);
      }
      return { detail: `All ${selected.length} selected project${selected.length === 1 ? ' is' : 's are'} readable.`, value: { paths, total: total ?? paths.length } };
    }
    const count = total ?? paths.length;
    if (paths.length === 0) {
      return { detail: `The token works, but ${user.value.username} is a member of no project on ${base}: OpenTrace has nothing to sync until you choose projects with PATCH config.projects.`, value: { paths, total: 0 } };
    }
    const capped = count > paths.length ? ` OpenTrace records the first ${paths.length}; choose others with PATCH config.projects.` : '';
    return { detail: `${user.value.username} can read ${count} project${count === 1 ? '' : 's'}: ${list(paths)}.${capped}`, value: { paths, total: count } };
  });

  const discovered: Record<string, unknown> = { gitlabVersion: instance.value.version, username: user.value.username };
  if (projects.ok) {
    discovered.projectCount = projects.value.total;
    if (!ctx.config.projects) discovered.projects = projects.value.paths.slice(0, MAX_GITLAB_PROJECTS);
  }
  return checks.result(discovered);
}

export const gitlabConnector: Connector<GitLabConfig, OAuthCredentials> = {
  type: 'gitlab',
  title: 'GitLab',
  auth: 'oauth',
  provides: ['Repository data', 'Issues', 'Merge requests', 'Code analysis', 'CI/CD pipelines'],
  configSchema: gitlabConfigSchema,
  credentialsSchema: oauthCredentialsSchema,
  verify: verifyGitLab,
  // One partition per project; see sync.ts.
  ...createGitLabSync(),
  // The code analysis' grammars, read at run time from <bundle>/tree-sitter/.
  bundleFiles: treeSitterBundleFiles(),
};
