import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { alreadyDelivered, comparePositions } from './checkpoint-skip.ts';

const at = (commitLsn: string, seq: number) => ({ commitLsn, seq });

test('positions order by commit LSN as a number, then by index in the transaction', () => {
  assert.ok(comparePositions(at('0/FF', 9), at('0/100', 0)) < 0, '0/FF is before 0/100 although "F" > "1"');
  assert.ok(comparePositions(at('1/0', 0), at('0/FFFFFFFF', 5)) > 0);
  assert.ok(comparePositions(at('0/100', 2), at('0/100', 3)) < 0);
  assert.is(comparePositions(at('0/100', 3), at('0/100', 3)), 0);
});

test('without a checkpoint nothing is skipped', () => {
  assert.not.ok(alreadyDelivered(at('0/1', 0), null));
});

test('records at or before the checkpoint are skipped, the rest of a split transaction is not', () => {
  const checkpoint = at('0/2000', 499); // a 1,000-row transaction, half of it committed to Kafka
  assert.ok(alreadyDelivered(at('0/1000', 7), checkpoint), 'an earlier transaction');
  assert.ok(alreadyDelivered(at('0/2000', 0), checkpoint));
  assert.ok(alreadyDelivered(at('0/2000', 499), checkpoint), 'the checkpointed record itself');
  assert.not.ok(alreadyDelivered(at('0/2000', 500), checkpoint), 'resumes mid-way');
  assert.not.ok(alreadyDelivered(at('0/2001', 0), checkpoint), 'a later transaction');
});

test('a non-transactional message sorts before the transaction whose commit record starts at its end', () => {
  // pgoutput reports a message at the end of its record (0/2000); the next commit may start there.
  const message = at('0/1FFF', 0); // the session's position for it: one byte earlier
  assert.not.ok(alreadyDelivered(at('0/2000', 0), message), 'the transaction after it is not skipped');
  assert.ok(alreadyDelivered(message, at('0/2000', 0)), 'and it is before that transaction');
});

test.run();
