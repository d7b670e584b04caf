/**
 * Issue 24 item 1, Kafka's side: an error the Kafka client marks as not
 * retriable (INVALID_TOPIC_EXCEPTION, TOPIC_AUTHORIZATION_FAILED, an unknown
 * topic with auto-creation off) was retried as if it were transient, a new
 * session every few 100 ms. It is now KAFKA_TOPIC_REFUSED: the relay is
 * `blocked`, tries again at RELAY_BACKOFF_MAX_MS, and streams on by itself
 * once the topic takes records.
 *
 * The refusal here is real and passes the relay's own name check: Kafka will
 * not auto-create a topic whose name collides with an existing one once `.` and
 * `_` are treated alike (`….eu_orders` beside `….eu.orders`), so the topic stays
 * unknown, as with auto.create.topics.enable=false (the local broker has it on).
 */
import { httpUrl, readTopic, type WalnutProcess, walnutSuite } from '@walnut/stack';
import * as assert from 'uvu/assert';

const refused = walnutSuite('kafka refuses a topic', 'topic_refused');
const CAP_MS = 2_000;

refused(
  'a topic Kafka refuses: blocked with KAFKA_TOPIC_REFUSED, retried at the cap, streams on once fixed',
  async ({ walnut }) => {
    const prefix = walnut.topic.replace(/kv$/, '');
    const colliding = `${prefix}eu.orders`;
    const admin = walnut.kafka.admin();
    await admin.connect();
    let relay: WalnutProcess | undefined;
    try {
      await admin.createTopics({ topics: [{ topic: colliding, numPartitions: 1 }], waitForLeaders: true });
      relay = await walnut.startRelay({ RELAY_BACKOFF_MAX_MS: String(CAP_MS) });
      const base = await httpUrl(relay);
      await walnut.pool.query(
        `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
       VALUES (gen_random_uuid(), 'eu_orders', 'k', 'kv.set', '{"n": 1}')`,
      );
      const line = await relay.waitForLine(/"code":"KAFKA_TOPIC_REFUSED"/, 60_000);
      const { error, delayMs, state } = JSON.parse(line) as { error: string; delayMs: number; state: string };
      assert.is(state, 'blocked');
      assert.match(error, `${prefix}eu_orders`);
      assert.match(error, 'create the topic');
      assert.ok(delayMs >= CAP_MS / 2, `tried again after ${delayMs} ms, not as if transient`);
      assert.is((await fetch(`${base}/ready`)).status, 503);
      assert.match(await (await fetch(`${base}/metrics`)).text(), 'walnut_relay_state{state="blocked"} 1');

      // The fix a human makes: the colliding topic goes. The relay streams on by itself.
      await admin.deleteTopics({ topics: [colliding] });
      const records = await readTopic(walnut.kafka, `${prefix}eu_orders`, (r) => r.length >= 1, 60_000);
      assert.is(records[0]?.value, '{"n": 1}', relay.tail());
      assert.is(await relay.stop('SIGTERM'), 0);
    } finally {
      await relay?.stop('SIGKILL');
      await admin.disconnect();
    }
  },
);

refused.run();
