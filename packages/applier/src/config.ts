import { csv, int, logLevel } from '@walnut/runtime';
import { KV_TOPIC, pgUrlSetting } from '@walnut/schema';
import * as z from 'zod';

/** The applier's environment, parsed once at start. Defaults in JSDoc. */
export const applierEnv = z
  .object({
    DATABASE_URL: pgUrlSetting,
    /** Comma-separated `host:port` list. */
    KAFKA_BROKERS: csv.pipe(z.array(z.string().min(1)).min(1)),
    /** Topic of KV events. Default `outbox.event.kv`. */
    KV_TOPIC: z.string().min(1).default(KV_TOPIC),
    /** Where undecodable records go. Default `<KV_TOPIC>.dlq`. */
    APPLIER_DLQ_TOPIC: z.string().min(1).optional(),
    /** Consumer group. Default `walnut-applier`. */
    APPLIER_GROUP_ID: z.string().min(1).default('walnut-applier'),
    /** Partitions of the KV topic when the applier has to create it. Default 6. */
    APPLIER_TOPIC_PARTITIONS: int(1).default(6),
    /** Pool size for batch transactions. Default 4. */
    APPLIER_PG_POOL_MAX: int(1).default(4),
    /**
     * Least time between two offset commits. A crash replays what was applied
     * since the last one, which the version guard absorbs. Default 250 ms.
     */
    APPLIER_OFFSET_COMMIT_INTERVAL_MS: int(0).default(250),
    /** Port of /health and /metrics. Default 9102. */
    APPLIER_HTTP_PORT: int(0).max(65535).default(9102),
    /** Address of /health and /metrics. Default 127.0.0.1; compose sets 0.0.0.0. */
    APPLIER_HTTP_HOST: z.string().default('127.0.0.1'),
    /** Outbox rows older than this, once their request is applied, are deleted. Default 604800 (7 days). */
    APPLIER_OUTBOX_RETENTION_SECONDS: int(0).default(7 * 24 * 3600),
    /** Idempotency-Key records older than this are deleted. Default 86400 (24 hours). */
    APPLIER_IDEMPOTENCY_RETENTION_SECONDS: int(0).default(24 * 3600),
    /**
     * Applied `requests` rows (what /status reads) older than this are deleted;
     * /status then answers 404. At least the outbox retention: the outbox sweep
     * reads a row's request to know it was applied. Default 2592000 (30 days).
     */
    APPLIER_REQUEST_RETENTION_SECONDS: int(0).default(30 * 24 * 3600),
    /** Pause between retention sweeps. Default 60000 ms. */
    APPLIER_RETENTION_INTERVAL_MS: int(10).default(60_000),
    /** Rows deleted per statement by the retention sweep. Default 500. */
    APPLIER_RETENTION_BATCH_ROWS: int(1).default(500),
    LOG_LEVEL: logLevel,
  })
  .refine((env) => env.APPLIER_REQUEST_RETENTION_SECONDS >= env.APPLIER_OUTBOX_RETENTION_SECONDS, {
    path: ['APPLIER_REQUEST_RETENTION_SECONDS'],
    message: 'must be at least APPLIER_OUTBOX_RETENTION_SECONDS',
  });

export type ApplierEnv = z.infer<typeof applierEnv>;

/** Settings that may come from the file `<NAME>_FILE` names instead: the URL carries a password. */
export const applierSecrets = ['DATABASE_URL'] as const;
