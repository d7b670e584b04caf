import { LSN_TEXT } from './lsn.ts';
import * as z from 'zod';

/** Kafka header names the relay sets on every record; the applier reads them back. */
export const RELAY_HEADERS = {
  eventId: 'id',
  commitLsn: 'walnut-commit-lsn',
  seq: 'walnut-seq',
  xid: 'walnut-xid',
  commitTime: 'walnut-commit-time',
  /** On records re-published by `walnut-relay replay` or `snapshot`: which run sent them. */
  replay: 'walnut-replay',
} as const;

/** The replication slot the relay streams from and the API reads "published" from, unless configured. */
export const DEFAULT_SLOT = 'walnut';

/** The outbox `aggregatetype` and Kafka topic of Walnut's KV events. */
export const KV_AGGREGATE_TYPE = 'kv';
export const KV_TOPIC = `outbox.event.${KV_AGGREGATE_TYPE}`;

/**
 * Version of the KV event's published JSON Schema, generated from `kvEvent` by
 * `pnpm gen:events`. An additive change (a new optional field) keeps it: the schema
 * allows unknown fields, as `kvEvent` does. A change that a consumer of this version
 * would reject or misread (a field removed, renamed, retyped or made required, a
 * new `op`) bumps it, and the new file goes beside the old one.
 */
export const KV_EVENT_SCHEMA_VERSION = 1;
/** Where that JSON Schema is committed, relative to the repository root. */
export const KV_EVENT_SCHEMA_PATH = `docs/events/kv-event.v${KV_EVENT_SCHEMA_VERSION}.schema.json`;

/** Keys are 1–512 characters of this set: one URL path segment as-is, and characters are bytes. */
export const KEY_MAX_LENGTH = 512;
export const KEY_CHARS = /^[A-Za-z0-9._:~-]*$/;
export const KEY_CHARS_TEXT = 'letters, digits and . _ : ~ -';

// Events carry what the API accepted; the character rule is the API's to enforce on input.
export const kvKey = z.string().min(1).max(KEY_MAX_LENGTH);

const requestId = z
  .uuid()
  .describe('The API request that wrote the event (GET /status/{request_id}); shared by a batch');

// Registered under an id so the JSON Schema names its recursive definition JsonValue, not __schema0.
// It has to be z.json() itself: the recursion refers to it, not to a copy that .meta() would make.
const jsonValue = z.json().register(z.globalRegistry, { id: 'JsonValue', description: 'Any JSON value' });

/** Outbox payload of a KV write; the relay forwards it to Kafka byte for byte. */
export const kvSetEvent = z
  .object({
    op: z.literal('set'),
    key: kvKey.describe('The key written'),
    value: jsonValue,
    request_id: requestId,
  })
  .describe('The key now holds `value`');
export type KvSetEvent = z.infer<typeof kvSetEvent>;

/**
 * Outbox payload of a KV delete. The applier keeps the key's row as a tombstone
 * carrying this event's version, so an older set arriving later cannot resurrect it.
 */
export const kvDeleteEvent = z
  .object({
    op: z.literal('delete'),
    key: kvKey.describe('The key deleted'),
    request_id: requestId,
  })
  .describe('The key no longer holds a value');
export type KvDeleteEvent = z.infer<typeof kvDeleteEvent>;

export const kvEvent = z.discriminatedUnion('op', [kvSetEvent, kvDeleteEvent]);
export type KvEvent = z.infer<typeof kvEvent>;

/** The headers of a relayed record that the applier needs to order and apply it. */
export const relayHeaders = z.object({
  [RELAY_HEADERS.commitLsn]: z.string().regex(LSN_TEXT),
  [RELAY_HEADERS.seq]: z.string().regex(/^\d+$/).transform(Number),
  // Optional, and ignored when malformed: without it the applier only skips
  // its wait for the writing transaction to become visible.
  [RELAY_HEADERS.xid]: z
    .string()
    .regex(/^\d{1,10}$/)
    .transform(Number)
    .optional()
    .catch(undefined),
});

/**
 * The channel on which the applier NOTIFYs request ids it marked applied, in
 * its batch transaction (so at commit). Payload: comma-separated uuids, at most
 * APPLIED_NOTIFY_CHUNK per notification to stay under Postgres' 8000-byte limit.
 */
export const APPLIED_CHANNEL = 'walnut_applied';
export const APPLIED_NOTIFY_CHUNK = 200;
