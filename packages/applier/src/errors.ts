/**
 * Errors are values with a stable code; `retryable` says whether running again
 * can help. What is fatal reaches main.ts, the only place that exits.
 */
export type ApplierErrorCode =
  /** kafkajs stopped the consumer and will not restart it. */
  'CONSUMER_CRASHED';

export class ApplierError extends Error {
  override readonly name = 'ApplierError';
  readonly code: ApplierErrorCode;
  readonly retryable: boolean;

  constructor(code: ApplierErrorCode, message: string, opts: { retryable: boolean; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.retryable = opts.retryable;
  }
}
