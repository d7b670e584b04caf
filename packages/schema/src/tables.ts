import { index, jsonb, numeric, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { pgLsn } from './pg-lsn-column.ts';

/**
 * The transactional outbox, in Debezium's outbox-event-router shape so the relay's
 * defaults fit both Walnut and apps migrating from Debezium. Only INSERTs are
 * published; rows may be deleted later without being relayed.
 */
export const outbox = pgTable('outbox', {
  id: uuid('id').primaryKey(),
  aggregatetype: text('aggregatetype').notNull(),
  aggregateid: text('aggregateid').notNull(),
  type: text('type').notNull(),
  payload: jsonb('payload').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

/** The materialized key-value state, written only by the applier. */
export const kvs = pgTable('kvs', {
  key: text('key').primaryKey(),
  value: jsonb('value'),
  /** See eventVersion(): commit LSN and in-transaction sequence, packed. */
  version: numeric('version', { precision: 39, scale: 0 }).notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

/**
 * One row per accepted write, for GET /status. `lsnUpperBound` is a WAL position
 * known to be at or after the request's commit record; once the relay's slot has
 * confirmed past it, Kafka has acked the event.
 */
export const requests = pgTable(
  'requests',
  {
    requestId: uuid('request_id').primaryKey(),
    key: text('key').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    lsnUpperBound: pgLsn('lsn_upper_bound'),
    appliedAt: timestamp('applied_at', { withTimezone: true }),
  },
  (t) => [index('requests_created_at_idx').on(t.createdAt)],
);
