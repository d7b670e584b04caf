/**
 * Memory stays bounded by RELAY_MAX_INFLIGHT_BYTES, not by the record window,
 * when Kafka stops answering and large rows keep coming: the relay stops
 * reading WAL instead of buffering it. Regression: the window counted records
 * only, so 20,000 rows of 512 KiB could be held in memory while Kafka was away.
 *
 * The broker is frozen (SIGSTOP), not stopped: a stopped broker refuses
 * connections, the session fails at its first send and reads no more WAL; a
 * frozen one leaves requests hanging until RELAY_KAFKA_SEND_TIMEOUT_MS, and
 * the session keeps decoding WAL meanwhile, which is what the window bounds.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  httpUrl,
  type KafkaHandle,
  startKafka,
  type WalnutFixture,
  waitConfirmed,
  waitFor,
  walInsertLsn,
  walnutFixture,
} from '@walnut/stack';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

interface Ctx {
  dir: string;
  kafka: KafkaHandle;
  walnut: WalnutFixture;
}

const ROWS = 3000;
const ROW_BYTES = 512 * 1024;
const backpressure = suite<Ctx>('backpressure by bytes');

backpressure.before(async (ctx) => {
  // A broker of its own: the test stops it.
  ctx.dir = await mkdtemp(path.join(tmpdir(), 'walnut-backpressure-'));
  ctx.kafka = await startKafka({ dir: ctx.dir });
  ctx.walnut = await walnutFixture('backpressure', { brokers: ctx.kafka.brokers });
});

backpressure.after(async (ctx) => {
  await ctx.walnut?.close();
  await ctx.kafka?.stop();
  await rm(ctx.dir, { recursive: true, force: true });
});

backpressure(`Kafka frozen while ${ROWS} rows of 512 KiB arrive: RSS bounded, all relayed after`, async (ctx) => {
  const { walnut } = ctx;
  const relay = await walnut.startRelay({
    RELAY_MAX_INFLIGHT_BYTES: String(32 * 1024 * 1024),
    RELAY_KAFKA_SEND_TIMEOUT_MS: '20000',
  });
  const baseline = relay.rssBytes() ?? 0;
  const broker = Number(readFileSync(path.join(ctx.dir, 'kafka', 'kafka.pid'), 'utf8').trim());
  process.kill(broker, 'SIGSTOP');
  // The payload compresses in TOAST, so the WAL stays small; decoding hands the relay 512 KiB per row.
  const inserted = (async () => {
    for (let i = 0; i < ROWS; i += 100) {
      await walnut.pool.query(
        `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
         SELECT gen_random_uuid(), 'kv', 'k' || (g % 10), 'kv.set', jsonb_build_object('pad', repeat('x', $1::int), 'g', g)
           FROM generate_series($2::int, $2::int + 99) g`,
        [ROW_BYTES - 32, i],
      );
    }
  })();
  let peak = 0;
  const sample = setInterval(() => {
    peak = Math.max(peak, relay.rssBytes() ?? 0);
  }, 100);
  try {
    await inserted;
    // Past the send timeout, so a session also fails and a new one starts while the broker is away.
    const outageEnds = Date.now() + 25_000;
    await waitFor('the outage to last 25 s', async () => Date.now() >= outageEnds, {
      timeoutMs: 30_000,
      intervalMs: 250,
    });
  } finally {
    clearInterval(sample);
    await thaw(broker);
  }
  const mib = (b: number) => (b / 1024 / 1024).toFixed(0);
  console.log(`  backpressure: relay RSS ${mib(baseline)} MiB before, peak ${mib(peak)} MiB during the outage`);
  assert.ok(relay.running, relay.tail());
  assert.ok(
    peak - baseline < 200 * 1024 * 1024,
    `RSS grew ${mib(peak - baseline)} MiB while ${mib(ROWS * ROW_BYTES)} MiB waited in the slot`,
  );

  await waitConfirmed(walnut.pool, walnut.slot, await walInsertLsn(walnut.pool), {
    what: 'the slot confirmed past the last row',
    timeoutMs: 300_000,
    intervalMs: 500,
    relay,
  });
  // The relay's count of records in committed Kafka transactions (reading 1.5 GB back would double the test's time).
  const metrics = await (await fetch(`${await httpUrl(relay)}/metrics`)).text();
  const relayed = Number(/^walnut_relay_events_total (\d+)/m.exec(metrics)?.[1]);
  assert.ok(relayed >= ROWS, `${relayed} records committed to Kafka for ${ROWS} rows`);
  await relay.stop('SIGTERM');
});

/** SIGCONT, and wait until /proc no longer shows the process stopped. */
async function thaw(pid: number): Promise<void> {
  await waitFor(
    `broker pid ${pid} to run again`,
    async () => {
      process.kill(pid, 'SIGCONT');
      const state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      return state !== 'T';
    },
    { timeoutMs: 10_000, intervalMs: 200 },
  );
}

backpressure.run();
