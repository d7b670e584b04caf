import { headerName, type KafkaRecord, kafkaRecord } from './kafka-record.ts';
import { commitLsnText, relayHeaders, type TxPosition } from './outbox-mapping.ts';

/**
 * The table-less outbox: `pg_logical_emit_message(true, prefix, payload)`.
 * A message is relayed when its prefix is a configured one, `P`, or starts
 * with `P:`; what follows `P:` becomes the Kafka key (per-key order), else the
 * key is `P` itself (one ordered stream per prefix). Nothing is stored in a
 * table, so there is nothing to clean up.
 */
export interface MessageMapping {
  prefixes: readonly string[];
  /** Topic with a `{prefix}` placeholder, e.g. `outbox.message.{prefix}`. */
  topicTemplate: string;
}

export function messageRecord(
  mapping: MessageMapping,
  prefix: string,
  content: Uint8Array,
  position: TxPosition,
): KafkaRecord | null {
  const match = matchPrefix(mapping.prefixes, prefix);
  if (!match) return null;
  const headers = relayHeaders(position);
  headers.set(headerName('walnut-message-prefix'), Buffer.from(prefix, 'utf8'));
  return kafkaRecord(
    mapping.topicTemplate.replaceAll('{prefix}', match.prefix),
    Buffer.from(match.key, 'utf8'),
    // A copy: the parser hands out a view into pg-protocol's receive buffer, which
    // the next socket read reuses while this record may still wait in the sink.
    Buffer.from(content),
    headers,
    `message ${prefix} at ${commitLsnText(position)}`,
    { commitLsn: position.commitLsn, seq: position.seq },
  );
}

function matchPrefix(prefixes: readonly string[], prefix: string): { prefix: string; key: string } | null {
  for (const configured of prefixes) {
    if (prefix === configured) return { prefix: configured, key: configured };
    if (prefix.startsWith(`${configured}:`) && prefix.length > configured.length + 1) {
      return { prefix: configured, key: prefix.slice(configured.length + 1) };
    }
  }
  return null;
}
