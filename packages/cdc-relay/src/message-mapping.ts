import { RELAY_HEADERS } from '@walnut/schema';
import type { KafkaRecord, TxPosition } from './outbox-mapping.ts';

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
  return {
    topic: mapping.topicTemplate.replaceAll('{prefix}', match.prefix),
    key: match.key,
    value: Buffer.from(content.buffer, content.byteOffset, content.byteLength),
    headers: {
      [RELAY_HEADERS.commitLsn]: position.commitLsn,
      [RELAY_HEADERS.seq]: String(position.seq),
      [RELAY_HEADERS.xid]: String(position.xid),
      [RELAY_HEADERS.commitTime]: new Date(Number(position.commitTimeMicros / 1000n)).toISOString(),
      'walnut-message-prefix': prefix,
    },
  };
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
