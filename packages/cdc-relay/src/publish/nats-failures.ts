import { JetStreamApiError } from '@nats-io/jetstream';
import { RelayError } from '../errors.ts';

/** JetStream's error codes the sink tells apart (nats-server's server/errors.json). */
const WRONG_LAST_MSG_ID = 10070;
const STREAM_NOT_MATCH = 10060;

/** A publish refused because the stream's last message id is not the one it expected (Nats-Expected-Last-Msg-Id). */
export function isStaleChain(cause: unknown): boolean {
  return cause instanceof JetStreamApiError && cause.code === WRONG_LAST_MSG_ID;
}

/** The one place where a NATS client error becomes a RelayError. */
export function toNatsFailure(cause: unknown, what: string, opts: { retryable?: boolean } = {}): RelayError {
  if (cause instanceof RelayError) return cause;
  const message = cause instanceof Error ? cause.message : String(cause);
  // A human must act: credentials, permissions, or a subject that another stream captures.
  if (
    /authorization|authentication|permissions violation|user authentication/i.test(message) ||
    (cause instanceof JetStreamApiError && cause.code === STREAM_NOT_MATCH)
  ) {
    return new RelayError(
      'SINK_SEND_FAILED',
      `NATS refused ${what}: ${message} (check NATS_USER/NATS_PASSWORD, NATS_TOKEN or NATS_CREDS_FILE and their permissions, and that RELAY_NATS_STREAM is the only stream capturing the relay's subjects)`,
      { retryable: false, cause },
    );
  }
  return new RelayError('SINK_SEND_FAILED', `NATS did not ack ${what}: ${message}`, {
    retryable: opts.retryable ?? true,
    cause,
  });
}
