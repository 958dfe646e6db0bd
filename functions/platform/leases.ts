/**
 * Leases: "one sync per connection", "one token refresher per connection". A lease is one item
 * taken with a conditional write; it expires by itself so a crashed holder cannot block forever.
 * TTL only cleans up: every check compares `expiresAt` with the clock here, because DynamoDB
 * deletes expired items up to days late (and dynalite never does).
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { TableRef } from './dynamo.ts';
import { ttlEpochSeconds } from './dynamo.ts';
import { keys } from './keys.ts';

export interface Lease {
  name: string;
  owner: string;
  expiresAt: string;
}

export class LeaseStore {
  readonly #table: TableRef;
  readonly #now: () => Date;

  constructor(table: TableRef, now: () => Date = () => new Date()) {
    this.#table = table;
    this.#now = now;
  }

  /** Takes the lease (or extends it when `owner` already holds it). False when someone else holds an unexpired one. */
  async acquire(tenantId: string, name: string, owner: string, durationMs: number): Promise<boolean> {
    const now = this.#now();
    const expiresAt = new Date(now.getTime() + durationMs);
    try {
      await this.#table.client.send(
        new PutCommand({
          TableName: this.#table.tableName,
          Item: { ...keys.lease(tenantId, name), kind: 'lease', name, owner, expiresAt: expiresAt.toISOString(), ttl: ttlEpochSeconds(expiresAt) + 86_400 },
          ConditionExpression: 'attribute_not_exists(PK) OR expiresAt <= :now OR #owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':now': now.toISOString(), ':owner': owner },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /**
   * Takes the lease or extends it, but never shortens it: when several workers of one owner
   * renew it concurrently (the partitions of one sync run), the longest renewal stays. True when
   * the owner holds it afterwards.
   */
  async extend(tenantId: string, name: string, owner: string, durationMs: number, options: { skipIfRemainingMs?: number } = {}): Promise<boolean> {
    const now = this.#now();
    const expiresAt = new Date(now.getTime() + durationMs);
    if (options.skipIfRemainingMs !== undefined) {
      // A read instead of a write when the owner's lease still lasts long enough (a fast run's many renewals).
      const held = await this.holder(tenantId, name);
      if (held?.owner === owner && Date.parse(held.expiresAt) >= now.getTime() + options.skipIfRemainingMs) return true;
    }
    try {
      await this.#table.client.send(
        new PutCommand({
          TableName: this.#table.tableName,
          Item: { ...keys.lease(tenantId, name), kind: 'lease', name, owner, expiresAt: expiresAt.toISOString(), ttl: ttlEpochSeconds(expiresAt) + 86_400 },
          ConditionExpression: 'attribute_not_exists(PK) OR expiresAt <= :now OR (#owner = :owner AND expiresAt <= :expires)',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':now': now.toISOString(), ':owner': owner, ':expires': expiresAt.toISOString() },
        }),
      );
      return true;
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
    return (await this.holder(tenantId, name))?.owner === owner;
  }

  /** Releases only a lease this owner holds; releasing someone else's (after ours expired) is a no-op. */
  async release(tenantId: string, name: string, owner: string): Promise<void> {
    try {
      await this.#table.client.send(
        new DeleteCommand({
          TableName: this.#table.tableName,
          Key: keys.lease(tenantId, name),
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':owner': owner },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  /** The current holder, or undefined when the lease is free or expired. */
  async holder(tenantId: string, name: string): Promise<Lease | undefined> {
    const { Item } = await this.#table.client.send(
      new GetCommand({ TableName: this.#table.tableName, Key: keys.lease(tenantId, name), ConsistentRead: true }),
    );
    if (!Item || String(Item.expiresAt) <= this.#now().toISOString()) return undefined;
    return { name: String(Item.name), owner: String(Item.owner), expiresAt: String(Item.expiresAt) };
  }
}
