import { z } from 'zod';

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

export type EnvResult<T> = { ok: true; env: T } | { ok: false; errors: string[] };

/**
 * Parses a runnable's settings once, at start. A bad value is one line per
 * problem, `<program>: <setting>: <what is wrong>`, for main.ts to print
 * before it exits non-zero: never a silent fallback to a default.
 */
export function parseEnv<T extends z.ZodType>(
  program: string,
  schema: T,
  raw: Record<string, string | undefined>,
  /** How a setting is named in the message (the relay adds its flag). */
  settingLabel: (name: string) => string = (name) => name,
): EnvResult<z.infer<T>> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return { ok: true, env: parsed.data };
  return {
    ok: false,
    errors: parsed.error.issues.map(
      (issue) => `${program}: ${settingLabel(issue.path.map(String).join('.'))}: ${issue.message}`,
    ),
  };
}
