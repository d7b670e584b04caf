import { index, jsonb, numeric, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { pgLsn } from './pg-lsn-column.ts';

/**
 * The transactional outbox, in Debezium's outbox-event-router shape so the relay's
 * defaults fit both Walnut and apps migrating from Debezium. Only INSERTs are
 * published; rows are deleted after a retention period without being relayed.
 */
export const outbox = pgTable(
  'outbox',
  {
    id: uuid('id').primaryKey(),
    aggregatetype: text('aggregatetype').notNull(),
    aggregateid: text('aggregateid').notNull(),
    type: text('type').notNull(),
    payload: jsonb('payload').notNull(),
    /** W3C traceparent of the span that wrote the row; the relay sends it as a Kafka header. */
    traceparent: text('traceparent'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  // The retention sweep walks the oldest rows first; replay and snapshot page by (created_at, id)
  // with it, which an index on created_at alone serves only by sorting each page's whole
  // created_at group (one large transaction shares one now()).
  (t) => [index('outbox_created_at_id_idx').on(t.createdAt, t.id)],
);

/**
 * The materialized key-value state, written only by the applier. A delete keeps
 * its row as a tombstone (`deletedAt` set, `value` null) so that its version
 * still guards the key: an older set replayed after the delete cannot resurrect it.
 */
export const kvs = pgTable('kvs', {
  key: text('key').primaryKey(),
  value: jsonb('value'),
  /** See eventVersion(): commit LSN and in-transaction sequence, packed. */
  version: numeric('version', { precision: 39, scale: 0 }).notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  deletedAt: timestamp('deleted_at', { withTimezone: true }),
});

/**
 * One row per accepted write, for GET /status. `lsnUpperBound` is a WAL position
 * known to be at or after the request's commit record; once the relay's slot has
 * confirmed past it, Kafka has acked the event. `keys` lists every key the request
 * wrote (one for a single write, several for a batch): the applier marks the request
 * applied once each of them holds this commit's version or a newer one. `key` is the
 * key of a single write, null for a batch.
 */
export const requests = pgTable(
  'requests',
  {
    requestId: uuid('request_id').primaryKey(),
    key: text('key'),
    keys: text('keys').array().notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    lsnUpperBound: pgLsn('lsn_upper_bound'),
    appliedAt: timestamp('applied_at', { withTimezone: true }),
  },
  (t) => [index('requests_created_at_idx').on(t.createdAt)],
);

/**
 * Idempotency-Key records, written in the same transaction as the outbox rows, so
 * a retried write either finds its original request or writes exactly once.
 * `principal` scopes keys per API key (empty when auth is off); `fingerprint` is a
 * hash of the method, path and validated body.
 */
export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    principal: text('principal').notNull(),
    key: text('key').notNull(),
    fingerprint: text('fingerprint').notNull(),
    requestId: uuid('request_id').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.principal, t.key] }), index('idempotency_keys_created_at_idx').on(t.createdAt)],
);
