/**
 * GitHub's OAuth descriptor: the OpenTrace GitHub App's user authorization (web flow with PKCE
 * S256, expiring user-to-server tokens of 8 h with refresh tokens of 6 months that rotate on use).
 * A GitHub App asks for no scopes: its permissions (read-only contents, issues, pull requests,
 * members; see docs/integrations/github.md) are set on the app itself.
 *
 * Endpoints: GITHUB_URL (web: authorize and token, default https://github.com) and
 * GITHUB_API_URL (REST, default https://api.github.com); GITHUB_APP_SLUG names the app for the
 * "install it" link (default `opentrace`).
 */
import type { OAuthApp, OAuthProvider } from '../../oauth/provider.ts';

export interface GitHubUrls {
  web: string;
  api: string;
  appSlug: string;
}

const trim = (url: string) => url.replace(/\/+$/, '');

export function githubUrls(env: NodeJS.ProcessEnv = process.env): GitHubUrls {
  return {
    web: trim(env.GITHUB_URL || 'https://github.com'),
    api: trim(env.GITHUB_API_URL || 'https://api.github.com'),
    appSlug: env.GITHUB_APP_SLUG || 'opentrace',
  };
}

/** Where a user installs the app or changes which repositories it may read. */
export function githubInstallUrl(env: NodeJS.ProcessEnv = process.env): string {
  const { web, appSlug } = githubUrls(env);
  return `${web}/apps/${appSlug}/installations/new`;
}

export const githubOAuth: OAuthProvider = {
  type: 'github',
  product: 'GitHub',
  defaultBaseUrl: (env) => githubUrls(env).web,
  defaultApp(env): OAuthApp | undefined {
    if (!env.GITHUB_CLIENT_ID || !env.GITHUB_CLIENT_SECRET) return undefined;
    return { clientId: env.GITHUB_CLIENT_ID, clientSecret: env.GITHUB_CLIENT_SECRET, baseUrl: githubUrls(env).web, source: 'environment' };
  },
  clientConfig: (app) => ({
    product: 'GitHub',
    clientId: app.clientId,
    clientSecret: app.clientSecret,
    authorizeUrl: `${app.baseUrl}/login/oauth/authorize`,
    tokenUrl: `${app.baseUrl}/login/oauth/access_token`,
    clientAuth: 'body',
    pkce: true,
    // GitHub answers these with status 200 and an `error` field.
    grantErrorCodes: ['bad_verification_code', 'bad_refresh_token'],
    clientErrorCodes: ['incorrect_client_credentials', 'redirect_uri_mismatch'],
  }),
  initialConfig({ query }) {
    // Present when the user installed the app in the same flow (setup_action=install).
    const installationId = Number(query.installation_id);
    return Number.isSafeInteger(installationId) && installationId > 0 ? { installationId } : {};
  },
  connectionName(config) {
    const account = config.account as { login?: unknown } | undefined;
    const login = typeof account?.login === 'string' ? account.login : typeof config.login === 'string' ? config.login : undefined;
    return login ? `GitHub ${login}` : 'GitHub';
  },
};
