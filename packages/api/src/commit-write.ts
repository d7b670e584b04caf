import { createHash, randomUUID } from 'node:crypto';
import { idempotencyKeys, KV_AGGREGATE_TYPE, type KvEvent, type KvSetEvent } from '@walnut/schema';
import { and, eq, type SQL, sql } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { ApiError } from './errors.ts';

export type WriteOp = { op: 'set'; key: string; value: KvSetEvent['value'] } | { op: 'delete'; key: string };

export interface Idempotency {
  principal: string;
  key: string;
  /** sha256 of what the request asks for; see fingerprint(). */
  fingerprint: string;
}

/** What makes two requests "the same" for Idempotency-Key: method, path and validated body. */
export function fingerprint(method: string, path: string, body: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify([method, path, body ?? null]))
    .digest('hex');
}

/**
 * Commits a write: one outbox row per operation, the request row for /status and,
 * with an Idempotency-Key, its record, all in one transaction. Nothing here talks
 * to Kafka; the relay and the applier take it from the outbox.
 *
 * The Idempotency-Key row goes first. A concurrent duplicate's INSERT waits on
 * the unique index until the first transaction ends, then finds its row: the
 * retry gets the original request_id and nothing is written twice.
 */
export async function commitWrite(
  db: NodePgDatabase,
  ops: readonly WriteOp[],
  traceparent: string | undefined,
  idempotency?: Idempotency,
): Promise<{ requestId: string; replayed: boolean }> {
  const requestId = randomUUID();
  return db.transaction(async (tx) => {
    if (idempotency) {
      const [claimed] = await tx
        .insert(idempotencyKeys)
        .values({ ...idempotency, requestId })
        .onConflictDoNothing()
        .returning({ requestId: idempotencyKeys.requestId });
      if (!claimed) {
        const [existing] = await tx
          .select()
          .from(idempotencyKeys)
          .where(and(eq(idempotencyKeys.principal, idempotency.principal), eq(idempotencyKeys.key, idempotency.key)));
        if (!existing) throw new Error('Idempotency-Key row vanished between INSERT and SELECT');
        if (existing.fingerprint !== idempotency.fingerprint) {
          throw new ApiError(409, 'IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used for a different request', {
            request_id: existing.requestId,
          });
        }
        return { requestId: existing.requestId, replayed: true };
      }
    }
    await tx.execute(insertWrites([{ requestId, ops, traceparent }]));
    return { requestId, replayed: false };
  });
}

/** One accepted request: its id and its operations. */
export interface PlainWrite {
  requestId: string;
  ops: readonly WriteOp[];
  /** The writing request's span, stored with each outbox row for the relay to pass on. */
  traceparent?: string | undefined;
}

/**
 * Commits several requests (none with an Idempotency-Key) in one transaction:
 * each keeps its own request id, request row and outbox rows, in the order
 * given, so two writes of one key in one commit keep their arrival order (the
 * relay numbers a commit's events in insertion order).
 *
 * The transaction is the one statement of insertWrites, sent outside BEGIN and
 * COMMIT: Postgres runs a lone statement as its own transaction, so every row
 * commits or none does, and node-postgres resolves only at ReadyForQuery, which
 * Postgres sends after the commit. One round trip instead of four.
 */
export async function commitWrites(db: NodePgDatabase, writes: readonly PlainWrite[]): Promise<void> {
  await db.execute(insertWrites(writes));
}

/**
 * The outbox and request rows of `writes` as one statement, whatever their
 * number: the rows travel as two JSON arrays, so the SQL text is the same for
 * every batch and building it costs one JSON.stringify per array. ORDER BY
 * ordinality makes the insertion order the order given.
 */
function insertWrites(writes: readonly PlainWrite[]): SQL {
  const events: object[] = [];
  const requestRows: object[] = [];
  for (const { requestId, ops, traceparent } of writes) {
    for (const op of ops) {
      const payload: KvEvent =
        op.op === 'set'
          ? { op: 'set', key: op.key, value: op.value, request_id: requestId }
          : { op: 'delete', key: op.key, request_id: requestId };
      events.push({
        // A single write's event id is its request id, which makes it easy to find on the topic.
        id: ops.length === 1 ? requestId : randomUUID(),
        aggregatetype: KV_AGGREGATE_TYPE,
        aggregateid: op.key,
        type: `kv.${op.op}`,
        payload,
        traceparent: traceparent ?? null,
      });
    }
    requestRows.push({
      request_id: requestId,
      key: ops.length === 1 ? (ops[0]?.key ?? null) : null,
      keys: ops.map((op) => op.key),
    });
  }
  // A data-modifying WITH runs to completion whether or not the outer statement reads it.
  return sql`WITH written AS (
    INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload, traceparent)
    SELECT e.id, e.aggregatetype, e.aggregateid, e.type, e.payload, e.traceparent
    FROM jsonb_populate_recordset(NULL::outbox, ${JSON.stringify(events)}::jsonb) WITH ORDINALITY AS e
    ORDER BY e.ordinality
  )
  INSERT INTO requests (request_id, key, keys)
  SELECT r.request_id, r.key, r.keys
  FROM jsonb_populate_recordset(NULL::requests, ${JSON.stringify(requestRows)}::jsonb) AS r`;
}
