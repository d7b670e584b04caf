/**
 * The one size and dead-letter rule of the stream, replay and snapshot
 * (issue 25 item 2). A replay once checked a record's size without the batch
 * header, and had no dead-letter topic: it now stops, or dead-letters, exactly
 * where the stream does.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RelayError } from '../errors.ts';
import { headersAsText, kafkaRecord, RECORD_BATCH_OVERHEAD_BYTES } from '../kafka-record.ts';
import { fitOrDeadLetter, type RecordRules } from './record-rules.ts';

const limit = 1_000;
const replay: RecordRules = { maxRecordBytes: limit, deadLetterTopic: undefined, publisher: 'replay' };
const withDeadLetters: RecordRules = { ...replay, deadLetterTopic: 'dlq' };

/** A record of `sizeBytes` (headers and framing counted), for row r1. */
function recordOf(sizeBytes: number, topic = 'events', unmappable?: string) {
  const headers = new Map([[Buffer.from('id'), Buffer.from('r1')]]);
  const empty = kafkaRecord(topic, Buffer.from('k'), Buffer.alloc(0), headers, 'outbox row r1', {
    commitLsn: 0n,
    seq: 0,
  });
  const value = Buffer.alloc(sizeBytes - empty.sizeBytes, 'x');
  return kafkaRecord(topic, Buffer.from('k'), value, headers, 'outbox row r1', { commitLsn: 0n, seq: 0 }, unmappable);
}

test('the size rule counts headers and the batch header: a record under the limit by itself is refused', () => {
  const fits = recordOf(limit - RECORD_BATCH_OVERHEAD_BYTES);
  assert.is(fitOrDeadLetter(fits, replay), fits);
  const over = recordOf(limit - 10);
  assert.ok(over.sizeBytes <= limit, 'the old replay rule (record size alone) let it through');
  assert.throws(
    () => fitOrDeadLetter(over, replay),
    (e: unknown) => e instanceof RelayError && e.code === 'RECORD_TOO_LARGE' && e.message.includes('outbox row r1'),
  );
  const standIn = fitOrDeadLetter(over, withDeadLetters);
  assert.is(standIn.topic, 'dlq');
  assert.is(standIn.value, undefined, 'what does not fit is left out');
  const headers = headersAsText(standIn);
  assert.is(headers['walnut-dlq-reason'], 'RECORD_TOO_LARGE');
  assert.is(headers['walnut-dlq-size-bytes'], String(limit - 10 + RECORD_BATCH_OVERHEAD_BYTES));
  assert.is(headers['walnut-dlq-topic'], 'events');
  assert.is(headers.id, 'r1');
});

test('an unmappable row stops a replay naming it, or goes to the dead-letter topic with its payload', () => {
  const illegal = recordOf(200, 'eu/orders');
  assert.throws(
    () => fitOrDeadLetter(illegal, replay),
    (e: unknown) =>
      e instanceof RelayError &&
      e.code === 'OUTBOX_ROW_UNMAPPABLE' &&
      e.message.includes('outbox row r1 cannot be re-published') &&
      e.message.includes('--resume'),
  );
  const standIn = fitOrDeadLetter(illegal, withDeadLetters);
  assert.is(standIn.topic, 'dlq');
  assert.equal(standIn.value, illegal.value);
  assert.is(headersAsText(standIn)['walnut-dlq-reason'], 'OUTBOX_ROW_UNMAPPABLE');

  const unmapped = recordOf(200, 'events', 'empty topic column');
  assert.throws(
    () => fitOrDeadLetter(unmapped, { ...replay, publisher: 'stream' }),
    (e: unknown) => e instanceof RelayError && e.message.includes('restart the relay'),
  );
  assert.is(headersAsText(fitOrDeadLetter(unmapped, withDeadLetters))['walnut-dlq-detail'], 'empty topic column');
});

test.run();
