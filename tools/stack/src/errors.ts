export type StackErrorCode =
  /** A program the harness needs (initdb, pg_ctl, java, mvn, the postgres OS user) is absent or unusable. */
  | 'TOOL_MISSING'
  /** Maven could not resolve Kafka's jars. */
  | 'JARS_FAILED'
  | 'POSTGRES_FAILED'
  | 'KAFKA_FAILED'
  /** stop/start/restart on a service that came from DATABASE_URL / KAFKA_BROKERS. */
  | 'NOT_OWNED'
  /** DATABASE_URL / KAFKA_BROKERS is set but unusable. */
  | 'BAD_ENV'
  /** A process under test exited while a wait needed it running. */
  | 'PROCESS_EXITED'
  | 'TIMEOUT';

/**
 * A harness failure with a stable code. `retryable: false` also tells
 * `waitFor` to give up at once instead of polling until its deadline.
 */
export class StackError extends Error {
  override readonly name = 'StackError';
  readonly retryable: boolean;

  constructor(
    readonly code: StackErrorCode,
    message: string,
    options: { cause?: unknown; retryable?: boolean } = {},
  ) {
    super(message, 'cause' in options ? { cause: options.cause } : undefined);
    this.retryable = options.retryable ?? false;
  }
}
