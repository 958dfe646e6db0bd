/**
 * GitHub sync tests' helpers: the environment that points the connector at the fake, and a
 * GitHub connection stored straight into a sync harness (tokens issued by the fake, as the web
 * flow would), for tests that drive the state machine without the API.
 */
import type { Connection } from '#platform/connections.ts';
import type { GitHubFake } from '../fakes/github.ts';
import { DEFAULT_GITHUB_CLIENT_ID, DEFAULT_GITHUB_CLIENT_SECRET } from '../fakes/github.ts';
import { oauthEnv } from '../oauth/support.ts';
import type { SyncHarness } from '../support/sync-harness.ts';

/** GITHUB_URL / GITHUB_API_URL at the fake, the app's credentials, loopback allowed; returns the restore function. */
export function githubEnv(github: GitHubFake, extra: Record<string, string> = {}): () => void {
  return oauthEnv({ GITHUB_URL: github.url, GITHUB_API_URL: github.url, GITHUB_CLIENT_ID: DEFAULT_GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET: DEFAULT_GITHUB_CLIENT_SECRET, ...extra });
}

/** A connected GitHub connection over `repositories`, with tokens the fake accepts. */
export async function githubConnection(h: SyncHarness, github: GitHubFake, repositories: string[]): Promise<Connection> {
  const connection = await h.createConnection('github', { config: { installationId: 4242, repositories } });
  await h.secrets.put(h.tenantId, connection.secretName!, await github.issueToken());
  return connection;
}

/** Ids of the nodes of one type a connection contributed. */
export async function nodeIdsOfType(h: SyncHarness, connectionId: string, type: string): Promise<string[]> {
  const prefix = `github:${type}:`;
  return (await h.nodeIdsOf(connectionId)).filter((id) => id.startsWith(prefix));
}
