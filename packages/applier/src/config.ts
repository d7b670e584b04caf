import { KV_TOPIC } from '@walnut/schema';
import { z } from 'zod';

const csv = z.string().transform((s) =>
  s
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean),
);

/** The applier's environment, parsed once at start. Defaults in JSDoc. */
export const applierEnv = z.object({
  DATABASE_URL: z.string().min(1),
  /** Comma-separated `host:port` list. */
  KAFKA_BROKERS: csv.pipe(z.array(z.string().min(1)).min(1)),
  /** Topic of KV events. Default `outbox.event.kv`. */
  KV_TOPIC: z.string().min(1).default(KV_TOPIC),
  /** Where undecodable records go. Default `<KV_TOPIC>.dlq`. */
  APPLIER_DLQ_TOPIC: z.string().min(1).optional(),
  /** Consumer group. Default `walnut-applier`. */
  APPLIER_GROUP_ID: z.string().min(1).default('walnut-applier'),
  /** Partitions of the KV topic when the applier has to create it. Default 6. */
  APPLIER_TOPIC_PARTITIONS: z.coerce.number().int().min(1).default(6),
  /** Pool size for batch transactions. Default 4. */
  APPLIER_PG_POOL_MAX: z.coerce.number().int().min(1).default(4),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
});

export type ApplierEnv = z.infer<typeof applierEnv>;
