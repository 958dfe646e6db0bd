/**
 * GitLab's OAuth descriptor: authorization code with PKCE S256 against GitLab.com (GITLAB_URL,
 * default https://gitlab.com, app from GITLAB_CLIENT_ID / GITLAB_CLIENT_SECRET) or a tenant's
 * self-managed instance registered with PUT /v1/integrations/gitlab/instances. Access tokens
 * last 2 h; every refresh rotates the refresh token (the old one and the old access token stop
 * working), which is why refreshes are serialized per connection (functions/oauth/tokens.ts).
 *
 * Scope `read_api`: read access to the API (user, groups, projects, repository files, issues,
 * merge requests, pipelines), nothing that writes.
 */
import type { OutboundFetch } from '../types.ts';
import { isObject, readBody, statusLabel } from '../http-checks.ts';
import type { OAuthApp, OAuthProvider } from '../../oauth/provider.ts';

export const GITLAB_SCOPES = ['read_api'] as const;

export function gitlabDefaultBaseUrl(env: NodeJS.ProcessEnv = process.env): string {
  return (env.GITLAB_URL || 'https://gitlab.com').replace(/\/+$/, '');
}

export class InstanceProbeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InstanceProbeError';
  }
}

/**
 * Before registering an instance: GET {base}/.well-known/openid-configuration (public on every
 * GitLab, which is an OpenID provider) must name {base}/oauth/authorize and {base}/oauth/token.
 */
async function probeGitLab(baseUrl: string, fetch: OutboundFetch): Promise<{ detail: string }> {
  const url = `${baseUrl}/.well-known/openid-configuration`;
  const response = await fetch(url, { headers: { accept: 'application/json' }, timeoutMs: 10_000 });
  const body = await readBody(response, 256 * 1024);
  const json = isObject(body.json) ? body.json : undefined;
  if (body.status !== 200 || !json) {
    throw new InstanceProbeError(`${baseUrl} does not look like GitLab: ${url} answered ${statusLabel(body.status)}${json ? '' : ' without OAuth metadata'}. Give the address you open GitLab at (with its relative URL root, if any).`);
  }
  const authorize = typeof json.authorization_endpoint === 'string' ? json.authorization_endpoint : '';
  const token = typeof json.token_endpoint === 'string' ? json.token_endpoint : '';
  if (!authorize.endsWith('/oauth/authorize') || !token.endsWith('/oauth/token')) {
    throw new InstanceProbeError(`${baseUrl} publishes OAuth metadata, but not GitLab's (/oauth/authorize and /oauth/token). Give the address of the GitLab instance itself.`);
  }
  if (new URL(authorize).origin !== new URL(baseUrl).origin) {
    throw new InstanceProbeError(`${baseUrl} says its OAuth endpoints are on ${new URL(authorize).origin}: register that address instead (GitLab's external_url).`);
  }
  return { detail: `${baseUrl} is a GitLab instance (OAuth at ${authorize}).` };
}

export const gitlabOAuth: OAuthProvider = {
  type: 'gitlab',
  product: 'GitLab',
  selfHosted: true,
  defaultBaseUrl: (env) => gitlabDefaultBaseUrl(env),
  defaultApp(env): OAuthApp | undefined {
    if (!env.GITLAB_CLIENT_ID || !env.GITLAB_CLIENT_SECRET) return undefined;
    return { clientId: env.GITLAB_CLIENT_ID, clientSecret: env.GITLAB_CLIENT_SECRET, baseUrl: gitlabDefaultBaseUrl(env), source: 'environment' };
  },
  clientConfig: (app) => ({
    product: 'GitLab',
    clientId: app.clientId,
    clientSecret: app.clientSecret,
    authorizeUrl: `${app.baseUrl}/oauth/authorize`,
    tokenUrl: `${app.baseUrl}/oauth/token`,
    clientAuth: 'body',
    pkce: true,
    scopes: GITLAB_SCOPES,
  }),
  probeInstance: probeGitLab,
  initialConfig: ({ app }) => ({ baseUrl: app.baseUrl }),
  connectionName(config) {
    const username = typeof config.username === 'string' ? config.username : undefined;
    const host = typeof config.baseUrl === 'string' ? new URL(config.baseUrl).host : 'gitlab.com';
    return username ? `GitLab ${username}@${host}` : `GitLab ${host}`;
  },
};
