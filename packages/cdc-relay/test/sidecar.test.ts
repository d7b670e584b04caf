/**
 * The relay as a sidecar: its CLI (help, validation, slot and publication
 * subcommands), the table-less outbox (pg_logical_emit_message), and the
 * /health, /ready and /metrics endpoints, whose counters must move.
 */
import { readFileSync } from 'node:fs';
import { httpUrl, readTopic, runRelayCli, type WalnutFixture, waitFor, walnutSuite } from '@walnut/stack';
import * as assert from 'uvu/assert';

const sidecar = walnutSuite('sidecar', 'sidecar');

async function cli(walnut: WalnutFixture, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runRelayCli(args, walnut.env);
}

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').at(-1)) : Number.NaN;
}

sidecar('CLI: help, one clear line per bad value, secrets never taken from flags', async ({ walnut }) => {
  const help = await cli(walnut, ['--help']);
  assert.is(help.code, 0);
  for (const word of ['run', 'slot', 'publication']) assert.match(help.stdout, word);
  const runHelp = await cli(walnut, ['run', '--help']);
  assert.match(runHelp.stdout, '--slot <value>');
  assert.match(runHelp.stdout, /env:\s+RELAY_SLOT/);
  assert.not.match(runHelp.stdout, '--database-url', 'secrets have no flag');

  const bad = await cli(walnut, ['run', '--max-inflight-records', 'lots', '--outbox-table', 'no_schema']);
  assert.is(bad.code, 2);
  const lines = bad.stderr.trim().split('\n');
  assert.is(lines.length, 2, bad.stderr);
  assert.match(bad.stderr, '--max-inflight-records / RELAY_MAX_INFLIGHT_RECORDS');
  assert.match(bad.stderr, '--outbox-table / RELAY_OUTBOX_TABLE: must be schema.table');
  assert.not.match(bad.stderr, walnut.databaseUrl, 'the database URL is never printed');
});

sidecar('slot and publication subcommands, messages, /ready and /metrics', async ({ walnut }) => {
  const created = await cli(walnut, ['slot', 'create']);
  assert.is(created.code, 0, created.stderr);
  assert.match(created.stdout, `created slot ${walnut.slot}`);
  const synced = await cli(walnut, ['publication', 'sync']);
  assert.is(synced.code, 0, synced.stderr);
  // The least-privilege fixture has its publication made by the table's owner beforehand.
  assert.match(synced.stdout, walnut.relayRole === 'owner' ? 'created publication' : 'updated publication');
  const idle = JSON.parse((await cli(walnut, ['slot', 'status', '--json'])).stdout);
  assert.equal([idle.exists, idle.active], [true, false]);

  const topicPrefix = `msg_${walnut.slot}`;
  const relay = await walnut.startRelay({
    RELAY_MESSAGE_PREFIXES: 'orders,audit',
    RELAY_MESSAGE_TOPIC_TEMPLATE: `${topicPrefix}.{prefix}`,
    // No NODE_PATH (pnpm's reaches its store): the relay finds its CRC32C addon itself.
    NODE_PATH: '',
  });
  const base = await httpUrl(relay);
  assert.is((await fetch(`${base}/health`)).status, 200);
  await waitFor('relay ready', async () => (await fetch(`${base}/ready`)).status === 200);
  const crcAddon = /@node-rs\/crc32-[^/\n]+\/crc32\.[^/\n]+\.node/;
  const mapped = () => readFileSync(`/proc/${relay.pid}/maps`, 'utf8');
  assert.not.match(mapped(), crcAddon, 'an idle relay has not loaded the addon');
  const before = await (await fetch(`${base}/metrics`)).text();

  await walnut.pool.query(`
    BEGIN;
    INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
      VALUES (gen_random_uuid(), 'kv', 'k', 'kv.set', '{"op":"set"}');
    SELECT pg_logical_emit_message(true, 'orders:o-1', '{"order":1}');
    SELECT pg_logical_emit_message(true, 'unrelated', 'not relayed');
    COMMIT;
    SELECT pg_logical_emit_message(false, 'audit', 'login');
  `);
  const orders = await readTopic(walnut.kafka, `${topicPrefix}.orders`, (r) => r.length >= 1);
  const audit = await readTopic(walnut.kafka, `${topicPrefix}.audit`, (r) => r.length >= 1);
  assert.equal(
    orders.map((r) => [r.key, r.value]),
    [['o-1', '{"order":1}']],
  );
  assert.equal(
    audit.map((r) => [r.key, r.value]),
    [['audit', 'login']],
  );
  assert.match(mapped(), crcAddon, 'record batches are checksummed by the native addon');

  await waitFor('counters moved', async () => {
    const after = await (await fetch(`${base}/metrics`)).text();
    return metric(after, 'walnut_relay_events_total') - (metric(before, 'walnut_relay_events_total') || 0) >= 3
      ? after
      : undefined;
  });
  const after = await (await fetch(`${base}/metrics`)).text();
  assert.ok(metric(after, 'walnut_relay_payload_bytes_total') > 0);
  assert.ok(metric(after, 'walnut_relay_kafka_ack_seconds_count') > 0);
  assert.ok(metric(after, 'walnut_relay_confirmed_lsn') > 0);
  assert.ok(Number.isFinite(metric(after, 'walnut_relay_slot_lag_bytes')));
  assert.ok(Number.isFinite(metric(after, 'walnut_relay_inflight_records')));
  assert.match(after, 'walnut_relay_state{state="streaming"} 1');

  const busy = JSON.parse((await cli(walnut, ['slot', 'status', '--json'])).stdout);
  assert.is(busy.active, true);
  assert.is(typeof busy.lagBytes, 'number');
  const refused = await cli(walnut, ['slot', 'drop']);
  assert.is(refused.code, 1, 'a slot in use is not dropped');
  assert.is(await relay.stop('SIGTERM'), 0);
  await waitFor(
    'slot released',
    async () => !JSON.parse((await cli(walnut, ['slot', 'status', '--json'])).stdout).active,
  );
  const dropped = await cli(walnut, ['slot', 'drop']);
  assert.match(dropped.stdout, `dropped slot ${walnut.slot}`);
});

sidecar.run();
