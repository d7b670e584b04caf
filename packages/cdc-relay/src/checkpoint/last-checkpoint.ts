import { formatLsn, parseLsn } from '@walnut/schema';
import type { RelayConfig } from '../config.ts';
import { RelayError } from '../errors.ts';
import type { RecordPosition } from '../kafka-record.ts';
import { withPgClient } from '../pg-client.ts';
import { SERVER_WAL_LSN_SQL } from '../server-wal-lsn.ts';
import { type Checkpoint, type CheckpointIdentity, writtenForAnotherSlot } from './checkpoint.ts';
import { readCheckpoint } from './checkpoint-topic.ts';

/**
 * Where the last committed checkpoint of this relay says Kafka is
 * (exactly-once), once it is known to be this slot's and this WAL history's.
 */
export async function readDeliveredPosition(
  config: Pick<RelayConfig, 'kafka' | 'databaseUrl'>,
  checkpoint: CheckpointIdentity,
): Promise<RecordPosition | null> {
  const last = await readCheckpoint(config.kafka, checkpoint.topic, checkpoint.key);
  if (!last) return null;
  refuseSharedTransactionalId(last, checkpoint);
  // A checkpoint past the server's WAL belongs to another WAL history (a restore, a failover
  // to a standby that had not received it): skipping by it would drop new events that reuse
  // those LSNs. Nothing can tell what Kafka holds of this history, so a human decides.
  const current = await withPgClient(config.databaseUrl, async (client) => {
    const r = await client.query<{ lsn: string }>(`SELECT ${SERVER_WAL_LSN_SQL}::text AS lsn`);
    return parseLsn(r.rows[0]?.lsn ?? '0/0');
  });
  if (last.commitLsn > current) {
    throw new RelayError(
      'CHECKPOINT_MISMATCH',
      `the exactly-once checkpoint names LSN ${formatLsn(last.commitLsn)} (written ${last.relayedAt}), past this server's WAL at ${formatLsn(current)}: the database's WAL history is not the one the relay relayed from (a restore or a failover?). To start exactly-once afresh, set a new RELAY_TRANSACTIONAL_ID (events Kafka already holds from this slot may then be sent again)`,
      { retryable: false },
    );
  }
  return { commitLsn: last.commitLsn, seq: last.seq, ...(last.tx ? { tx: last.tx } : {}) };
}

/**
 * Two slots under one RELAY_TRANSACTIONAL_ID fence each other's producer at
 * every session start, and each one's checkpoints say nothing about the
 * other's slot: a human must give each its own id.
 */
export function refuseSharedTransactionalId(last: Checkpoint, checkpoint: CheckpointIdentity): void {
  if (!writtenForAnotherSlot(last, checkpoint)) return;
  const where = (c: { slot: string; database: string; systemIdentifier?: string | undefined }) =>
    `slot ${c.slot} of database ${c.database}${c.systemIdentifier ? ` on server ${c.systemIdentifier}` : ''}`;
  throw new RelayError(
    'CONFIG_INVALID',
    `RELAY_TRANSACTIONAL_ID ${checkpoint.key.toString('utf8')} is another slot's: its last checkpoint (written ${last.relayedAt}) is from ${where(last)}, and this relay streams ${where(checkpoint)}. Relays sharing a transactional id fence each other at every start. Give each slot its own RELAY_TRANSACTIONAL_ID (or unset it: the default is unique per server, database and slot)`,
    { retryable: false },
  );
}
