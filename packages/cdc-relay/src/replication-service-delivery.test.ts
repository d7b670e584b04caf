/**
 * patches/pg-logical-replication@2.5.0.patch delivers each WAL message to the service's
 * data listeners itself (_deliver), in order, waiting only for a listener that returns a
 * promise. A `once` listener removes itself from eventemitter2's listener array while
 * _deliver walks it; the listener after it must still get that message, or a session
 * misses a BEGIN and fails the stream.
 */
import { LogicalReplicationService } from 'pg-logical-replication/dist/logical-replication-service.js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

type Deliver = (lsn: string, data: unknown) => Promise<void> | undefined;

function service(): { emitter: LogicalReplicationService; deliver: Deliver } {
  // Not connected: the constructor opens nothing, and _deliver needs only the listeners.
  const emitter = new LogicalReplicationService(
    {},
    { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } },
  );
  const patched = emitter as unknown as { _deliver: Deliver };
  return { emitter, deliver: (lsn, data) => patched._deliver.call(emitter, lsn, data) };
}

test('a once listener ahead of another: both get the first message, the second gets every one', () => {
  const { emitter, deliver } = service();
  const seen: string[] = [];
  emitter.once('data', (lsn: string) => seen.push(`once ${lsn}`));
  emitter.on('data', (lsn: string) => {
    seen.push(`on ${lsn}`);
  });
  assert.is(deliver('0/1', {}), undefined);
  assert.is(deliver('0/2', {}), undefined);
  assert.equal(seen, ['once 0/1', 'on 0/1', 'on 0/2']);
});

test('once the once listener is gone, the one left is called without listeners() (the hot path)', () => {
  const { emitter, deliver } = service();
  const seen: string[] = [];
  emitter.once('data', () => {});
  emitter.on('data', (lsn: string) => {
    seen.push(lsn);
  });
  deliver('0/1', {});
  // eventemitter2 now holds the one left in a one-element array; a copy of it per message is what this avoids.
  (emitter as unknown as { listeners: () => never }).listeners = () => {
    throw new Error('listeners() on the hot path');
  };
  assert.is(deliver('0/2', {}), undefined);
  assert.equal(seen, ['0/1', '0/2']);
});

test('a once listener and a listener that returns a promise: the rest waits for it, in order', async () => {
  const { emitter, deliver } = service();
  const seen: string[] = [];
  emitter.once('data', (lsn: string) => seen.push(`once ${lsn}`));
  emitter.on('data', async (lsn: string) => {
    await new Promise((resolve) => setTimeout(resolve, 5));
    seen.push(`slow ${lsn}`);
  });
  emitter.on('data', (lsn: string) => {
    seen.push(`last ${lsn}`);
  });
  await deliver('0/1', {});
  assert.equal(seen, ['once 0/1', 'slow 0/1', 'last 0/1']);
  await deliver('0/2', {});
  assert.equal(seen, ['once 0/1', 'slow 0/1', 'last 0/1', 'slow 0/2', 'last 0/2']);
});

test('a listener that throws is reported as an error and the next one still runs', () => {
  const { emitter, deliver } = service();
  const errors: Error[] = [];
  const seen: string[] = [];
  emitter.on('error', (error: Error) => errors.push(error));
  emitter.on('data', () => {
    throw new Error('boom');
  });
  emitter.on('data', (lsn: string) => {
    seen.push(lsn);
  });
  deliver('0/1', {});
  assert.equal(seen, ['0/1']);
  assert.is(errors[0]?.message, 'boom');
});

test.run();
