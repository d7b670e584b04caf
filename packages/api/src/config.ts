import { csv, int, logLevel } from '@walnut/runtime';
import { DEFAULT_SLOT, pgUrlSetting } from '@walnut/schema';
import * as z from 'zod';

/** The API's environment, parsed once at start. Defaults in JSDoc. */
export const apiEnv = z
  .object({
    /** Postgres for queries and writes; may point at PgBouncer in transaction mode. */
    DATABASE_URL: pgUrlSetting,
    /**
     * A direct Postgres connection for the one LISTEN session that wakes
     * `?after=` readers: PgBouncer in transaction mode cannot hold a LISTEN.
     * Default: DATABASE_URL.
     */
    API_LISTEN_DATABASE_URL: pgUrlSetting.optional(),
    /** Listen port. Default 3000. */
    API_PORT: int(0).max(65535).default(3000),
    /** Listen address. Default 127.0.0.1; compose sets 0.0.0.0. */
    API_HOST: z.string().default('127.0.0.1'),
    /** Slot whose confirmed LSN tells that Kafka acked a request. Default `walnut`. */
    RELAY_SLOT: z.string().default(DEFAULT_SLOT),
    /** Comma-separated API keys; empty turns auth off. Default empty. */
    API_KEYS: csv.default([]),
    /** Most connections in the pool. Default 10. */
    API_PG_POOL_MAX: int(1).default(10),
    /** An idle pooled connection is closed after this. Default 10000 ms. */
    API_PG_IDLE_TIMEOUT_MS: int(0).default(10_000),
    /** Longest wait for a new connection (or a free pool slot). Default 5000 ms. */
    API_PG_CONNECT_TIMEOUT_MS: int(0).default(5_000),
    /** Largest value, serialized as compact JSON. Default 1048576 (1 MiB). */
    API_MAX_VALUE_BYTES: int(1).default(1024 * 1024),
    /** Largest request body, checked before parsing. Default API_MAX_VALUE_BYTES + 64 KiB. */
    API_MAX_BODY_BYTES: int(1024).optional(),
    /** Most operations in one POST /kv/batch. Default 100. */
    API_MAX_BATCH_OPS: int(1).default(100),
    /**
     * Write transactions committing at once. Writes arriving while all are busy
     * share the next one (group commit). Keep it below API_PG_POOL_MAX so reads
     * find a connection. Default 4.
     */
    API_WRITE_CONCURRENCY: int(1).default(4),
    /** Most outbox rows in one shared write transaction. Default 1000. */
    API_WRITE_BATCH_MAX_OPS: int(1).default(1_000),
    /** Longest (and default) wait of GET /kv/:key?after=. Default 5000 ms. */
    API_READ_AFTER_TIMEOUT_MS: int(0).default(5_000),
    /** SIGTERM: longest wait for in-flight requests before exiting. Default 10000 ms. */
    API_SHUTDOWN_TIMEOUT_MS: int(0).default(10_000),
    LOG_LEVEL: logLevel,
  })
  .transform((env) => ({
    ...env,
    API_LISTEN_DATABASE_URL: env.API_LISTEN_DATABASE_URL ?? env.DATABASE_URL,
    API_MAX_BODY_BYTES: env.API_MAX_BODY_BYTES ?? env.API_MAX_VALUE_BYTES + 64 * 1024,
  }));

export type ApiEnv = z.infer<typeof apiEnv>;

/** Settings that may come from the file `<NAME>_FILE` names instead: the URLs carry passwords. */
export const apiSecrets = ['DATABASE_URL', 'API_LISTEN_DATABASE_URL'] as const;
