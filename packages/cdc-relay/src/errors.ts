import { CodedError } from '@walnut/runtime';

/**
 * Errors are values with a stable code. `retryable` tells the supervisor whether
 * reconnecting can help (a broker restart) or a human must act (wal_level).
 */
export type RelayErrorCode =
  | 'CONFIG_INVALID'
  | 'WAL_LEVEL_NOT_LOGICAL'
  | 'AUTH_FAILED'
  | 'SLOT_IN_USE'
  | 'SLOT_INVALIDATED'
  | 'SLOT_MISSING'
  | 'RECORD_TOO_LARGE'
  | 'OUTBOX_TABLE_MISSING'
  | 'OUTBOX_ROW_UNMAPPABLE'
  | 'POSTGRES_UNAVAILABLE'
  | 'REPLICATION_STREAM_FAILED'
  | 'KAFKA_SEND_FAILED'
  | 'CHECKPOINT_MISMATCH'
  | 'REPLAY_INTERRUPTED';

export class RelayError extends CodedError<RelayErrorCode> {
  override readonly name = 'RelayError';
}

/** Maps whatever a driver threw to a RelayError the supervisor can act on. */
export function toRelayError(error: unknown): RelayError {
  if (error instanceof RelayError) return error;
  const pgCode = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  switch (pgCode) {
    case '28P01':
    case '28000':
      return new RelayError(
        'AUTH_FAILED',
        `Postgres refused the relay's login (${message}): check the user and password in DATABASE_URL, and that the role has LOGIN and REPLICATION (ALTER ROLE … LOGIN REPLICATION)`,
        { retryable: false, cause: error },
      );
    case '42501':
      return new RelayError(
        'CONFIG_INVALID',
        `the relay's role lacks a privilege (needs REPLICATION and SELECT on the outbox): ${message}`,
        { retryable: false, cause: error },
      );
    case 'PG_NO_SUITABLE_HOST':
      return new RelayError('POSTGRES_UNAVAILABLE', message, { retryable: true, cause: error });
    case '55006':
      return new RelayError('SLOT_IN_USE', message, { retryable: true, cause: error });
    case '55000':
      if (/invalidated|wal_level/.test(message)) {
        return new RelayError('SLOT_INVALIDATED', message, { retryable: false, cause: error });
      }
  }
  return new RelayError('REPLICATION_STREAM_FAILED', message, { retryable: true, cause: error });
}
