/**
 * Grafana: logs through Loki and metrics through Prometheus/Mimir data sources, queried through
 * Grafana's data-source proxy with a service-account token (`Authorization: Bearer …`).
 *
 * The live check (docs/integrations/grafana.md):
 *   1. `health`: GET {url}/api/health, anonymous. Grafana answers JSON with `database` and
 *      `version`; anything else means the URL is not a Grafana server, and the token is never
 *      sent to it.
 *   2. `datasources`: GET {url}/api/datasources with the token. 401 = token rejected, 403 = the
 *      service account lacks the Viewer role. Reports the Loki and Prometheus/Mimir sources.
 *      Finding none passes with a warning: the token works, and each sync looks again.
 */
import { z } from 'zod';
import type { Connector, VerifyContext } from '../types.ts';
import {
  CheckFailure,
  CheckList,
  baseOf,
  isHtml,
  isObject,
  joinUrl,
  readBody,
  redirectNote,
  rejectedDetail,
  secretTokenSchema,
  serverErrorDetail,
  serviceUrlSchema,
  statusLabel,
  unexpectedStatusDetail,
  upstreamSaid,
  type Upstream,
} from '../http-checks.ts';

export interface GrafanaConfig {
  url: string;
}

export interface GrafanaCredentials {
  token: string;
}

/** A data source OpenTrace can query: Loki (LogQL) or Prometheus/Mimir (PromQL; Mimir is type `prometheus` in Grafana). */
export interface GrafanaDatasource {
  uid: string;
  name: string;
  type: 'loki' | 'prometheus';
}

export const grafanaConfigSchema = z
  .object({ url: serviceUrlSchema('https://your-org.grafana.net') })
  .describe('Grafana instance URL (the address you open Grafana at).');

export const grafanaCredentialsSchema = z
  .strictObject({
    token: secretTokenSchema('token').describe('Service account token with the Viewer role (Administration > Service accounts), usually glsa_…'),
  })
  .describe('Grafana service account token.');

const QUERYABLE_TYPES = new Set(['loki', 'prometheus']);

/** The Loki and Prometheus/Mimir data sources in a GET /api/datasources answer. */
export function queryableDatasources(list: unknown[]): GrafanaDatasource[] {
  const found: GrafanaDatasource[] = [];
  for (const entry of list) {
    if (!isObject(entry) || typeof entry.uid !== 'string' || typeof entry.type !== 'string') continue;
    if (!QUERYABLE_TYPES.has(entry.type)) continue;
    found.push({ uid: entry.uid, name: typeof entry.name === 'string' ? entry.name : entry.uid, type: entry.type as GrafanaDatasource['type'] });
  }
  return found;
}

function countSentence(datasources: GrafanaDatasource[]): string {
  const loki = datasources.filter((d) => d.type === 'loki');
  const prometheus = datasources.filter((d) => d.type === 'prometheus');
  const names = (list: GrafanaDatasource[]) => (list.length ? ` (${list.slice(0, 5).map((d) => d.name).join(', ')}${list.length > 5 ? ', …' : ''})` : '');
  return `${loki.length} Loki data source${loki.length === 1 ? '' : 's'}${names(loki)} and ${prometheus.length} Prometheus/Mimir data source${prometheus.length === 1 ? '' : 's'}${names(prometheus)}`;
}

async function verifyGrafana(ctx: VerifyContext<GrafanaConfig, GrafanaCredentials>) {
  const base = baseOf(ctx.config.url);
  const upstream: Upstream = { product: 'Grafana', origin: base };
  const checks = new CheckList({ upstream, secrets: [ctx.credentials.token], logger: ctx.logger });
  const notGrafana = (why: string) =>
    new CheckFailure(`${base} is not a Grafana server: ${why} (Grafana answers JSON with its version and database status). Check the URL: it should be the address you open Grafana at, such as https://your-org.grafana.net.`);

  const health = await checks.run('health', async () => {
    const url = joinUrl(base, 'api/health');
    const response = await ctx.fetch(url, { headers: { accept: 'application/json' }, signal: checks.signal });
    const body = await readBody(response, 64 * 1024);
    const json = isObject(body.json) ? body.json : undefined;
    const looksLikeGrafana = json !== undefined && (typeof json.database === 'string' || typeof json.version === 'string');
    if (body.status === 200 && looksLikeGrafana) {
      const version = typeof json.version === 'string' && json.version ? json.version : undefined;
      return { detail: `${base} is Grafana${version ? ` ${version}` : ''} (database ${String(json.database ?? 'ok')}).`, value: { version } };
    }
    if (looksLikeGrafana && body.status === 503) {
      throw new CheckFailure(`Grafana at ${base} is running but reports its database as "${String(json.database)}" (503 Service Unavailable). Fix Grafana's database, then try again.`);
    }
    if (body.status === 401 || body.status === 403) {
      throw new CheckFailure(
        `${base}/api/health asked for authentication (${statusLabel(body.status)}), which Grafana itself never does: the URL seems to be behind a login proxy. OpenTrace needs to reach Grafana's HTTP API directly, with the service account token.`,
      );
    }
    if (body.status === 429 || body.status >= 500) throw new CheckFailure(unexpectedStatusDetail(upstream, body, response.headers, '/api/health'));
    if (body.status === 200) throw notGrafana(`/api/health answered ${isHtml(body) ? 'a web page' : 'something other than Grafana\'s health JSON'}${redirectNote(url, response)}`);
    throw notGrafana(`/api/health answered ${statusLabel(body.status)}${redirectNote(url, response)}`);
  });
  if (!health.ok) return checks.result();

  const datasources = await checks.run('datasources', async () => {
    const url = joinUrl(base, 'api/datasources');
    const response = await ctx.fetch(url, { headers: { accept: 'application/json', authorization: `Bearer ${ctx.credentials.token}` }, signal: checks.signal });
    const body = await readBody(response);
    if (body.status === 401) {
      throw new CheckFailure(
        rejectedDetail(upstream, 'the token', 401, body, 'Check that you pasted the whole service account token (glsa_…) and that it has not expired or been revoked in Administration > Service accounts.'),
      );
    }
    if (body.status === 403) {
      throw new CheckFailure(
        `Grafana accepted the token but refused to list data sources (403 Forbidden): the token lacks the Viewer role. Give the service account the Viewer role in Administration > Service accounts (Grafana before 9 needs Admin to list data sources).${upstreamSaid(body)}`,
      );
    }
    if (body.status >= 500) throw new CheckFailure(serverErrorDetail(upstream, body.status, body));
    if (body.status !== 200) throw new CheckFailure(unexpectedStatusDetail(upstream, body, response.headers, '/api/datasources'));
    if (!Array.isArray(body.json)) {
      throw new CheckFailure(`Grafana at ${base} answered /api/datasources with something other than a list of data sources${body.truncated ? ' (the answer was too large)' : ''}. Check that the URL points at Grafana itself, not at a proxy that rewrites its API.`);
    }
    const found = queryableDatasources(body.json);
    if (found.length === 0) {
      return {
        detail: `The token works, but Grafana has no Loki or Prometheus/Mimir data source (it has ${body.json.length} other${body.json.length === 1 ? '' : 's'}): OpenTrace has nothing to query until you add one in Connections > Data sources. It looks again on every sync.`,
        value: found,
      };
    }
    return { detail: `The token can read data sources: found ${countSentence(found)}.`, value: found };
  });
  if (!datasources.ok) return checks.result();

  return checks.result({
    datasources: datasources.value,
    ...(health.value.version ? { grafanaVersion: health.value.version } : {}),
  });
}

export const grafanaConnector: Connector<GrafanaConfig, GrafanaCredentials> = {
  type: 'grafana',
  title: 'Grafana',
  auth: 'api-key',
  provides: ['Logs (Loki)', 'Metrics (Mimir/Prometheus)'],
  configSchema: grafanaConfigSchema,
  credentialsSchema: grafanaCredentialsSchema,
  verify: verifyGrafana,
};
