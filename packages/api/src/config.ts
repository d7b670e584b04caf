import { z } from 'zod';

/** The API's environment, parsed once at start. Defaults in JSDoc. */
export const apiEnv = z.object({
  DATABASE_URL: z.string().min(1),
  /** Listen port. Default 3000. */
  API_PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  /** Listen address. Default 127.0.0.1; compose sets 0.0.0.0. */
  API_HOST: z.string().default('127.0.0.1'),
  /** Slot whose confirmed LSN tells that Kafka acked a request. Default `walnut`. */
  RELAY_SLOT: z.string().default('walnut'),
  /** Pool size. Default 10. */
  API_PG_POOL_MAX: z.coerce.number().int().min(1).default(10),
  /** Largest request body. Default 1 MiB + 4 KiB, room for a 1 MiB value. */
  API_MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(1024 * 1024 + 4096),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
});

export type ApiEnv = z.infer<typeof apiEnv>;
