/**
 * Issue 24 item 2: a fault that strikes each session soon after it reaches
 * `streaming` restarted the relay every 150-400 ms (535 sessions in two
 * minutes), because every `streaming` started the backoff over. Now only a
 * session that streamed for 30 s (or RELAY_BACKOFF_MAX_MS) does; a shorter one
 * counts as a failure, and the waits grow to RELAY_BACKOFF_MAX_MS, none under
 * half its ceiling.
 *
 * The persistent fault: the test terminates the relay's walsender each time the
 * relay says it streams, as an operator's script or a proxy that drops
 * replication connections would.
 */
import { killAfterEach, pause, readTopic, startWalnutProcess, type WalnutProcess, walnutSuite } from '@walnut/stack';
import * as assert from 'uvu/assert';

const backoff = walnutSuite('session backoff', 'session_backoff');
const CAP_MS = 4_000;
const WINDOW_MS = 25_000;
const killAfterTest = killAfterEach(backoff);

const sessions = (relay: WalnutProcess) => relay.output.filter((line) => line.includes('"state":"streaming"')).length;

backoff(
  'a fault that persists right after streaming gives a handful of sessions, not one every few 100 ms',
  async ({ walnut }) => {
    const relay = killAfterTest(startWalnutProcess('relay', { ...walnut.env, RELAY_BACKOFF_MAX_MS: String(CAP_MS) }));
    await relay.waitForLine(/"state":"streaming"/, 30_000);

    let killed = 0;
    const end = Date.now() + WINDOW_MS;
    while (Date.now() < end) {
      if (sessions(relay) > killed) {
        const r = await walnut.pool.query(
          'SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL',
          [walnut.slot],
        );
        if (r.rowCount) killed++;
      }
      await pause(20);
    }
    const seen = sessions(relay);
    // The ramp's first five waits (100 ms to 3.2 s at least 3.1 s together), then at least
    // CAP_MS / 2 each: with the default cap of 10 s, at most ~12 sessions a minute.
    const bound = 1 + 5 + Math.ceil(WINDOW_MS / (CAP_MS / 2));
    assert.ok(seen >= 3, `the fault was applied (${seen} sessions, ${killed} killed)`);
    assert.ok(seen <= bound, `${seen} sessions in ${WINDOW_MS} ms (at most ${bound}):\n${relay.tail(10)}`);

    // The fault gone, the relay streams on by itself (within one wait of at most CAP_MS).
    await walnut.pool.query(
      `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
     VALUES (gen_random_uuid(), 'kv', 'k', 'kv.set', '{}')`,
    );
    const records = await readTopic(walnut.kafka, walnut.topic, (r) => r.length >= 1, 60_000);
    assert.is(records.length, 1, relay.tail());
    assert.is(await relay.stop('SIGTERM'), 0);
  },
);

backoff.run();
