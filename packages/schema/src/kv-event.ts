import { z } from 'zod';

/** Kafka header names the relay sets on every record; the applier reads them back. */
export const RELAY_HEADERS = {
  eventId: 'id',
  commitLsn: 'walnut-commit-lsn',
  seq: 'walnut-seq',
  xid: 'walnut-xid',
  commitTime: 'walnut-commit-time',
} as const;

/** The outbox `aggregatetype` and Kafka topic of Walnut's KV events. */
export const KV_AGGREGATE_TYPE = 'kv';
export const KV_TOPIC = `outbox.event.${KV_AGGREGATE_TYPE}`;

export const kvKey = z.string().min(1).max(512);

/** Outbox payload of a KV write; the relay forwards it to Kafka byte for byte. */
export const kvSetEvent = z.object({
  op: z.literal('set'),
  key: kvKey,
  value: z.json(),
  request_id: z.uuid(),
});
export type KvSetEvent = z.infer<typeof kvSetEvent>;

export const kvEvent = z.discriminatedUnion('op', [kvSetEvent]);
export type KvEvent = z.infer<typeof kvEvent>;

/** The headers of a relayed record that the applier needs to order it. */
export const relayHeaders = z.object({
  [RELAY_HEADERS.commitLsn]: z.string().regex(/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i),
  [RELAY_HEADERS.seq]: z.string().regex(/^\d+$/).transform(Number),
});
