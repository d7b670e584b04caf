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
  | 'STANDBY_DECODING_UNSUPPORTED'
  | 'RECORD_TOO_LARGE'
  | 'OUTBOX_TABLE_MISSING'
  | 'PUBLICATION_DRIFT'
  | 'OUTBOX_ROW_UNMAPPABLE'
  | 'POSTGRES_UNAVAILABLE'
  | 'REPLICATION_STREAM_FAILED'
  | 'KAFKA_SEND_FAILED'
  | 'KAFKA_TOPIC_REFUSED'
  | 'SINK_SEND_FAILED'
  | 'CHECKPOINT_MISMATCH'
  | 'REPLAY_INTERRUPTED'
  | 'REPLAY_FENCED'
  | 'SNAPSHOT_INCOMPLETE';

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
    case '55000': {
      // Postgres puts the reason in the detail: 'This replication slot has been invalidated due
      // to "idle_timeout".' (17+), '… because it exceeded the maximum reserved size.' (14-16).
      const detail = (error as { detail?: unknown }).detail;
      const said = typeof detail === 'string' && detail ? `${message} (${detail.replace(/\.$/, '')})` : message;
      if (/invalidated|wal_level/.test(said)) {
        return new RelayError(
          'SLOT_INVALIDATED',
          `${said}: events since the relay's last confirmation can no longer be streamed. Drop and recreate the slot (walnut-relay slot drop, slot create), then re-publish the gap from the outbox table with walnut-relay replay --since/--until (docs/relay.md, Replay and snapshot)`,
          { retryable: false, cause: error },
        );
      }
    }
  }
  return new RelayError('REPLICATION_STREAM_FAILED', message, { retryable: true, cause: error });
}
