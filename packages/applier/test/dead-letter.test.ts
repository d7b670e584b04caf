/**
 * Poison records (not a valid envelope) go to the dead-letter topic with the
 * error and their origin in headers; the applier keeps applying what follows,
 * counts them on /metrics, and reports lag per partition and batch latency.
 */
import { randomUUID } from 'node:crypto';
import {
  call,
  httpUrl,
  readTopic,
  type WalnutFixture,
  type WalnutProcess,
  waitApplied,
  waitFor,
  walnutFixture,
  write,
} from '@walnut/stack';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const dlq = suite<{ walnut: WalnutFixture; api: string; applier: WalnutProcess; metricsUrl: string }>('dead letters');

dlq.before(async (ctx) => {
  ctx.walnut = await walnutFixture('dead_letter', { env: { APPLIER_HTTP_PORT: '0' } });
  await ctx.walnut.startRelay();
  ctx.api = (await ctx.walnut.startApi()).url;
  ctx.applier = await ctx.walnut.startApplier();
  ctx.metricsUrl = await httpUrl(ctx.applier);
});

dlq.after(async ({ walnut }) => {
  await walnut.close();
});

const value = (metrics: string, series: string) =>
  Number(new RegExp(`^${series} (\\S+)$`, 'm').exec(metrics)?.[1] ?? Number.NaN);

dlq('garbage goes to the DLQ with the error in headers, and the applier carries on', async (ctx) => {
  const { walnut, api } = ctx;
  const headers = { 'walnut-commit-lsn': '0/16B3748', 'walnut-seq': '0' };
  const poison = [
    { key: 'p1', value: '{not json', headers },
    { key: 'p2', value: JSON.stringify({ op: 'set', key: 'p2' }), headers },
    { key: 'p3', value: JSON.stringify({ op: 'explode', key: 'p3', request_id: randomUUID() }), headers },
    { key: 'p4', value: JSON.stringify({ op: 'set', key: 'p4', value: 1, request_id: randomUUID() }), headers: {} },
    { key: 'p5', value: null, headers },
  ];
  const producer = walnut.kafka.producer();
  await producer.connect();
  try {
    await producer.send({ topic: walnut.topic, messages: poison });
  } finally {
    await producer.disconnect();
  }

  // Written after the garbage, on whatever partition: it is still applied.
  const id = await write(api, 'PUT', '/kv/after-garbage', { value: 'fine' });
  await waitApplied(api, id);
  assert.is((await call(api, 'GET', '/kv/after-garbage')).body.value, 'fine');

  const dead = await readTopic(walnut.kafka, `${walnut.topic}.dlq`, (r) => r.length >= poison.length);
  assert.equal(
    dead.map((r) => r.key).sort(),
    poison.map((p) => p.key),
  );
  for (const record of dead) {
    assert.ok(record.headers['walnut-dlq-error'], `error header on ${record.key}`);
    assert.match(
      record.headers['walnut-dlq-source'] ?? '',
      new RegExp(`^${walnut.topic.replaceAll('.', '\\.')}/\\d+/\\d+$`),
    );
  }
  const byKey = new Map(dead.map((r) => [r.key, r]));
  assert.match(byKey.get('p1')?.headers['walnut-dlq-error'] ?? '', /not JSON/);
  assert.match(byKey.get('p4')?.headers['walnut-dlq-error'] ?? '', /relay headers/);
  assert.is(byKey.get('p1')?.value, '{not json', 'the record is dead-lettered byte for byte');
  assert.ok(ctx.applier.running);

  const metrics = (await call(ctx.metricsUrl, 'GET', '/metrics')).body as string;
  assert.is(value(metrics, 'walnut_applier_dead_lettered_total'), poison.length);
});

dlq('/health and /metrics: applied events, lag per partition, batch latency', async (ctx) => {
  const { api, walnut } = ctx;
  const health = await call(ctx.metricsUrl, 'GET', '/health');
  assert.is(health.status, 200);
  assert.equal(health.body, { status: 'ok' });

  const id = await write(api, 'POST', '/kv/batch', {
    ops: [
      { op: 'set', key: 'm1', value: 1 },
      { op: 'delete', key: 'm2' },
    ],
  });
  await waitApplied(api, id);
  // Lag is read from Kafka at scrape time; it is zero once the offsets are committed.
  const metrics = await waitFor('lag back to zero', async () => {
    const text = (await call(ctx.metricsUrl, 'GET', '/metrics')).body as string;
    const lags = [...text.matchAll(/^walnut_applier_lag_records\{partition="(\d+)"\} (\S+)$/gm)];
    return lags.length > 0 && lags.every((m) => m[2] === '0') && text;
  });
  const admin = walnut.kafka.admin();
  await admin.connect();
  const partitions = (await admin.fetchTopicOffsets(walnut.topic)).length;
  await admin.disconnect();
  assert.is(
    [...metrics.matchAll(/^walnut_applier_lag_records\{partition="\d+"\}/gm)].length,
    partitions,
    'one lag series per partition',
  );
  assert.ok(value(metrics, 'walnut_applier_events_total\\{op="set"\\}') >= 2);
  assert.ok(value(metrics, 'walnut_applier_events_total\\{op="delete"\\}') >= 1);
  assert.ok(value(metrics, 'walnut_applier_requests_applied_total') >= 2);
  assert.ok(value(metrics, 'walnut_applier_batch_seconds_count') >= 1);
  assert.match(metrics, /^walnut_applier_batch_seconds_bucket\{le="0.1"\} \d+$/m);
});

dlq.run();
