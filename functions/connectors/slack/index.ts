/**
 * Slack: notifications and alerts in the channel(s) the user picked. OAuth v2 bot token
 * (functions/oauth/, descriptor in ./oauth.ts); the chosen channels live on the connection
 * (`channels`, changeable with PATCH). On connect the guide's test message is posted to each of
 * them and the results recorded on the connection (`testMessages`).
 *
 * The live check, with the stored bot token (refreshed first when rotation is on and it is about
 * to expire):
 *   1. `workspace`: auth.test: the token works, for which workspace and bot user.
 *   2. `channels`:  every chosen channel exists (ids through conversations.info, names through
 *                   conversations.list), is not archived, and the app can post there: a member,
 *                   or a public channel (chat:write.public). A private channel needs /invite.
 */
import { z } from 'zod';
import type { Connector, VerifyContext } from '../types.ts';
import { CheckFailure, CheckList, secretsOf } from '../http-checks.ts';
import { oauthCredentialsSchema, type OAuthCredentials } from '../../oauth/credentials.ts';
import { describeSlackError, resolveChannels, slackClient, slackUpstream, type SlackChannel } from './api.ts';

export const MAX_SLACK_CHANNELS = 20;

export interface SlackConfig {
  channels?: string[];
  testMessages?: Record<string, unknown>[];
}

export const slackChannelRef = z
  .string()
  .trim()
  .regex(/^(#?[a-z0-9][a-z0-9._-]{0,79}|[CGD][A-Z0-9]{6,20})$/, 'a channel is its id (C0123ABCD) or its name (#alerts)');

export const slackConfigSchema = z
  .object({
    channels: z
      .array(slackChannelRef)
      .max(MAX_SLACK_CHANNELS)
      .optional()
      .describe('The channels OpenTrace posts to: ids (C0123ABCD) or names (#alerts); stored as ids. Private channels need the app invited (/invite @OpenTrace).'),
    testMessages: z
      .array(z.record(z.string(), z.unknown()))
      .optional()
      .meta({ readOnly: true, description: 'The test message posted to each channel on connect: { channel, ok, ts | error, at }.' }),
  })
  .describe('The Slack channels to post notifications to. Tokens are never part of the config.');

async function verifySlack(ctx: VerifyContext<SlackConfig, OAuthCredentials>) {
  const upstream = slackUpstream();
  const checks = new CheckList({ upstream, secrets: secretsOf(ctx.credentials), logger: ctx.logger });
  const client = slackClient(ctx.credentials.accessToken, ctx.fetch);

  const workspace = await checks.run('workspace', async () => {
    let answer: Awaited<ReturnType<typeof client.auth.test>>;
    try {
      answer = await client.auth.test();
    } catch (error) {
      throw new CheckFailure(describeSlackError(error, 'auth.test'));
    }
    const team = { id: answer.team_id ?? '', name: answer.team ?? answer.team_id ?? 'the workspace', ...(answer.url ? { url: answer.url } : {}) };
    return { detail: `The token works: the OpenTrace app is installed in Slack workspace ${team.name}${answer.user ? ` as @${answer.user}` : ''}.`, value: { team, botUserId: answer.user_id } };
  });
  if (!workspace.ok) return checks.result();

  const refs = ctx.config.channels ?? [];
  const channels = await checks.run('channels', async () => {
    if (refs.length === 0) {
      throw new CheckFailure('No channel is chosen: pick one on Slack\'s consent screen when connecting, or set config.channels (e.g. ["#alerts"]) with PATCH, then test the connection again.');
    }
    let resolved: Awaited<ReturnType<typeof resolveChannels>>;
    try {
      resolved = await resolveChannels(client, refs);
    } catch (error) {
      throw new CheckFailure(describeSlackError(error, 'the channel lookup'));
    }
    const problems: string[] = [];
    const ordered: SlackChannel[] = [];
    for (const ref of refs) {
      const channel = resolved.found.get(ref);
      if (!channel) {
        problems.push(`${ref} was not found (a private channel is only visible once the app is invited: /invite @OpenTrace)`);
        continue;
      }
      if (channel.isArchived) problems.push(`#${channel.name} is archived`);
      else if (channel.isPrivate && !channel.isMember) problems.push(`#${channel.name} is private and the app is not in it: /invite @OpenTrace there`);
      ordered.push(channel);
    }
    if (problems.length > 0) throw new CheckFailure(`OpenTrace cannot post to every chosen channel: ${problems.join('; ')}.`);
    const unique = [...new Map(ordered.map((channel) => [channel.id, channel])).values()];
    return { detail: `OpenTrace can post to ${unique.map((channel) => `#${channel.name}`).join(', ')}.`, value: unique };
  });

  const discovered: Record<string, unknown> = { team: workspace.value.team, ...(workspace.value.botUserId ? { botUserId: workspace.value.botUserId } : {}) };
  if (channels.ok) {
    discovered.channels = channels.value.map((channel) => channel.id);
    discovered.channelDetails = channels.value.map((channel) => ({ id: channel.id, name: channel.name, private: channel.isPrivate }));
  }
  return checks.result(discovered);
}

export const slackConnector: Connector<SlackConfig, OAuthCredentials> = {
  type: 'slack',
  title: 'Slack',
  auth: 'oauth',
  provides: ['Notifications and alerts', 'Test message on connect', 'Investigation findings', 'Shared insights'],
  configSchema: slackConfigSchema,
  credentialsSchema: oauthCredentialsSchema,
  verify: verifySlack,
};
