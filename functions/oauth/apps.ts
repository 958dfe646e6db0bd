/**
 * Which OAuth app a flow or a refresh uses: OpenTrace's own app for the provider (from the
 * environment: `<PROVIDER>_CLIENT_ID`, `<PROVIDER>_CLIENT_SECRET`, `<PROVIDER>_URL`), or, for a
 * self-hosted base URL, the app the tenant registered with PUT /v1/integrations/gitlab/instances.
 */
import { AppError, ValidationError } from '#platform/errors.ts';
import type { Runtime } from '#platform/runtime.ts';
import { instanceHost, normalizeBaseUrl, OAuthInstanceStore } from './instances.ts';
import type { OAuthApp, OAuthProvider } from './provider.ts';

/** The deployment has no app for this provider: an operator problem, not the caller's. */
export class OAuthNotConfiguredError extends AppError {
  constructor(provider: OAuthProvider) {
    const prefix = provider.type.toUpperCase().replace(/-/g, '_');
    super(503, 'oauth-app-not-configured', 'OAuth app not configured', `${provider.product} connections are not set up on this deployment: its OAuth app (${prefix}_CLIENT_ID, ${prefix}_CLIENT_SECRET) is missing.`);
  }
}

/** The instance's app is not registered (or its secret is gone). */
export class UnknownInstanceError extends ValidationError {
  constructor(provider: OAuthProvider, baseUrl: string) {
    super(`${baseUrl} is not a registered ${provider.product} instance of this tenant: register its OAuth application first with PUT /v1/integrations/${provider.type}/instances { baseUrl, clientId, clientSecret }.`, [
      { path: 'body.baseUrl', message: 'no OAuth application registered for this instance' },
    ]);
  }
}

export function isDefaultBaseUrl(provider: OAuthProvider, baseUrl: string, env: NodeJS.ProcessEnv = process.env): boolean {
  return normalizeBaseUrl(baseUrl) === normalizeBaseUrl(provider.defaultBaseUrl(env));
}

let deployedApps: Promise<Record<string, string>> | undefined;

/**
 * In the cloud, OpenTrace's own OAuth apps (`GITHUB_CLIENT_ID`, `GITHUB_CLIENT_SECRET`, …) are
 * one Secrets Manager secret named by OAUTH_APPS_SECRET_ARN, read once per container: app
 * secrets never sit in a Lambda's environment. Locally and in tests they are plain variables.
 */
async function appEnvironment(env: NodeJS.ProcessEnv): Promise<NodeJS.ProcessEnv> {
  const arn = env.OAUTH_APPS_SECRET_ARN;
  if (!arn) return env;
  deployedApps ??= (async () => {
    const { SecretsManagerClient, GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
    const { SecretString } = await new SecretsManagerClient({}).send(new GetSecretValueCommand({ SecretId: arn }));
    const parsed = JSON.parse(SecretString ?? '{}') as Record<string, unknown>;
    return Object.fromEntries(Object.entries(parsed).filter((entry): entry is [string, string] => typeof entry[1] === 'string' && entry[1] !== ''));
  })().catch((error: unknown) => {
    deployedApps = undefined;
    throw error;
  });
  return { ...(await deployedApps), ...env };
}

export async function resolveApp(rt: Runtime, tenantId: string, provider: OAuthProvider, baseUrl?: string, processEnv: NodeJS.ProcessEnv = process.env): Promise<OAuthApp> {
  const env = await appEnvironment(processEnv);
  if (!provider.selfHosted || baseUrl === undefined || isDefaultBaseUrl(provider, baseUrl, env)) {
    const app = provider.defaultApp(env);
    if (!app) throw new OAuthNotConfiguredError(provider);
    return app;
  }
  const normalized = normalizeBaseUrl(baseUrl);
  const instance = await new OAuthInstanceStore(rt.table).get(tenantId, provider.type, instanceHost(normalized));
  if (!instance || instance.baseUrl !== normalized) throw new UnknownInstanceError(provider, normalized);
  const secret = await rt.secrets.get(tenantId, instance.secretName);
  if (typeof secret?.clientSecret !== 'string') throw new UnknownInstanceError(provider, normalized);
  return { clientId: instance.clientId, clientSecret: secret.clientSecret, baseUrl: instance.baseUrl, source: 'instance' };
}
