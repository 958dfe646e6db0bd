/**
 * What the shared OAuth flow needs to know about one provider: a small descriptor, one per
 * integration, living in its connector folder (functions/connectors/<type>/oauth.ts) and listed
 * in functions/oauth/providers.ts. The flow itself (state, PKCE, exchange, refresh under a
 * lease, the connection's creation) is the same code for all of them.
 */
import type { Logger, OutboundFetch } from '#connectors/types.ts';
import type { OAuthClientConfig, TokenSet } from './client.ts';
import type { OAuthCredentials } from './credentials.ts';

/** One OAuth app: OpenTrace's own (from the environment) or a tenant's self-hosted instance's. */
export interface OAuthApp {
  clientId: string;
  clientSecret: string;
  /** The provider's web base URL: https://github.com, https://gitlab.com or the instance, https://slack.com. */
  baseUrl: string;
  source: 'environment' | 'instance';
}

export interface CallbackInput {
  /** The callback's query string (GitHub adds installation_id and setup_action). */
  query: Record<string, string>;
  /** What the authorize call stored with the state (see `authorizeExtras`). */
  extra: Record<string, unknown>;
  tokens: TokenSet;
  app: OAuthApp;
}

export interface AfterConnectInput {
  tenantId: string;
  config: Record<string, unknown>;
  credentials: OAuthCredentials;
  fetch: OutboundFetch;
  logger: Logger;
}

export interface AfterConnectResult {
  /** Merged into the connection's config (Slack: the test messages' results). */
  config?: Record<string, unknown>;
  /** Set when something the user should fix went wrong: the connection is stored with status error and this as lastError. */
  failure?: string;
}

export interface OAuthProvider {
  /** The integration type (`github`, `gitlab`, `slack`). */
  type: string;
  /** "GitHub", "GitLab", "Slack". */
  product: string;
  /** The OAuth client's settings for one app: endpoints, scopes, PKCE, client authentication, error codes. */
  clientConfig(app: OAuthApp): OAuthClientConfig;
  /** The app configured for this deployment (`<PROVIDER>_CLIENT_ID` / `_CLIENT_SECRET`, `<PROVIDER>_URL`), if any. */
  defaultApp(env: NodeJS.ProcessEnv): OAuthApp | undefined;
  /** The default web base URL (for messages and for matching a `baseUrl` against the default app). */
  defaultBaseUrl(env: NodeJS.ProcessEnv): string;
  /** True when tenants may register their own instances (GitLab self-managed): the authorize body may name a `baseUrl`. */
  selfHosted?: boolean;
  /** True when the user picks channels (Slack): the authorize body may list `channels`. */
  channelSelection?: boolean;
  /** A live look at a self-hosted instance before it is registered: throws with a reason a person can act on. */
  probeInstance?(baseUrl: string, fetch: OutboundFetch): Promise<{ detail: string }>;
  /** The connection's config right after the code exchange, before the live check. */
  initialConfig(input: CallbackInput): Record<string, unknown>;
  /** Secrets the token answer carries besides the tokens (Slack's incoming-webhook URL), stored with them. */
  extraCredentials?(tokens: TokenSet): Record<string, string>;
  /** A default connection name from the verified config. */
  connectionName(config: Record<string, unknown>): string;
  /** Runs once after a passing live check on connect (Slack posts its test message here). */
  afterConnect?(input: AfterConnectInput): Promise<AfterConnectResult>;
}
