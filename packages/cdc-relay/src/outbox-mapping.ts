import { formatLsn, type Lsn, RELAY_HEADERS } from '@walnut/schema';
import { headerName, type KafkaRecord, kafkaRecord } from './kafka-record.ts';
import type { Relation } from './pgoutput.ts';

/** Which table is the outbox and how its columns become a Kafka record. */
export interface OutboxMapping {
  schema: string;
  table: string;
  /** Column names; defaults follow Debezium's outbox event router. */
  columns: { id: string; key: string; payload: string };
  /** Topic name with `{column}` placeholders, e.g. `outbox.event.{aggregatetype}`. */
  topicTemplate: string;
  /** Columns copied verbatim into Kafka headers; a column the table lacks is skipped. */
  headerColumns: ReadonlyArray<{ column: string; header: string }>;
}

/** Where an outbox row sits in the WAL: the transaction it committed with. */
export interface TxPosition {
  commitLsn: Lsn;
  xid: number;
  /** Microseconds since the Unix epoch, as pgoutput sends it. */
  commitTimeMicros: bigint;
  /** Index of the row among the transaction's outbox rows, from 0. */
  seq: number;
  /** The headers every record of the transaction shares, encoded once (see transactionHeaders). */
  encodedHeaders?: ReadonlyArray<readonly [Buffer, Buffer]>;
  /** commitLsn as text, formatted once per transaction (see commitLsnText). */
  lsnText?: string;
}

/** A row as pgoutput sent it: each column's text bytes (or null), in the relation's column order. */
export type RowValues = ReadonlyArray<Buffer | null>;

const BYTEA_OID = 17;

/** The transaction's commit LSN in Postgres's form, for headers and record sources: formatted once per transaction. */
export function commitLsnText(tx: TxPosition): string {
  tx.lsnText ??= formatLsn(tx.commitLsn);
  return tx.lsnText;
}

/**
 * LSN, xid and commit time are the same for every record of a transaction;
 * a 10,000-row transaction formats them once, not 10,000 times.
 */
export function transactionHeaders(tx: TxPosition): ReadonlyArray<readonly [Buffer, Buffer]> {
  tx.encodedHeaders ??= [
    [headerName(RELAY_HEADERS.commitLsn), Buffer.from(commitLsnText(tx), 'latin1')],
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

/** Maps an inserted row of one relation to its Kafka record. */
export type RowMapper = (values: RowValues, tx: TxPosition) => KafkaRecord;

const mappers = new WeakMap<Relation, RowMapper>();

/**
 * The mapper for rows of `relation`: column positions are looked up once per
 * relation (a Relation message), not once per row. The payload goes out byte
 * for byte as Postgres printed it (json/jsonb/text), or decoded for bytea, so
 * consumers see what the app wrote, not a re-serialization.
 */
export function outboxRowMapper(mapping: OutboxMapping, relation: Relation): RowMapper {
  let mapper = mappers.get(relation);
  if (mapper) return mapper;
  const position = (column: string) => relation.columns.findIndex((c) => c.name === column);
  const id = position(mapping.columns.id);
  const key = position(mapping.columns.key);
  const payload = position(mapping.columns.payload);
  const payloadIsBytea = relation.columns[payload]?.typeOid === BYTEA_OID;
  const headerColumns = mapping.headerColumns.map(
    ({ column, header }) => [headerName(header), position(column)] as const,
  );
  const topic = topicRenderer(mapping.topicTemplate, position);
  const idHeader = headerName(RELAY_HEADERS.eventId);

  mapper = (values, tx) => {
    const idValue = at(values, id);
    const headers = relayHeaders(tx);
    if (idValue) headers.set(idHeader, idValue);
    for (const [name, index] of headerColumns) {
      const value = at(values, index);
      if (value) headers.set(name, value);
    }
    const payloadValue = at(values, payload) ?? undefined;
    const rendered = topic(values);
    const decoded = payloadValue && payloadIsBytea ? decodeByteaHex(payloadValue) : payloadValue;
    const problems: string[] = [];
    if (typeof rendered !== 'string') problems.push(rendered.problem);
    let value = payloadValue;
    if (decoded && 'problem' in decoded) problems.push(decoded.problem);
    else value = decoded;
    return kafkaRecord(
      typeof rendered === 'string' ? rendered : mapping.topicTemplate,
      at(values, key) ?? undefined,
      value,
      headers,
      idValue ? `outbox row ${idValue.toString('utf8')}` : `outbox row at ${commitLsnText(tx)} #${tx.seq}`,
      { commitLsn: tx.commitLsn, seq: tx.seq },
      problems.length > 0 ? problems.join('; ') : undefined,
    );
  };
  mappers.set(relation, mapper);
  return mapper;
}

function at(values: RowValues, index: number): Buffer | null {
  return index < 0 ? null : (values[index] ?? null);
}

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Why a row cannot be mapped; the sink dead-letters or stops on it (publish/record-rules.ts). */
export interface Unmappable {
  problem: string;
}

/**
 * A topic template compiled against a relation's columns; a template without
 * placeholders is a constant. Whether the rendered name is legal is the sink's
 * check (topicProblem), which covers message topics too.
 */
export function topicRenderer(
  template: string,
  position: (column: string) => number,
): (values: RowValues) => string | Unmappable {
  if (!template.includes('{')) return () => template;
  const parts: Array<string | { column: string; index: number }> = [];
  let last = 0;
  for (const match of template.matchAll(PLACEHOLDER)) {
    parts.push(template.slice(last, match.index));
    const column = match[1] as string;
    parts.push({ column, index: position(column) });
    last = match.index + match[0].length;
  }
  parts.push(template.slice(last));
  return (values) => {
    let topic = '';
    for (const part of parts) {
      if (typeof part === 'string') {
        topic += part;
        continue;
      }
      const value = at(values, part.index);
      if (!value || value.length === 0) {
        return { problem: `topic template ${template} needs column "${part.column}", which is empty in this row` };
      }
      topic += value.toString('utf8');
    }
    return topic;
  };
}

function decodeByteaHex(text: Buffer): Buffer | Unmappable {
  // bytea_output=hex is the default since Postgres 9.0; pgoutput uses it too.
  if (text[0] !== 0x5c /* \ */ || text[1] !== 0x78 /* x */) {
    return { problem: 'its bytea payload is not in hex output format' };
  }
  return Buffer.from(text.toString('latin1', 2), 'hex');
}
