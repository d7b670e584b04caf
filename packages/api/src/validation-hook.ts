import type { OpenAPIHonoOptions } from '@hono/zod-openapi';
import type { z } from 'zod';
import type { AppEnv } from './app-env.ts';
import { ApiError } from './errors.ts';
import { VALUE_TOO_LARGE } from './schemas.ts';

/**
 * Zod failures in the API's one error shape: a body that parsed but does not fit
 * is 422, a too-large value 413, a bad path, query or header 400. Runs before
 * any handler, so a rejected request has written nothing.
 */
export const validationHook: NonNullable<OpenAPIHonoOptions<AppEnv>['defaultHook']> = (result) => {
  if (result.success) return;
  const issues: z.core.$ZodIssue[] = result.error.issues;
  const details = issues.map((issue) => ({
    path: issue.path.join('.'),
    code: issue.code,
    message: issue.message,
  }));
  if (issues.some((issue) => issue.code === 'custom' && issue.params?.code === VALUE_TOO_LARGE)) {
    throw new ApiError(413, VALUE_TOO_LARGE, 'a value is larger than the limit', details);
  }
  if (result.target === 'json') {
    throw new ApiError(422, 'VALIDATION_FAILED', 'the body does not match the schema', details);
  }
  throw new ApiError(400, 'INVALID_REQUEST', `the request ${result.target} is invalid`, details);
};
