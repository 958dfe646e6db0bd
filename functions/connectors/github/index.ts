/**
 * GitHub through the OpenTrace GitHub App. The user authorizes the app (OAuth web flow with PKCE,
 * functions/oauth/), installs it on an account and picks repositories there; the connection
 * records that installation and the repositories to sync (`repositories`, changeable with PATCH
 * within what the installation grants).
 *
 * The live check, with the stored user-to-server token (refreshed first when about to expire):
 *   1. `user`:          GET /user: the token works, whose it is.
 *   2. `installation`:  GET /user/installations: the app is installed on an account this user can
 *                       reach; the configured one, else the one from the install callback, else
 *                       the first one listed.
 *   3. `repositories`:  GET /user/installations/{id}/repositories (all pages, up to 1,000
 *                       repositories): the installation grants repositories, and every selected
 *                       one among them.
 *
 * The sync (sync.ts): one partition per repository of `config.repositories`, each synced in
 * phases (repository, branches, commits, tree, code, issues, pull requests) with conditional
 * requests, so a pass that finds nothing changed spends none of the primary rate limit.
 */
import { z } from 'zod';
import type { Connector, VerifyContext } from '../types.ts';
import { CheckFailure, CheckList, isObject, secretsOf } from '../http-checks.ts';
import { oauthCredentialsSchema, type OAuthCredentials } from '../../oauth/credentials.ts';
import { GitHubApi, nextLink } from './api.ts';
import { githubInstallUrl, githubUrls } from './oauth.ts';
import { githubPartitions, syncGitHubRepository } from './sync.ts';
import { treeSitterBundleFiles } from '../../code/bundle-files.ts';

export const MAX_GITHUB_REPOSITORIES = 1000;
const REPOSITORY_PAGES = MAX_GITHUB_REPOSITORIES / 100;

export interface GitHubConfig {
  installationId?: number;
  repositories?: string[];
}

const repositoryName = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,100}\/[A-Za-z0-9_.-]{1,100}$/, 'a repository is "owner/name"');

export const githubConfigSchema = z
  .object({
    installationId: z.number().int().positive().optional().describe('The GitHub App installation this connection reads (set on connect; another installation of yours may be chosen).'),
    repositories: z
      .array(repositoryName)
      .max(MAX_GITHUB_REPOSITORIES)
      .optional()
      .describe('The repositories to sync ("owner/name"), among those the installation grants. Set on connect to every repository you selected on GitHub.'),
  })
  .describe('The GitHub App installation and the repositories to sync. Tokens are never part of the config.');

interface Installation {
  id: number;
  account: { login: string; type: string };
  repositorySelection: string;
}

function parseInstallation(value: unknown): Installation | undefined {
  if (!isObject(value) || typeof value.id !== 'number') return undefined;
  const account = isObject(value.account) ? value.account : {};
  return {
    id: value.id,
    account: { login: typeof account.login === 'string' ? account.login : String(value.id), type: typeof account.type === 'string' ? account.type : 'User' },
    repositorySelection: typeof value.repository_selection === 'string' ? value.repository_selection : 'selected',
  };
}

const list = (names: string[]) => `${names.slice(0, 5).join(', ')}${names.length > 5 ? `, and ${names.length - 5} more` : ''}`;

async function verifyGitHub(ctx: VerifyContext<GitHubConfig, OAuthCredentials>) {
  const { api: base } = githubUrls();
  const checks = new CheckList({ upstream: { product: 'GitHub', origin: base }, secrets: secretsOf(ctx.credentials), logger: ctx.logger });
  const github = new GitHubApi(base, ctx.credentials.accessToken, ctx.fetch, checks.signal);
  const installUrl = githubInstallUrl();

  const user = await checks.run('user', async () => {
    const answer = await github.get('user');
    if (answer.body.status !== 200) throw github.failure(answer, '/user');
    const json = isObject(answer.body.json) ? answer.body.json : {};
    if (typeof json.login !== 'string') throw new CheckFailure(`${base}/user did not answer with a GitHub user. Check GITHUB_API_URL.`);
    return { detail: `The token works: authorized by GitHub user ${json.login}.`, value: { login: json.login } };
  });
  if (!user.ok) return checks.result();

  const installation = await checks.run('installation', async () => {
    const answer = await github.get('user/installations?per_page=100');
    if (answer.body.status !== 200) throw github.failure(answer, '/user/installations');
    const json = isObject(answer.body.json) ? answer.body.json : {};
    const found = (Array.isArray(json.installations) ? json.installations : []).map(parseInstallation).filter((i): i is Installation => i !== undefined);
    if (found.length === 0) {
      throw new CheckFailure(`The OpenTrace GitHub App is not installed on any account ${user.value.login} can access. Install it at ${installUrl}, select the repositories or organizations to connect, then test the connection again.`);
    }
    const wanted = ctx.config.installationId;
    const chosen = wanted === undefined ? found[0]! : found.find((i) => i.id === wanted);
    if (!chosen) {
      throw new CheckFailure(`GitHub App installation ${wanted} is not one ${user.value.login} can access (accessible: ${found.map((i) => `${i.id} on ${i.account.login}`).join(', ')}). Choose one of those with PATCH config.installationId, or install the app at ${installUrl}.`);
    }
    const others = found.filter((i) => i.id !== chosen.id);
    const note = wanted === undefined && others.length > 0 ? ` The app is also installed on ${others.map((i) => i.account.login).join(', ')}: connect again, or PATCH config.installationId, to read one of those instead.` : '';
    return { detail: `The OpenTrace GitHub App is installed on ${chosen.account.type === 'Organization' ? 'organization' : 'account'} ${chosen.account.login} (installation ${chosen.id}, ${chosen.repositorySelection === 'all' ? 'all repositories' : 'selected repositories'}).${note}`, value: chosen };
  });
  if (!installation.ok) return checks.result({ login: user.value.login });

  const repositories = await checks.run('repositories', async () => {
    const names: string[] = [];
    let total = 0;
    let next: string | undefined = `user/installations/${installation.value.id}/repositories?per_page=100`;
    for (let page = 0; next && page < REPOSITORY_PAGES; page++) {
      const answer = await github.get(next);
      if (answer.body.status !== 200) throw github.failure(answer, `/user/installations/${installation.value.id}/repositories`);
      const json = isObject(answer.body.json) ? answer.body.json : {};
      total = typeof json.total_count === 'number' ? json.total_count : total;
      for (const repo of Array.isArray(json.repositories) ? json.repositories : []) if (isObject(repo) && typeof repo.full_name === 'string') names.push(repo.full_name);
      next = nextLink(answer.headers.get('link'));
    }
    total = Math.max(total, names.length);
    if (names.length === 0) {
      throw new CheckFailure(`Installation ${installation.value.id} on ${installation.value.account.login} grants no repositories. Choose repositories for the OpenTrace GitHub App on GitHub (${installUrl}), then test the connection again.`);
    }
    const selected = ctx.config.repositories;
    if (selected) {
      const granted = new Set(names.map((name) => name.toLowerCase()));
      const missing = selected.filter((name) => !granted.has(name.toLowerCase()));
      if (missing.length > 0) {
        const beyond = total > names.length ? ` (OpenTrace looked at the first ${names.length} of ${total})` : '';
        throw new CheckFailure(`The installation on ${installation.value.account.login} does not grant ${list(missing)}${beyond}. Add ${missing.length === 1 ? 'it' : 'them'} to the OpenTrace GitHub App's repositories on GitHub, or leave ${missing.length === 1 ? 'it' : 'them'} out of config.repositories.`);
      }
      return { detail: `All ${selected.length} selected repositor${selected.length === 1 ? 'y is' : 'ies are'} readable (the installation grants ${total}).`, value: { names, total } };
    }
    const capped = total > names.length ? ` OpenTrace records the first ${names.length}; choose others with PATCH config.repositories.` : '';
    return { detail: `The installation grants ${total} repositor${total === 1 ? 'y' : 'ies'}: ${list(names)}.${capped}`, value: { names, total } };
  });

  const discovered: Record<string, unknown> = {
    login: user.value.login,
    installationId: installation.value.id,
    account: installation.value.account,
    repositorySelection: installation.value.repositorySelection,
  };
  if (repositories.ok) {
    discovered.repositoryCount = repositories.value.total;
    if (!ctx.config.repositories) discovered.repositories = repositories.value.names.slice(0, MAX_GITHUB_REPOSITORIES);
  }
  return checks.result(discovered);
}

export const githubConnector: Connector<GitHubConfig, OAuthCredentials> = {
  type: 'github',
  title: 'GitHub',
  auth: 'oauth',
  provides: ['Repository data', 'Issues', 'Pull requests', 'Code analysis'],
  configSchema: githubConfigSchema,
  credentialsSchema: oauthCredentialsSchema,
  verify: verifyGitHub,
  partitions: githubPartitions,
  sync: syncGitHubRepository,
  // The code analysis' grammars, read at run time from <bundle>/tree-sitter/.
  bundleFiles: treeSitterBundleFiles(),
};
