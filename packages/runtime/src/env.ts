import * as z from 'zod';

/** `a, b,,c` → `['a', 'b', 'c']`: list settings (brokers, API keys, prefixes). */
export const csv = z.string().transform((s) =>
  s
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean),
);

/** An integer setting of at least `min`, from its env text. */
export const int = (min: number) => z.coerce.number().int().min(min);

/** `true`/`false`/`1`/`0`; anything else is an error, not false. */
export const flag = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

export const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info');
