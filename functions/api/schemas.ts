/**
 * Request schemas of the HTTP API (zod). The handlers validate with them and
 * GET /v1/openapi.json is generated from them, so the contract and the code cannot drift.
 */
import { z } from 'zod';

const limit = z.coerce.number().int().min(1).max(500).optional().describe('Page size (default 50, max 500)');
const nextToken = z.string().max(4096).optional().describe('Opaque token from the previous page');

export const listQuery = z.object({ limit, nextToken }).strict();

export const connectionIdParams = z.object({ id: z.string().regex(/^conn_[0-9a-z]{26}$/, 'not a connection id (conn_…)') });
export const integrationTypeParams = z.object({ type: z.string().min(1).max(40) });

export const listConnectionsQuery = z.object({ type: z.string().max(40).optional(), limit, nextToken }).strict();

const connectionName = z.string().trim().min(1).max(100);

export const createConnectionBody = z
  .object({
    type: z.string().min(1).max(40).describe('Integration type, see GET /v1/integrations'),
    name: connectionName.optional(),
    config: z.record(z.string(), z.unknown()).describe("The integration's config, see its configSchema"),
    credentials: z.record(z.string(), z.unknown()).default({}).describe('Secrets; stored in Secrets Manager only, never returned'),
  })
  .strict();

export const createConnectionQuery = z.object({ verify: z.enum(['true', 'false']).optional().describe('false skips the live check') }).strict();

export const patchConnectionBody = z
  .object({
    name: connectionName.optional(),
    config: z.record(z.string(), z.unknown()).optional().describe('Merged over the current config, then validated whole'),
    credentials: z.record(z.string(), z.unknown()).optional().describe('Replaces the current credentials'),
    paused: z.boolean().optional(),
  })
  .strict()
  .refine((body) => Object.keys(body).length > 0, { message: 'send at least one of name, config, credentials, paused' });

export const graphNodesQuery = z
  .object({
    type: z.string().regex(/^[a-z][a-z0-9_]{0,39}$/).optional(),
    q: z.string().min(1).max(100).optional().describe('Case-insensitive name prefix'),
    source: z.string().regex(/^conn_[0-9a-z]{26}$/).optional().describe('Only nodes this connection contributed'),
    limit,
    nextToken,
  })
  .strict();

export const nodeIdParams = z.object({ nodeId: z.string().min(1).max(512) });

export const edgesQuery = z
  .object({
    direction: z.enum(['out', 'in', 'both']).default('out'),
    type: z.string().regex(/^[A-Z][A-Z0-9_]{0,39}$/).optional(),
  })
  .strict();

export const traverseBody = z
  .object({
    from: z.string().min(1).max(512),
    direction: z.enum(['out', 'in', 'both']).default('out'),
    edgeTypes: z.array(z.string().regex(/^[A-Z][A-Z0-9_]{0,39}$/)).max(20).optional(),
    depth: z.number().int().min(1).max(4),
    limit: z.number().int().min(1).max(1000).optional(),
  })
  .strict();

export const syncIdParams = z.object({ syncId: z.string().regex(/^sync_[0-9a-z]{26}$/, 'not a sync id (sync_…)') });

export const startSyncBody = z
  .object({ mode: z.enum(['incremental', 'full']).optional().describe('Default: incremental, or full when one is due') })
  .strict();

// --- OAuth connect (functions/api/oauth.ts) ---------------------------------------------------

export const authorizeBody = z
  .object({
    returnUrl: z
      .string()
      .max(2048)
      .optional()
      .describe('Where the callback sends the browser back to (status=connected&connectionId=… or status=error&error=…); must be on an allowed origin (OPENTRACE_ALLOWED_RETURN_ORIGINS). Without it the callback answers 200 { connection }.'),
    baseUrl: z
      .url({ protocol: /^https?$/, error: 'baseUrl must be an http(s) URL such as https://gitlab.example.com' })
      .max(2048)
      .optional()
      .describe('gitlab only: a self-managed instance registered first with PUT /v1/integrations/gitlab/instances (default GitLab.com)'),
    channels: z
      .array(z.string().trim().regex(/^(#?[a-z0-9][a-z0-9._-]{0,79}|[CGD][A-Z0-9]{6,20})$/, 'a channel is its id (C0123ABCD) or its name (#alerts)'))
      .min(1)
      .max(20)
      .optional()
      .describe('slack only: channels to post to, besides the one picked on Slack\'s consent screen'),
    name: connectionName.optional().describe('Name of the connection to create (default from the account, e.g. "GitHub acme")'),
  })
  .strict();

/** Providers add their own parameters (GitHub: installation_id, setup_action): unknown ones are kept, not refused. */
export const oauthCallbackQuery = z.looseObject({
  code: z.string().max(2048).optional(),
  state: z.string().max(512).optional(),
  error: z.string().max(256).optional(),
  error_description: z.string().max(2048).optional(),
  installation_id: z.string().max(32).optional(),
  setup_action: z.string().max(32).optional(),
});

export const oauthInstanceBody = z
  .object({
    baseUrl: z
      .url({ protocol: /^https?$/, error: 'baseUrl must be an http(s) URL such as https://gitlab.example.com' })
      .max(2048)
      .refine((value) => !/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(value), 'baseUrl must not contain a user name or password')
      .refine((value) => !/[?#]/.test(value), 'baseUrl must not have a query string or fragment')
      .describe('The instance, as you open it in a browser (https://gitlab.example.com, with its relative URL root if any)'),
    clientId: z.string().trim().min(1).max(255).describe('The Application ID of the OAuth application created on the instance'),
    clientSecret: z.string().trim().min(1).max(1024).regex(/^\S+$/, 'clientSecret must not contain spaces').describe('Its secret; stored in Secrets Manager only, never returned'),
  })
  .strict();
