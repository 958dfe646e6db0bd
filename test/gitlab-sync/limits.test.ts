/**
 * The GitLab sync's limits: rate limits (429 with and without Retry-After, a nearly spent
 * RateLimit-Remaining), parts of a project it cannot read, and token refresh through the token
 * manager (an expired token, a token revoked early).
 */
import { describe, expect, it } from '@jest/globals';
import { ConnectionStore } from '#platform/connections.ts';
import { FALLBACK_BACKOFF_MS } from '../../functions/connectors/gitlab/rest.ts';
import { sharedProjectFake, startGitLabSyncHarness } from './support.ts';

const PROJECT = 'acme/svc-000';
const shared = sharedProjectFake(PROJECT);
const { ids, headTree, harness, fileNodes } = shared;

describe('rate limits', () => {
  it('a 429 without Retry-After (or RateLimit headers) backs off on its own and completes', async () => {
    const h = await harness();
    shared.fake().throttleNext(3, { paths: /\/issues$/ });
    const report = await h.pass('full');
    expect(h.sleeps).toEqual(FALLBACK_BACKOFF_MS.slice(0, 3));
    expect(report.waits).toEqual([]);
    expect(await h.out(ids().repository(), 'HAS_ISSUE')).toHaveLength(130);
  });

  it('a 429 that keeps coming without Retry-After hands a 60 s wait to the state machine, then completes', async () => {
    const h = await harness();
    shared.fake().throttleNext(FALLBACK_BACKOFF_MS.length + 1, { paths: /\/merge_requests$/ });
    const report = await h.pass('full');
    expect(h.sleeps).toEqual(FALLBACK_BACKOFF_MS);
    expect(report.waits).toEqual([60]);
    expect(await h.out(ids().repository(), 'HAS_PULL_REQUEST')).toHaveLength(4);
  });

  it('a short Retry-After is waited in the slice; a long one is handed back as waitSeconds', async () => {
    const h = await harness();
    shared.fake().throttleNext(1, { retryAfter: 3, paths: /\/pipelines$/ });
    shared.fake().throttleNext(1, { retryAfter: 120, paths: /\/repository\/branches$/ });
    const report = await h.pass('full');
    expect(h.sleeps).toEqual([3000]);
    expect(report.waits).toEqual([120]);
    expect(await h.out(ids().repository(), 'HAS_BRANCH')).toHaveLength(3);
  });

  it('a nearly spent RateLimit-Remaining waits for RateLimit-Reset instead of running into 429s', async () => {
    shared.fake().set({ rateLimit: { limit: 10, windowSeconds: 60 } });
    const h = await harness();
    const throttled = shared.fake().stats.throttled;
    const report = await h.pass('full');
    expect(shared.fake().stats.throttled).toBe(throttled);
    expect(report.waits.length).toBeGreaterThanOrEqual(2);
    // The window (60 s), RateLimit-Reset's rounding to a whole second and a 250 ms margin.
    for (const wait of report.waits) expect(wait).toBeLessThanOrEqual(62);
    expect((await fileNodes(h)).length).toBe(headTree().size);
    expect(await h.out(ids().repository(), 'HAS_ISSUE')).toHaveLength(130);
  });
});

describe('parts of a project that cannot be read', () => {
  it('a feature switched off is not asked for at all', async () => {
    const project = shared.fake().project(PROJECT);
    project.disabled = { issues: true, jobs: true };
    try {
      const h = await harness();
      const before = shared.fake().apiRequests().length;
      const report = await h.pass('full');
      const sent = shared.fake().apiRequests().slice(before);
      expect(sent.filter((r) => /\/(issues|pipelines|jobs)$/.test(r.path))).toEqual([]);
      expect(await h.out(ids().repository(), 'HAS_ISSUE')).toEqual([]);
      expect(await h.out(ids().repository(), 'HAS_PULL_REQUEST')).toHaveLength(4);
      expect(report.incomplete).toEqual({});
    } finally {
      delete project.disabled;
    }
  });

  it('a 403 on one list is a warning, its kinds are not swept this pass, and the rest syncs', async () => {
    shared.fake().set({ mode: 403, modePaths: /\/pipelines$/ });
    try {
      const h = await harness();
      const report = await h.pass('full');
      expect(report.warnings).toEqual([expect.stringMatching(/^acme\/svc-000: GitLab answered 403 to GET .*\/pipelines.*403 Forbidden; what the graph holds of it is kept\.$/)]);
      expect(Object.keys(report.incomplete).sort()).toEqual(['HAS_JOB', 'RAN_ON', 'job', 'pipeline']);
      expect(await h.out(ids().repository(), 'HAS_ISSUE')).toHaveLength(130);
    } finally {
      shared.fake().set({ mode: 'normal', modePaths: undefined });
    }
  });
});

describe('tokens', () => {
  for (const contextTokens of [true, false]) {
    it(`an expired token is refreshed once through OAuthTokenManager (${contextTokens ? 'ctx.freshCredentials, as the slice gives it' : 'the connector\'s own fallback'}), a new secret version, and the sync completes`, async () => {
      const h = await startGitLabSyncHarness({ existingFake: shared.fake(), clock: shared.clock(), config: { projects: [PROJECT] }, contextTokens });
          await h.pass('full');
      const refreshes = shared.fake().oauth.stats.refreshes;
      const before = h.connection.secretName;
      shared.clock().advance(3 * 3600_000);
      const report = await h.pass('incremental');
      expect(shared.fake().oauth.stats.refreshes).toBe(refreshes + 1);
      const stored = await new ConnectionStore(h.table).get(h.tenantId, h.connection.id, true);
      expect(stored?.secretName).not.toBe(before);
      const secret = await h.secrets.get(h.tenantId, stored!.secretName!);
      expect(shared.fake().oauth.isValid(String(secret?.accessToken))).toBe(true);
      expect(await h.secrets.get(h.tenantId, before!)).toBeUndefined();
      expect(report.waits).toEqual([]);
      // Every request used the new token.
      const used = new Set(shared.fake().apiRequests().slice(-report.requests).map((r) => r.headers.authorization));
      expect([...used]).toEqual([`Bearer ${String(secret?.accessToken)}`]);
    });
  }

  it('a token revoked early (401 with the stored one) is refreshed once and the request retried', async () => {
    const h = await harness();
    await h.pass('full');
    const stored = await new ConnectionStore(h.table).get(h.tenantId, h.connection.id, true);
    const secret = await h.secrets.get(h.tenantId, stored!.secretName!);
    // GitLab revokes the access token (the refresh token still works).
    (shared.fake().oauth.check(String(secret!.accessToken)) as { revoked: boolean }).revoked = true;
    const refreshes = shared.fake().oauth.stats.refreshes;
    const report = await h.pass('incremental');
    expect(shared.fake().oauth.stats.refreshes).toBe(refreshes + 1);
    expect(report.incomplete).toEqual({});
  });
});
