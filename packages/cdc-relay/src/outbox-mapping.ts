import { RELAY_HEADERS } from '@walnut/schema';
import { RelayError } from './errors.ts';

/** Which table is the outbox and how its columns become a Kafka record. */
export interface OutboxMapping {
  schema: string;
  table: string;
  /** Column names; defaults follow Debezium's outbox event router. */
  columns: { id: string; key: string; payload: string };
  /** Topic name with `{column}` placeholders, e.g. `outbox.event.{aggregatetype}`. */
  topicTemplate: string;
  /** Columns copied verbatim into Kafka headers of the same name. */
  headerColumns: readonly string[];
}

/** Where an outbox row sits in the WAL: the transaction it committed with. */
export interface TxPosition {
  commitLsn: string;
  xid: number;
  /** Microseconds since the Unix epoch, as pgoutput sends it. */
  commitTimeMicros: bigint;
  /** Index of the row among the transaction's outbox rows, from 0. */
  seq: number;
}

export interface KafkaRecord {
  topic: string;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

/** A column's value as pgoutput sent it: text form, or null. */
export type RawRow = Record<string, string | null | undefined>;

const BYTEA_OID = 17;

/**
 * Maps one inserted outbox row to the record Kafka receives. The payload goes out
 * byte for byte as Postgres printed it (json/jsonb/text), or decoded for bytea,
 * so consumers see what the app wrote, not a re-serialization.
 */
export function outboxRecord(
  mapping: OutboxMapping,
  row: RawRow,
  columnTypes: ReadonlyMap<string, number>,
  tx: TxPosition,
): KafkaRecord {
  const id = row[mapping.columns.id];
  const headers: Record<string, string> = {
    [RELAY_HEADERS.commitLsn]: tx.commitLsn,
    [RELAY_HEADERS.seq]: String(tx.seq),
    [RELAY_HEADERS.xid]: String(tx.xid),
    [RELAY_HEADERS.commitTime]: new Date(Number(tx.commitTimeMicros / 1000n)).toISOString(),
  };
  if (id != null) headers[RELAY_HEADERS.eventId] = id;
  for (const column of mapping.headerColumns) {
    const value = row[column];
    if (value != null) headers[column] = value;
  }
  const payload = row[mapping.columns.payload];
  return {
    topic: renderTopic(mapping.topicTemplate, row),
    key: row[mapping.columns.key] ?? null,
    value:
      payload == null
        ? null
        : columnTypes.get(mapping.columns.payload) === BYTEA_OID
          ? decodeByteaHex(payload)
          : Buffer.from(payload, 'utf8'),
    headers,
  };
}

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

export function renderTopic(template: string, row: RawRow): string {
  return template.replace(PLACEHOLDER, (_, column: string) => {
    const value = row[column];
    if (value == null || value === '') {
      throw new RelayError(
        'OUTBOX_ROW_UNMAPPABLE',
        `topic template ${template} needs column "${column}", which is empty in an outbox row`,
        { retryable: false },
      );
    }
    return value;
  });
}

function decodeByteaHex(text: string): Buffer {
  // bytea_output=hex is the default since Postgres 9.0; pgoutput uses it too.
  if (!text.startsWith('\\x')) {
    throw new RelayError('OUTBOX_ROW_UNMAPPABLE', 'bytea payload is not in hex output format', {
      retryable: false,
    });
  }
  return Buffer.from(text.slice(2), 'hex');
}
