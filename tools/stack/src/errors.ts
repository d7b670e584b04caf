export type StackErrorCode = 'TOOL_MISSING' | 'POSTGRES_FAILED' | 'KAFKA_FAILED' | 'NOT_OWNED' | 'TIMEOUT';

/** A harness failure with a stable code and the command output that explains it. */
export class StackError extends Error {
  override readonly name = 'StackError';

  constructor(
    readonly code: StackErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
