import { CodedError } from '@walnut/runtime';

/**
 * Errors are values with a stable code; `retryable` says whether running again
 * can help. What is fatal reaches main.ts, the only place that exits.
 */
export type ApplierErrorCode =
  /** kafkajs stopped the consumer and will not restart it. */
  'CONSUMER_CRASHED';

export class ApplierError extends CodedError<ApplierErrorCode> {
  override readonly name = 'ApplierError';
}
