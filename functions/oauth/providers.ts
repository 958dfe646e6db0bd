/**
 * The OAuth providers, by integration type. Each descriptor lives in its connector's folder; the
 * flow (functions/oauth/flow.ts) and the token refresher (tokens.ts) find them here.
 */
import { githubOAuth } from '#connectors/github/oauth.ts';
import { gitlabOAuth } from '#connectors/gitlab/oauth.ts';
import { slackOAuth } from '#connectors/slack/oauth.ts';
import type { OAuthProvider } from './provider.ts';

const PROVIDERS: readonly OAuthProvider[] = [githubOAuth, gitlabOAuth, slackOAuth];

const byType = new Map(PROVIDERS.map((provider) => [provider.type, provider]));

export function oauthProvider(type: string): OAuthProvider | undefined {
  return byType.get(type);
}

export function oauthProviders(): readonly OAuthProvider[] {
  return PROVIDERS;
}
