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
  // A human must act: credentials or permissions, or a subject that another stream captures.
  if (/authorization|authentication|permissions violation/i.test(message)) {
    return new RelayError(
      'SINK_SEND_FAILED',
      `NATS refused ${what}: ${message} (check NATS_USER/NATS_PASSWORD, NATS_TOKEN or NATS_CREDS_FILE, and that the user may publish to the relay's subjects and use JetStream's API)`,
      { retryable: false, cause },
    );
  }
  if (cause instanceof JetStreamApiError && cause.code === STREAM_NOT_MATCH) {
    return new RelayError(
      'SINK_SEND_FAILED',
      `NATS refused ${what}: ${message}: another stream than RELAY_NATS_STREAM captures its subject; move that subject out of the other stream, or point RELAY_NATS_STREAM at it`,
      { retryable: false, cause },
    );
  }
  return new RelayError('SINK_SEND_FAILED', `NATS did not ack ${what}: ${message}`, {
    retryable: opts.retryable ?? true,
    cause,
  });
}
