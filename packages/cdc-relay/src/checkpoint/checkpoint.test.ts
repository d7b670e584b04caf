import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type CheckpointIdentity, checkpointRecord, parseCheckpoint } from './checkpoint.ts';
import { alreadyDelivered, DeliveredFilter } from './checkpoint-skip.ts';

const identity: CheckpointIdentity = {
  topic: 'checkpoints',
  key: Buffer.from('relay'),
  slot: 's',
  database: 'd',
  systemIdentifier: '7',
};

test('a checkpoint is written with the LSN in Postgres form and reads back as the same Lsn', () => {
  const position = { commitLsn: 0x1_0000_2000n, seq: 4, tx: { xid: 740, commitTimeMicros: 1_700_000_000_000_000n } };
  const record = checkpointRecord(identity, position);
  assert.is(JSON.parse(record.value?.toString('utf8') ?? '{}').commit_lsn, '1/2000');
  const read = parseCheckpoint(record.value ?? null);
  assert.is(read?.commitLsn, 0x1_0000_2000n);
  assert.equal(read?.tx, position.tx);
});

// Relays before issue 25 wrote the zero-padded form pg-logical-replication printed.
test('an older relay’s zero-padded checkpoint still resumes: its LSN compares as a number', () => {
  const old = Buffer.from(
    JSON.stringify({
      slot: 's',
      database: 'd',
      commit_lsn: '0000000A/000000FF',
      seq: 2,
      xid: 740,
      commit_time_us: '1700000000000000',
      relayed_at: '2026-01-01T00:00:00.000Z',
    }),
  );
  const checkpoint = parseCheckpoint(old);
  assert.is(checkpoint?.commitLsn, 0xa_0000_00ffn);
  if (!checkpoint) return;
  // 'A/100' sorts before '0000000A/000000FF' as text; as LSNs it is after.
  assert.ok(alreadyDelivered({ commitLsn: 0xa_0000_00ffn, seq: 2 }, checkpoint));
  assert.not.ok(alreadyDelivered({ commitLsn: 0xa_0000_0100n, seq: 0 }, checkpoint));
  const filter = new DeliveredFilter(checkpoint, 0xa_0000_0000n);
  assert.is(filter.transaction(0xa_0000_00ffn, { xid: 740, commitTimeMicros: 1_700_000_000_000_000n }), null);
  assert.not.ok(filter.verifying, 'the stream showed the checkpointed transaction');
  assert.ok(filter.skip({ commitLsn: 0xa_0000_00ffn, seq: 2 }));
  assert.not.ok(filter.skip({ commitLsn: 0xa_0000_00ffn, seq: 3 }), 'resumes after it');
});

test('a value that is not a checkpoint is ignored', () => {
  assert.is(parseCheckpoint(Buffer.from('{"commit_lsn":"not an lsn"}')), null);
  assert.is(parseCheckpoint(null), null);
});

test.run();
