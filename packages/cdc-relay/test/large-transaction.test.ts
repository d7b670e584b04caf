/**
 * One transaction of 200,000 outbox rows (LARGE_TX_ROWS) is relayed completely with bounded
 * memory. With pgoutput proto_version 1 the walsender sends the whole
 * transaction after its commit, as fast as the socket takes it; what keeps the
 * relay's heap small is the in-flight window (RELAY_MAX_INFLIGHT_RECORDS): a
 * full window pauses the WAL reader, so the rest of the transaction waits in
 * the server's socket buffer and the walsender, not in the relay.
 */
import { countDelivery, readDistinctIds, waitConfirmed, walLsn, walnutSuite } from '@walnut/stack';
import * as assert from 'uvu/assert';

/** LARGE_TX_ROWS: the compatibility matrix (pnpm test:compat) takes fewer, still more than the in-flight window. */
const ROWS = Number(process.env.LARGE_TX_ROWS || 200_000);
const MAX_RSS_BYTES = 400 * 1024 * 1024;
const RSS_SAMPLE_MS = 200;

const large = walnutSuite('large transaction', 'large_tx');

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;

large(`a single transaction of ${ROWS} outbox rows is relayed with bounded memory`, async ({ walnut }) => {
  const relay = await walnut.startRelay();
  const rss: number[] = [];
  const sampleRss = () => {
    const bytes = relay.rssBytes();
    if (bytes !== null) rss.push(bytes);
  };
  sampleRss();
  const sampler = setInterval(sampleRss, RSS_SAMPLE_MS);
  try {
    const startedAt = performance.now();
    // ~100-byte payloads; one statement, one transaction, one commit record.
    await walnut.pool.query(
      `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
       SELECT gen_random_uuid(), 'kv', 'k' || (g % 1000), 'kv.set',
              jsonb_build_object('op', 'set', 'n', g, 'pad', repeat('x', 64))
         FROM generate_series(1, $1) AS g`,
      [ROWS],
    );
    const committedAt = performance.now();
    // The commit record is behind the insert position read after COMMIT returned.
    const commitBound = await walLsn(walnut.pool);
    console.log(`  large transaction: committed ${ROWS} rows in ${((committedAt - startedAt) / 1000).toFixed(1)}s`);

    // The relay confirms the transaction only once Kafka acked every one of its records.
    await waitConfirmed(walnut.pool, walnut.slot, commitBound, {
      what: 'the slot to confirm the large transaction',
      timeoutMs: 300_000,
      intervalMs: 250,
      relay,
    });
    const confirmedAt = performance.now();
    clearInterval(sampler);
    const peak = Math.max(...rss);
    const seconds = (confirmedAt - committedAt) / 1000;
    console.log(
      `  large transaction: relayed and confirmed ${seconds.toFixed(1)}s after commit (${Math.round(ROWS / seconds)} records/s); relay RSS ${mib(rss[0] ?? 0)} at start, peak ${mib(peak)} over ${rss.length} samples`,
    );
    assert.ok(peak < MAX_RSS_BYTES, `relay peak RSS ${mib(peak)} is not under ${mib(MAX_RSS_BYTES)}`);

    // An independent consumer: every id of the table is on the topic.
    const ids = await walnut.pool.query<{ id: string }>('SELECT id::text AS id FROM outbox');
    const expected = new Set(ids.rows.map((r) => r.id));
    assert.is(expected.size, ROWS);
    const records = await readDistinctIds(walnut.kafka, walnut.topic, ROWS, 180_000);
    const delivery = countDelivery(
      expected,
      records.map((r) => r.headers.id),
    );
    const missing = delivery.missing.length;
    const { unexpected } = delivery;
    console.log(
      `  large transaction: the topic holds ${records.length} records, ${delivery.counts.size} distinct ids, ${missing} missing`,
    );
    assert.is(missing, 0, `${missing} of ${ROWS} ids missing from the topic`);
    assert.is(unexpected, 0, 'the topic holds only ids of the table');
  } finally {
    clearInterval(sampler);
  }
  await relay.stop('SIGTERM');
});

large.run();
