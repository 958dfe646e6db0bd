/**
 * Token refresh that never races (functions/oauth/tokens.ts), against the GitLab fake whose
 * refresh tokens rotate (a used one is dead: invalid_grant). "Two processes" are two token
 * managers with their own in-flight maps sharing the table (leases) and the secret store.
 * No timed sleeps: the fake's token endpoint is held with a gate, waiting is event-driven.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { ConnectionStore } from '#platform/connections.ts';
import { LeaseStore } from '#platform/leases.ts';
import type { Runtime } from '#platform/runtime.ts';
import { OAuthClient } from '../../functions/oauth/client.ts';
import { credentialsFromTokens } from '../../functions/oauth/credentials.ts';
import { gitlabOAuth } from '#connectors/gitlab/oauth.ts';
import { OAuthTokenManager, ReconnectNeededError, TokenRefreshBusyError, TokenRefreshFailedError } from '../../functions/oauth/tokens.ts';
import { DEFAULT_GITLAB_CLIENT_ID, DEFAULT_GITLAB_CLIENT_SECRET, startGitLabFake, type GitLabFake } from '../fakes/gitlab.ts';
import { startTestApi, type TestApi } from '../support/api.ts';
import { oauthEnv, roundTrip, shiftClock, tick } from './support.ts';

let api: TestApi;
let gitlab: GitLabFake;
let acme: string;
let restoreEnv: () => void;

const THREE_HOURS = 3 * 3600_000;

beforeAll(async () => {
  gitlab = await startGitLabFake();
  restoreEnv = oauthEnv({ GITLAB_URL: gitlab.url, GITLAB_CLIENT_ID: DEFAULT_GITLAB_CLIENT_ID, GITLAB_CLIENT_SECRET: DEFAULT_GITLAB_CLIENT_SECRET });
  api = await startTestApi();
  acme = await api.tokenFor('acme');
});
afterAll(async () => {
  await api.close();
  await gitlab.close();
  restoreEnv();
});
afterEach(() => {
  shiftClock(0);
  releaseHeld(); // never leave a request hanging at the fake when a test failed midway
  gitlab.oauth.gate = undefined;
  gitlab.oauth.failRefreshes = 0;
});

/** A connected GitLab connection (through the real OAuth flow); its id. */
async function connectGitLab(): Promise<string> {
  const { callback } = await roundTrip(api, acme, 'gitlab');
  expect(callback.body.connection.status).toBe('connected');
  return callback.body.connection.id;
}

/** The runtime of one "process", with a clock `offsetMs` ahead (the stored token has expired). */
function processRuntime(offsetMs = THREE_HOURS): Runtime {
  return { table: api.table, secrets: api.secrets, now: () => new Date(Date.now() + offsetMs) };
}

/** A token manager playing one process: its own in-flight map, and a sleep that just yields (counted). */
function processManager(rt: Runtime, options: { waitMs?: number; advance?: (ms: number) => void } = {}) {
  const state = { sleeps: 0 };
  const manager = new OAuthTokenManager(rt, {
    inFlight: new Map(),
    sleep: async (ms) => {
      state.sleeps++;
      options.advance?.(ms);
      await tick();
    },
    ...(options.waitMs !== undefined ? { waitMs: options.waitMs } : {}),
  });
  return { manager, state };
}

let releaseHeld: () => void = () => undefined;

/** Holds the fake's token endpoint until released; `waiting` resolves when a request is waiting there. */
function holdTokenEndpoint() {
  let release!: () => void;
  let arrived!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const waiting = new Promise<void>((resolve) => (arrived = resolve));
  gitlab.oauth.gate = async () => {
    arrived();
    await released;
  };
  releaseHeld = release;
  return { release, waiting };
}

const stored = (id: string) => {
  const names = api.secrets.namesOf('acme').filter((name) => name.startsWith(`${id}-v`));
  expect(names).toHaveLength(1);
  return { name: names[0]!, value: api.secrets.values.get(`acme/${names[0]}`)! };
};

describe('refresh race', () => {
  it('two processes, one expired GitLab token: exactly one refresh reaches GitLab, both end with the new valid token', async () => {
    const id = await connectGitLab();
    const old = stored(id).value;
    const before = gitlab.oauth.stats.refreshes;
    const rt = processRuntime();
    const a = processManager(rt);
    const b = processManager(rt);
    const connection = { tenantId: 'acme', id };

    const held = holdTokenEndpoint();
    const first = a.manager.getFreshAccessToken(connection);
    await held.waiting; // A holds the lease and its refresh is at GitLab
    const second = b.manager.getFreshAccessToken(connection);
    while (b.state.sleeps < 3) await tick(); // B found the lease taken and is polling the stored token
    expect(gitlab.oauth.stats.refreshes).toBe(before + 1);
    held.release();

    const [tokenA, tokenB] = await Promise.all([first, second]);
    expect(tokenA).toBe(tokenB);
    expect(tokenA).not.toBe(old.accessToken);
    expect(gitlab.oauth.isValid(tokenA)).toBe(true);
    expect(gitlab.oauth.isValid(String(old.accessToken))).toBe(false);
    expect(gitlab.oauth.stats.refreshes).toBe(before + 1);
    expect(gitlab.oauth.stats.refused).toBe(0);
    // The rotated refresh token was stored (a new version) before either caller got the access token.
    expect(stored(id)).toMatchObject({ name: `${id}-v2`, value: { accessToken: tokenA } });
    expect(stored(id).value.refreshToken).not.toBe(old.refreshToken);
    // The lease is released.
    expect(await new LeaseStore(api.table, rt.now).holder('acme', `refresh:${id}`)).toBeUndefined();
  });

  it('concurrent callers in one process share one refresh', async () => {
    const id = await connectGitLab();
    const before = gitlab.oauth.stats.refreshes;
    const { manager } = processManager(processRuntime());
    const tokens = await Promise.all(Array.from({ length: 5 }, () => manager.getFreshAccessToken({ tenantId: 'acme', id })));
    expect(new Set(tokens).size).toBe(1);
    expect(gitlab.oauth.stats.refreshes).toBe(before + 1);
    expect(gitlab.oauth.isValid(tokens[0])).toBe(true);
  });

  it('does not refresh a token that is still fresh, and refreshes early for a caller that needs it longer', async () => {
    const id = await connectGitLab();
    const before = gitlab.oauth.stats.refreshes;
    const { manager } = processManager(processRuntime(0));
    const token = await manager.getFreshAccessToken({ tenantId: 'acme', id });
    expect(token).toBe(stored(id).value.accessToken);
    expect(gitlab.oauth.stats.refreshes).toBe(before);
    // A sync slice wanting 3 h of validity from a 2 h token: refreshed now.
    const longer = await manager.getFreshAccessToken({ tenantId: 'acme', id }, { minValidityMs: THREE_HOURS });
    expect(longer).not.toBe(token);
    expect(gitlab.oauth.stats.refreshes).toBe(before + 1);
  });

  it('a waiter gives up after a bounded wait when the holder never finishes (503, try again)', async () => {
    const id = await connectGitLab();
    const rt = processRuntime();
    const a = processManager(rt);
    let virtual = 0;
    const bRuntime: Runtime = { ...rt, now: () => new Date(Date.now() + THREE_HOURS + virtual) };
    const b = processManager(bRuntime, { waitMs: 5_000, advance: (ms) => (virtual += ms) });
    const held = holdTokenEndpoint();
    const first = a.manager.getFreshAccessToken({ tenantId: 'acme', id });
    await held.waiting;
    await expect(b.manager.getFreshAccessToken({ tenantId: 'acme', id })).rejects.toBeInstanceOf(TokenRefreshBusyError);
    held.release();
    expect(gitlab.oauth.isValid(await first)).toBe(true);
  });
});

describe('a refresh that fails', () => {
  it('invalid_grant twice: the connection is marked error "reconnect needed" and is not retried again', async () => {
    const id = await connectGitLab();
    const before = gitlab.oauth.stats.refreshes;
    gitlab.oauth.failRefreshes = 2;
    const { manager } = processManager(processRuntime());
    const failure = await manager.getFreshAccessToken({ tenantId: 'acme', id }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ReconnectNeededError);
    expect((failure as Error).message).toMatch(/^reconnect needed: GitLab refused the stored refresh token \(invalid_grant\)/);
    expect(gitlab.oauth.stats.refreshes).toBe(before + 2);

    const connection = await api.call('GET', `/v1/connections/${id}`, { token: acme });
    expect(connection.body.status).toBe('error');
    expect(connection.body.lastError).toMatch(/^reconnect needed: .*POST \/v1\/integrations\/gitlab\/authorize/);

    // From now on: no more requests to GitLab's token endpoint, by any path.
    await expect(manager.getFreshAccessToken({ tenantId: 'acme', id })).rejects.toBeInstanceOf(ReconnectNeededError);
    shiftClock(THREE_HOURS);
    const test = await api.call('POST', `/v1/connections/${id}/test`, { token: acme });
    expect(test.body).toMatchObject({ ok: false, checks: [{ name: 'token', ok: false }] });
    expect(test.body.checks[0].detail).toMatch(/^reconnect needed/);
    expect(gitlab.oauth.stats.refreshes).toBe(before + 2);
    const patch = await api.call('PATCH', `/v1/connections/${id}`, { token: acme, body: { config: { projects: ['acme/payments'] } } });
    expect(patch.status).toBe(422);
    expect(gitlab.oauth.stats.refreshes).toBe(before + 2);
  });

  it('one invalid_grant is read again and retried once', async () => {
    const id = await connectGitLab();
    const before = gitlab.oauth.stats.refreshes;
    gitlab.oauth.failRefreshes = 1;
    const { manager } = processManager(processRuntime());
    const token = await manager.getFreshAccessToken({ tenantId: 'acme', id });
    expect(gitlab.oauth.isValid(token)).toBe(true);
    expect(gitlab.oauth.stats.refreshes).toBe(before + 2);
    expect((await new ConnectionStore(api.table).get('acme', id))?.status).toBe('connected');
  });

  it('picks up the version a refresher stored before it crashed, instead of declaring the grant dead', async () => {
    const id = await connectGitLab();
    const current = stored(id);
    // A process refreshed (the old refresh token is now dead at GitLab), stored v2, and died before moving the pointer.
    const client = new OAuthClient(gitlabOAuth.clientConfig({ clientId: DEFAULT_GITLAB_CLIENT_ID, clientSecret: DEFAULT_GITLAB_CLIENT_SECRET, baseUrl: gitlab.url, source: 'environment' }));
    const rotated = credentialsFromTokens(await client.refresh({ refreshToken: String(current.value.refreshToken) }), new Date(Date.now() + THREE_HOURS), current.value as never);
    await api.secrets.put('acme', `${id}-v2`, rotated);

    const { manager } = processManager(processRuntime());
    const token = await manager.getFreshAccessToken({ tenantId: 'acme', id });
    expect(token).toBe(rotated.accessToken);
    expect(gitlab.oauth.isValid(token)).toBe(true);
    expect(stored(id).name).toBe(`${id}-v2`);
    expect((await new ConnectionStore(api.table).get('acme', id))?.secretName).toBe(`${id}-v2`);
  });

  it('GitLab down: a temporary failure, the connection is not marked and the next call succeeds', async () => {
    const id = await connectGitLab();
    gitlab.oauth.gate = async () => {
      throw new Error('GitLab is down');
    };
    const { manager } = processManager(processRuntime());
    await expect(manager.getFreshAccessToken({ tenantId: 'acme', id })).rejects.toBeInstanceOf(TokenRefreshFailedError);
    expect((await new ConnectionStore(api.table).get('acme', id))?.status).toBe('connected');
    gitlab.oauth.gate = undefined;
    expect(gitlab.oauth.isValid(await manager.getFreshAccessToken({ tenantId: 'acme', id }))).toBe(true);
  });

  it('an expired token without a refresh token needs a reconnect', async () => {
    const id = await connectGitLab();
    const { name, value } = stored(id);
    await api.secrets.put('acme', name, { accessToken: value.accessToken, expiresAt: value.expiresAt });
    const { manager } = processManager(processRuntime());
    await expect(manager.getFreshAccessToken({ tenantId: 'acme', id })).rejects.toThrow(/reconnect needed: the GitLab token expired and there is no refresh token/);
  });
});
