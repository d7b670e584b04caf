import { RELAY_HEADERS } from '@walnut/schema';
import { RelayError } from './errors.ts';
import { headerName, type KafkaRecord, kafkaRecord } from './kafka-record.ts';

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
  /** The headers every record of the transaction shares, encoded once (see transactionHeaders). */
  encodedHeaders?: ReadonlyArray<readonly [Buffer, Buffer]>;
}

/** A column's value as pgoutput sent it: text form, or null. */
export type RawRow = Record<string, string | null | undefined>;

const BYTEA_OID = 17;

/**
 * LSN, xid and commit time are the same for every record of a transaction;
 * a 10,000-row transaction formats them once, not 10,000 times.
 */
export function transactionHeaders(tx: TxPosition): ReadonlyArray<readonly [Buffer, Buffer]> {
  tx.encodedHeaders ??= [
    [headerName(RELAY_HEADERS.commitLsn), Buffer.from(tx.commitLsn, 'latin1')],
    [headerName(RELAY_HEADERS.xid), Buffer.from(String(tx.xid), 'latin1')],
    [
      headerName(RELAY_HEADERS.commitTime),
      Buffer.from(new Date(Number(tx.commitTimeMicros / 1000n)).toISOString(), 'latin1'),
    ],
  ];
  return tx.encodedHeaders;
}

/** The relay's own headers: the transaction's, plus this record's position in it. */
export function relayHeaders(tx: TxPosition): Map<Buffer, Buffer> {
  const headers = new Map<Buffer, Buffer>(transactionHeaders(tx));
  headers.set(headerName(RELAY_HEADERS.seq), Buffer.from(String(tx.seq), 'latin1'));
  return headers;
}

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
  const headers = relayHeaders(tx);
  if (id != null) headers.set(headerName(RELAY_HEADERS.eventId), Buffer.from(id, 'utf8'));
  for (const column of mapping.headerColumns) {
    const value = row[column];
    if (value != null) headers.set(headerName(column), Buffer.from(value, 'utf8'));
  }
  const payload = row[mapping.columns.payload];
  const key = row[mapping.columns.key];
  return kafkaRecord(
    renderTopic(mapping.topicTemplate, row),
    key == null ? undefined : Buffer.from(key, 'utf8'),
    payload == null
      ? undefined
      : columnTypes.get(mapping.columns.payload) === BYTEA_OID
        ? decodeByteaHex(payload)
        : Buffer.from(payload, 'utf8'),
    headers,
    id == null ? `outbox row at ${tx.commitLsn} #${tx.seq}` : `outbox row ${id}`,
    { commitLsn: tx.commitLsn, seq: tx.seq },
  );
}

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

export function renderTopic(template: string, row: RawRow): string {
  if (!template.includes('{')) return template;
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
