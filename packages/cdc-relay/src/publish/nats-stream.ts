import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { NatsStreamSettings, RelayConfig } from '../config.ts';
import { RelayError } from '../errors.ts';
import { templateSubject, uncaptured } from './nats-messages.ts';

/** JetStream's answer to a stream added twice at once with different settings. */
const STREAM_NAME_IN_USE = 10058;

/**
 * The subjects the stream must capture: every topic the relay can publish to,
 * as the topic templates' fixed prefixes + `>`, and the dead-letter topic.
 */
export function neededSubjects(config: RelayConfig): string[] {
  const subjects = [templateSubject(config.outbox.topicTemplate)];
  if (config.messages.prefixes.length > 0) subjects.push(templateSubject(config.messages.topicTemplate));
  if (config.deadLetterTopic) subjects.push(config.deadLetterTopic);
  return [...new Set(subjects)];
}

/**
 * Creates the stream when it is missing, with the settings the user may
 * override (RELAY_NATS_*). An existing stream is left as its owner made it,
 * but it must capture every subject the relay publishes to: a record whose
 * subject no stream captures would fail each session at the same row, and one
 * that another stream captures would land there. Either is a human's to fix.
 */
export async function ensureStream(
  jsm: JetStreamManager,
  stream: NatsStreamSettings,
  needed: readonly string[],
): Promise<void> {
  const subjects = stream.subjects ?? [...needed];
  const missing = uncaptured(subjects, needed);
  if (missing.length > 0) {
    throw notCaptured(stream.name, subjects, missing, '--nats-subjects / RELAY_NATS_SUBJECTS');
  }
  for (let tries = 0; ; tries++) {
    try {
      const info = await jsm.streams.info(stream.name);
      const held = info.config.subjects ?? [];
      const gaps = uncaptured(held, needed);
      if (gaps.length > 0) throw notCaptured(stream.name, held, gaps, 'the stream (nats stream edit)');
      return;
    } catch (error) {
      if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound)) throw error;
    }
    try {
      await jsm.streams.add({
        name: stream.name,
        subjects,
        storage: stream.storage,
        num_replicas: stream.replicas,
        duplicate_window: nanos(stream.duplicateWindowMs),
        max_age: nanos(stream.maxAgeMs),
      });
      return;
    } catch (error) {
      // Another relay (or a person) made it meanwhile: check the one that won.
      if (error instanceof JetStreamApiError && error.code === STREAM_NAME_IN_USE && tries === 0) continue;
      if (error instanceof JetStreamApiError) {
        throw new RelayError(
          'CONFIG_INVALID',
          `NATS refused to create stream ${stream.name} (subjects ${subjects.join(', ')}): ${error.message}; fix RELAY_NATS_* (docs/relay.md, NATS JetStream) or create the stream yourself`,
          { retryable: false, cause: error },
        );
      }
      throw error;
    }
  }
}

function notCaptured(name: string, subjects: readonly string[], missing: readonly string[], fix: string): RelayError {
  return new RelayError(
    'CONFIG_INVALID',
    `NATS stream ${name} captures ${subjects.join(', ') || 'no subjects'} but not ${missing.join(', ')}, where the relay publishes (RELAY_TOPIC_TEMPLATE, RELAY_MESSAGE_TOPIC_TEMPLATE, RELAY_DEAD_LETTER_TOPIC): add them to ${fix}, or set RELAY_NATS_STREAM to another stream`,
    { retryable: false },
  );
}
