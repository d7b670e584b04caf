import { validator } from 'hono/validator';
import type { z } from 'zod';
import { ApiError } from './errors.ts';

/** Zod in a Hono validator, failing with the API's one error shape (422). */
export function validJson<T extends z.ZodType>(schema: T) {
  return validator('json', (value) => parseOr422(schema, value));
}

export function validParam<T extends z.ZodType>(schema: T) {
  return validator('param', (value) => parseOr(400, schema, value));
}

function parseOr422<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  return parseOr(422, schema, value);
}

function parseOr<T extends z.ZodType>(status: 400 | 422, schema: T, value: unknown): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new ApiError(
      status,
      'VALIDATION_FAILED',
      'request does not match the schema',
      result.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })),
    );
  }
  return result.data;
}
