/**
 * The connection lifecycle every integration shares: connect (validate, verify live, then store),
 * read, change (verify first; a failed check keeps the old values), test, disconnect.
 * Nothing is stored when any step before the final write fails, and credentials only ever go to
 * the secret store.
 */
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import { findConnector, allConnectors } from '#connectors/registry.ts';
import type { Connector, VerifyResult } from '#connectors/types.ts';
import { ConnectionStore, type Connection } from '#platform/connections.ts';
import { NotFoundError, UpstreamRejectedError, ValidationError } from '#platform/errors.ts';
import { fieldErrors } from '#platform/http.ts';
import { newId } from '#platform/ids.ts';
import { logger } from '#platform/observability.ts';
import { OutboundBlockedError, safeFetch } from '#platform/outbound.ts';
import type { Runtime } from '#platform/runtime.ts';
import { TenantStore } from '#platform/tenants.ts';
import { GraphStore } from '#graph/store.ts';
import { OAuthTokenManager, ReconnectNeededError, TokenRefreshBusyError, TokenRefreshFailedError } from '../oauth/tokens.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyConnector = Connector<any, any>;

/** What the API shows of a connection: never the secret's name, never credentials. */
export interface ConnectionView {
  id: string;
  type: string;
  name: string;
  status: Connection['status'];
  paused: boolean;
  config: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
  lastSync?: Connection['lastSync'];
  lastError?: string;
  stats?: { nodes: number; edges: number };
}

export function toView(connection: Connection, stats?: { nodes: number; edges: number }): ConnectionView {
  return {
    id: connection.id,
    type: connection.type,
    name: connection.name,
    status: connection.status,
    paused: connection.paused,
    config: connection.config,
    createdAt: connection.createdAt,
    updatedAt: connection.updatedAt,
    ...(connection.lastSync ? { lastSync: connection.lastSync } : {}),
    ...(connection.lastError ? { lastError: connection.lastError } : {}),
    ...(stats ? { stats } : {}),
  };
}

export function connectorFor(type: string, path = 'body.type'): AnyConnector {
  const connector = findConnector(type);
  if (!connector) {
    const known = allConnectors().map((c) => c.type).join(', ');
    throw new ValidationError(`Unknown integration type "${type}".`, [{ path, message: `must be one of: ${known}` }]);
  }
  return connector;
}

function parseConfig<T>(schema: z.ZodType<T>, value: unknown, path: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new ValidationError(`The ${path.split('.').pop()} are invalid for this integration.`, fieldErrors(result.error.issues, path));
  return result.data;
}

/** Config fields the connector's configSchema marks `readOnly` (GitLab's baseUrl): set on connect, never by PATCH. */
function readOnlyConfigKeys(connector: AnyConnector): string[] {
  const schema = z.toJSONSchema(connector.configSchema, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, { readOnly?: unknown }> };
  return Object.entries(schema.properties ?? {})
    .filter(([, property]) => property?.readOnly === true)
    .map(([key]) => key);
}

/** Validates both at once, so one 400 lists every bad field. */
function parseConfigAndCredentials(connector: AnyConnector, config: unknown, credentials: unknown) {
  const parsedConfig = connector.configSchema.safeParse(config);
  const parsedCredentials = connector.credentialsSchema.safeParse(credentials);
  if (!parsedConfig.success || !parsedCredentials.success) {
    throw new ValidationError(`The config or credentials are invalid for ${connector.title}.`, [
      ...(parsedConfig.success ? [] : fieldErrors(parsedConfig.error.issues, 'body.config')),
      ...(parsedCredentials.success ? [] : fieldErrors(parsedCredentials.error.issues, 'body.credentials')),
    ]);
  }
  return { config: parsedConfig.data as Record<string, unknown>, credentials: parsedCredentials.data as Record<string, unknown> };
}

export class ConnectionLifecycle {
  readonly #runtime: Runtime;
  readonly #connections: ConnectionStore;
  readonly #tenants: TenantStore;
  readonly #graph: GraphStore;

  constructor(runtime: Runtime) {
    this.#runtime = runtime;
    this.#connections = new ConnectionStore(runtime.table);
    this.#tenants = new TenantStore(runtime.table);
    this.#graph = new GraphStore(runtime.table);
  }

  /** Runs the connector's live check; a URL refused by outbound safety is bad input (400), anything else upstream is a 422. */
  async #verify(tenantId: string, connector: AnyConnector, config: unknown, credentials: unknown): Promise<VerifyResult> {
    const tenant = await this.#tenants.ensureTenant(tenantId);
    try {
      return await connector.verify({ tenantId, externalId: tenant.externalId, config, credentials, fetch: (url, init) => safeFetch(url, init), logger });
    } catch (error) {
      if (error instanceof OutboundBlockedError) throw new ValidationError(`The URL is not allowed: ${error.message}.`, [{ path: 'body.config.url', message: error.message }]);
      throw error;
    }
  }

  #rejectUnlessOk(connector: AnyConnector, result: VerifyResult): void {
    if (result.ok) return;
    const failed = result.checks.filter((check) => !check.ok);
    throw new UpstreamRejectedError(
      failed[0]?.detail ?? `${connector.title} did not pass the connection check.`,
      failed.map((check) => ({ path: `checks.${check.name}`, message: check.detail })),
    );
  }

  async create(
    tenantId: string,
    input: { type: string; name?: string; config: unknown; credentials: unknown },
    options: { verify: boolean },
  ): Promise<ConnectionView> {
    const connector = connectorFor(input.type);
    if (connector.auth === 'oauth') {
      throw new ValidationError(`${connector.title} connects through OAuth: POST /v1/integrations/${connector.type}/authorize.`, [
        { path: 'body.type', message: 'OAuth integrations are connected through their authorize route' },
      ]);
    }
    const { config, credentials } = parseConfigAndCredentials(connector, input.config, input.credentials);
    let discovered: Record<string, unknown> = {};
    if (options.verify) {
      const result = await this.#verify(tenantId, connector, config, credentials);
      this.#rejectUnlessOk(connector, result);
      discovered = result.discovered ?? {};
    }

    const now = this.#runtime.now().toISOString();
    const id = newId('conn');
    const secretName = Object.keys(credentials).length > 0 ? `${id}-v1` : undefined;
    if (secretName) await this.#runtime.secrets.put(tenantId, secretName, credentials);
    try {
      const connection = await this.#connections.create({
        id,
        tenantId,
        type: connector.type,
        name: input.name ?? `${connector.title} ${id.slice(-6)}`,
        status: 'connected',
        paused: false,
        config: { ...config, ...discovered },
        ...(secretName ? { secretName } : {}),
        createdAt: now,
        updatedAt: now,
        nextSyncAt: now,
      });
      logger.info('connection created', { connectionId: id, type: connector.type, verified: options.verify });
      return toView(connection);
    } catch (error) {
      // Nothing half-stored: the secret goes if its record could not be written.
      if (secretName) await this.#runtime.secrets.delete(tenantId, secretName);
      throw error;
    }
  }

  /**
   * Connect through OAuth (the callback in functions/oauth/flow.ts). The code was exchanged, so
   * the tokens exist: the connection is stored whatever the live check says, with its status
   * following the check (a failed check becomes its lastError, fixable without another OAuth
   * round trip). `afterVerify` runs once after a passing check (Slack posts its test message);
   * a `failure` it reports makes the connection `error` too. The tokens go to the secret store
   * only; nothing is stored if the record cannot be written.
   */
  async createFromOAuth(
    tenantId: string,
    input: { type: string; name?: string; config: Record<string, unknown>; credentials: Record<string, unknown> },
    hooks: {
      afterVerify?: (verified: { config: Record<string, unknown>; credentials: Record<string, unknown> }) => Promise<{ config?: Record<string, unknown>; failure?: string }>;
      defaultName?: (config: Record<string, unknown>) => string;
    } = {},
  ): Promise<{ connection: ConnectionView; checks: VerifyResult['checks'] }> {
    const connector = connectorFor(input.type);
    if (connector.auth !== 'oauth') throw new ValidationError(`${connector.title} does not connect through OAuth.`, [{ path: 'type', message: 'not an OAuth integration' }]);
    const { config, credentials } = parseConfigAndCredentials(connector, input.config, input.credentials);
    let result: VerifyResult;
    try {
      result = await this.#verify(tenantId, connector, config, credentials);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      result = { ok: false, checks: [{ name: 'url', ok: false, detail: error.message }] };
    }
    let merged: Record<string, unknown> = { ...config, ...(result.discovered ?? {}) };
    let failure = result.checks.find((check) => !check.ok)?.detail ?? (result.ok ? undefined : `${connector.title} did not pass the connection check.`);
    if (!failure && hooks.afterVerify) {
      const after = await hooks.afterVerify({ config: merged, credentials });
      merged = { ...merged, ...(after.config ?? {}) };
      failure = after.failure;
    }

    const now = this.#runtime.now().toISOString();
    const id = newId('conn');
    const secretName = `${id}-v1`;
    await this.#runtime.secrets.put(tenantId, secretName, credentials);
    try {
      const connection = await this.#connections.create({
        id,
        tenantId,
        type: connector.type,
        name: input.name ?? hooks.defaultName?.(merged) ?? `${connector.title} ${id.slice(-6)}`,
        status: failure ? 'error' : 'connected',
        paused: false,
        config: merged,
        secretName,
        ...(failure ? { lastError: failure } : {}),
        createdAt: now,
        updatedAt: now,
        nextSyncAt: now,
      });
      logger.info('connection created through oauth', { connectionId: id, type: connector.type, ok: !failure });
      return { connection: toView(connection), checks: result.checks };
    } catch (error) {
      await this.#runtime.secrets.delete(tenantId, secretName);
      throw error;
    }
  }

  async #mustGet(tenantId: string, connectionId: string): Promise<Connection> {
    const connection = await this.#connections.get(tenantId, connectionId);
    if (!connection || connection.status === 'disconnecting') throw new NotFoundError(`Connection ${connectionId} does not exist.`);
    return connection;
  }

  async get(tenantId: string, connectionId: string): Promise<ConnectionView> {
    const connection = await this.#mustGet(tenantId, connectionId);
    return toView(connection, await this.#graph.connectionStats(tenantId, connectionId));
  }

  async list(tenantId: string, query: { type?: string; limit?: number; nextToken?: string }) {
    const page = await this.#connections.list(tenantId, query);
    return { items: page.items.filter((c) => c.status !== 'disconnecting').map((c) => toView(c)), nextToken: page.nextToken ?? null };
  }

  async #credentials(connection: Connection): Promise<Record<string, unknown>> {
    // OAuth tokens are refreshed first when about to expire (one refresher per connection).
    if (connectorFor(connection.type, 'type').auth === 'oauth') return new OAuthTokenManager(this.#runtime).freshCredentials(connection);
    if (!connection.secretName) return {};
    return (await this.#runtime.secrets.get(connection.tenantId, connection.secretName)) ?? {};
  }

  /**
   * PATCH. Changed config or credentials are verified before anything is written; new
   * credentials go to a new secret version that the record then points at, so a failure at any
   * step leaves the old, working values in place.
   */
  async update(
    tenantId: string,
    connectionId: string,
    patch: { name?: string; config?: Record<string, unknown>; credentials?: Record<string, unknown>; paused?: boolean },
  ): Promise<ConnectionView> {
    const current = await this.#mustGet(tenantId, connectionId);
    const connector = connectorFor(current.type, 'type');
    let config = current.config;
    let newSecretName: string | undefined;
    if (patch.config || patch.credentials) {
      if (connector.auth === 'oauth' && patch.credentials) {
        throw new ValidationError('OAuth credentials cannot be set by hand; reconnect through the authorize route.', [{ path: 'body.credentials', message: 'not allowed for OAuth integrations' }]);
      }
      const readOnly = readOnlyConfigKeys(connector).filter((key) => patch.config && key in patch.config && !isDeepStrictEqual(patch.config[key], current.config[key]));
      if (readOnly.length > 0) {
        throw new ValidationError(`${readOnly.map((key) => `config.${key}`).join(', ')} cannot be changed: connect a new ${connector.title} connection instead.`, readOnly.map((key) => ({ path: `body.config.${key}`, message: 'read-only' })));
      }
      config = parseConfig(connector.configSchema, { ...current.config, ...(patch.config ?? {}) }, 'body.config') as Record<string, unknown>;
      const credentials = patch.credentials
        ? (parseConfig(connector.credentialsSchema, patch.credentials, 'body.credentials') as Record<string, unknown>)
        : await this.#credentials(current);
      const result = await this.#verify(tenantId, connector, config, credentials);
      this.#rejectUnlessOk(connector, result);
      config = { ...config, ...(result.discovered ?? {}) };
      if (patch.credentials) {
        const version = Number(/-v(\d+)$/.exec(current.secretName ?? '')?.[1] ?? 0) + 1;
        newSecretName = `${connectionId}-v${version}`;
        await this.#runtime.secrets.put(tenantId, newSecretName, credentials);
      }
    }
    const now = this.#runtime.now().toISOString();
    let replacedSecret: string | undefined;
    const updated = await this.#connections.update(tenantId, connectionId, (connection) => {
      replacedSecret = newSecretName ? connection.secretName : undefined;
      const next: Connection = { ...connection, config, updatedAt: now };
      if (patch.name !== undefined) next.name = patch.name;
      if (patch.paused !== undefined) {
        next.paused = patch.paused;
        if (!patch.paused && !next.nextSyncAt) next.nextSyncAt = now;
      }
      if (newSecretName) next.secretName = newSecretName;
      if (patch.config || patch.credentials) {
        next.status = 'connected';
        delete next.lastError;
      }
      return next;
    });
    if (!updated) {
      if (newSecretName) await this.#runtime.secrets.delete(tenantId, newSecretName);
      throw new NotFoundError(`Connection ${connectionId} does not exist.`);
    }
    if (replacedSecret) await this.#runtime.secrets.delete(tenantId, replacedSecret);
    return toView(updated);
  }

  /** POST …/test: the live check with the stored values; the connection's status follows the answer. */
  async test(tenantId: string, connectionId: string): Promise<{ ok: boolean; checks: VerifyResult['checks'] }> {
    const current = await this.#mustGet(tenantId, connectionId);
    const connector = connectorFor(current.type, 'type');
    let result: VerifyResult;
    try {
      result = await this.#verify(tenantId, connector, current.config, await this.#credentials(current));
    } catch (error) {
      if (error instanceof ReconnectNeededError || error instanceof TokenRefreshFailedError || error instanceof TokenRefreshBusyError) {
        result = { ok: false, checks: [{ name: 'token', ok: false, detail: error.message }] };
      } else {
        if (!(error instanceof ValidationError)) throw error;
        result = { ok: false, checks: [{ name: 'url', ok: false, detail: error.message }] };
      }
    }
    const firstFailure = result.checks.find((check) => !check.ok)?.detail;
    await this.#connections.update(tenantId, connectionId, (connection) => {
      if (result.ok && connection.status === 'error') {
        delete connection.lastError;
        return { ...connection, status: 'connected' };
      }
      if (!result.ok) return { ...connection, status: 'error', lastError: firstFailure ?? 'connection check failed' };
      return undefined;
    });
    return { ok: result.ok, checks: result.checks };
  }
}
