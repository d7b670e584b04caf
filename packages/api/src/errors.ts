import { type ErrorEnvelope, errorEnvelope } from '@walnut/runtime';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/** Every code a response may carry; clients switch on these, so they only ever grow. */
export const API_ERROR_CODES = [
  'INVALID_REQUEST',
  'MALFORMED_REQUEST',
  'VALIDATION_FAILED',
  'VALUE_TOO_LARGE',
  'BODY_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'UNAUTHENTICATED',
  'NOT_FOUND',
  'REQUEST_NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  'IDEMPOTENCY_KEY_REUSED',
  'NOT_APPLIED_YET',
  'DATABASE_UNREACHABLE',
  'SHUTTING_DOWN',
  'INTERNAL',
] as const;
export type ApiErrorCode = (typeof API_ERROR_CODES)[number];

/** Every error response has the one shape of @walnut/runtime's errorEnvelope(). */
export type ErrorBody = ErrorEnvelope<ApiErrorCode>;

export class ApiError extends Error {
  override readonly name = 'ApiError';

  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: ApiErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }

  toBody(): ErrorBody {
    return errorEnvelope(this.code, this.message, this.details);
  }
}
