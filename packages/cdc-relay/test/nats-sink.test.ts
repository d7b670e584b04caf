/**
 * The relay with RELAY_SINK=nats, on a real nats-server with JetStream (file
 * storage): outbox inserts become messages with their bytes intact, headers
 * and an LSN-derived Nats-Msg-Id; the slot is confirmed only once JetStream
 * acked; a relay SIGKILLed mid-stream and restarted leaves every row in the
 * stream exactly once, in commit order; a nats-server SIGKILLed and restarted
 * loses nothing it acked; a publish that fails while later ones are in flight
 * leaves no gap (the later ones are refused); a bad NATS_SERVERS is one line
 * and exit 2.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection, nanos } from '@nats-io/transport-node';
import { formatLsn, parseLsn } from '@walnut/schema';
import {
  confirmedLsn,
  countDelivery,
  exitCode,
  httpUrl,
  type NatsHandle,
  natsServerInstalled,
  runRelayCli,
  startNats,
  startWalnutProcess,
  type WalnutFixture,
  type WalnutProcess,
  waitConfirmed,
  waitFor,
  walnutFixture,
} from '@walnut/stack';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { RelayError } from '../src/errors.ts';
import { headerName, kafkaRecord } from '../src/kafka-record.ts';
import { messageHeaders } from '../src/publish/nats-messages.ts';
import { NatsSink } from '../src/publish/nats-sink.ts';
import { readStream, streamCount } from './nats-reads.ts';
import { numberedContents, numberedSlabRecords, readable } from './wire-records.ts';

interface Ctx {
  walnut: WalnutFixture;
  nats: NatsHandle;
  dir: string;
  started: WalnutProcess[];
  env: Record<string, string>;
  stream: string;
}

const tests = suite<Ctx>('nats sink');

tests.before(async (ctx) => {
  ctx.started = [];
  if (!natsServerInstalled()) return;
  ctx.dir = await mkdtemp(path.join(process.env.WALNUT_STACK_DIR ?? tmpdir(), 'nats-'));
  ctx.nats = await startNats({ dir: ctx.dir });
  ctx.walnut = await walnutFixture('nats_sink');
  ctx.stream = `WALNUT_${ctx.walnut.slot.slice(-8).toUpperCase()}`;
  ctx.env = { RELAY_SINK: 'nats', NATS_SERVERS: ctx.nats.url, RELAY_NATS_STREAM: ctx.stream, RELAY_STANDBY: 'false' };
});

tests.after.each(async ({ started }) => {
  await Promise.all(started.splice(0).map((p) => p.stop('SIGKILL')));
});

tests.after(async (ctx) => {
  await ctx.walnut?.close();
  await ctx.nats?.stop();
  if (ctx.dir) await rm(ctx.dir, { recursive: true, force: true });
});

function skipped(ctx: Ctx): boolean {
  if (ctx.nats) return false;
  console.log('  nats sink: skipped, nats-server is not installed (./walnut install installs it)');
  return true;
}

async function startRelay(ctx: Ctx): Promise<WalnutProcess> {
  const relay = startWalnutProcess('relay', { ...ctx.walnut.relayEnv, ...ctx.env });
  ctx.started.push(relay);
  await relay.waitForLine(/"state":"streaming"/);
  return relay;
}

async function withNats<T>(url: string, use: (nc: NatsConnection) => Promise<T>): Promise<T> {
  const nc = await connect({ servers: url, reconnect: false });
  try {
    return await use(nc);
  } finally {
    await nc.close();
  }
}

async function purge(ctx: Ctx): Promise<void> {
  await withNats(ctx.nats.url, async (nc) => {
    await (await jetstreamManager(nc)).streams.purge(ctx.stream).catch(() => {});
  });
}

async function walInsert(walnut: WalnutFixture): Promise<bigint> {
  const { rows } = await walnut.pool.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
  return parseLsn((rows[0] as { lsn: string }).lsn);
}

tests('outbox inserts become messages: subject, payload bytes, headers, walnut-key, Nats-Msg-Id', async (ctx) => {
  if (skipped(ctx)) return;
  const { walnut, nats } = ctx;
  const relay = await startRelay(ctx);
  const ids = [randomUUID(), randomUUID(), randomUUID()];
  const payloads = [
    { op: 'set', key: 'ü', value: { n: 1 } },
    { op: 'delete', key: 'b' },
    { op: 'set', value: [] },
  ];
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const db = await walnut.pool.connect();
  try {
    await db.query('BEGIN');
    for (const [i, id] of ids.entries()) {
      await db.query(
        `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload, traceparent) VALUES ($1, 'kv', $2, 'kv.set', $3, $4)`,
        [id, `key-${i}`, JSON.stringify(payloads[i]), traceparent],
      );
    }
    await db.query('COMMIT');
  } finally {
    db.release();
  }
  await waitFor('three messages', async () => (await streamCount(nats.url, ctx.stream)) === 3, { timeoutMs: 30_000 });
  const printed = await walnut.pool.query<{ id: string; payload: string }>(
    'SELECT id::text, payload::text FROM outbox ORDER BY aggregateid',
  );
  const got = await readStream(nats.url, ctx.stream);
  const commitLsn = got[0]?.headers.get('walnut-commit-lsn') ?? '';
  assert.equal(
    got.map((m) => m.msgId),
    [0, 1, 2].map((seq) => `${parseLsn(commitLsn)}-${seq}`),
    'Nats-Msg-Id: <commit LSN as a decimal>-<position>',
  );
  for (const [i, message] of got.entries()) {
    const row = printed.rows[i] as { id: string; payload: string };
    assert.is(message.subject, walnut.topic, 'the subject is the topic');
    assert.ok(message.data.equals(Buffer.from(row.payload)), `payload bytes of row ${i}`);
    assert.is(message.headers.get('walnut-key'), `key-${i}`);
    assert.is(message.headers.get('id'), row.id);
    assert.is(message.headers.get('type'), 'kv.set');
    assert.is(message.headers.get('traceparent'), traceparent);
    assert.is(message.headers.get('walnut-seq'), String(i));
    assert.is(message.headers.get('walnut-commit-lsn'), commitLsn);
  }
  await waitConfirmed(walnut.pool, walnut.slot, parseLsn(commitLsn), { what: 'the commit confirmed' });
  const base = await httpUrl(relay);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, /walnut_relay_sink_info\{sink="nats"\} 1/);
  assert.match(metrics, /walnut_relay_events_total 3/);
  const status = (await (await fetch(`${base}/status.json`)).json()) as { sink: string };
  assert.is(status.sink, 'nats');
  const info = await withNats(nats.url, async (nc) => (await jetstreamManager(nc)).streams.info(ctx.stream));
  assert.equal(info.config.subjects, [`${walnut.topic.slice(0, walnut.topic.lastIndexOf('.'))}.>`]);
  assert.is(info.config.storage, 'file');
  assert.is(info.config.duplicate_window, nanos(120_000));
  console.log(`  nats sink: 3 messages on ${walnut.topic} in ${ctx.stream}, ids ${got.map((m) => m.msgId).join(', ')}`);
});

tests('nats-server frozen: nothing is confirmed until JetStream acks it', async (ctx) => {
  if (skipped(ctx)) return;
  const { walnut, nats } = ctx;
  // A frozen server keeps the connection open and answers nothing: the record is pushed and in
  // flight, so only the ack rule keeps its LSN from being confirmed. (Killed, the session would
  // end before the row is read, and the check would pass whatever the rule.)
  const relay = await startRelay(ctx);
  await waitConfirmed(walnut.pool, walnut.slot, await walInsert(walnut), { what: 'caught up' });
  nats.freeze();
  try {
    const id = randomUUID();
    await walnut.pool.query(
      `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) VALUES ($1, 'kv', 'frozen', 'kv.set', '{}')`,
      [id],
    );
    const inserted = await walInsert(walnut);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const whileFrozen = await confirmedLsn(walnut.pool, walnut.slot);
    assert.ok(
      whileFrozen < inserted,
      `confirmed ${formatLsn(whileFrozen)} stays below the row (${formatLsn(inserted)})`,
    );
    nats.thaw();
    await waitConfirmed(walnut.pool, walnut.slot, inserted, { what: 'confirmed once nats-server answers' });
    const got = await readStream(nats.url, ctx.stream);
    assert.ok(
      got.some((m) => m.headers.get('id') === id),
      'the row is in the stream',
    );
    assert.ok(relay.running, 'the same session carried on');
  } finally {
    nats.thaw();
  }
});

/** Commits `transactions` of `rowsPerTx` rows in the background; the ids in commit order. */
function writeLoad(walnut: WalnutFixture, transactions: number, rowsPerTx: number) {
  const ids: string[] = [];
  const state = { committed: 0 };
  const done = (async () => {
    for (let t = 0; t < transactions; t++) {
      const batch = Array.from({ length: rowsPerTx }, () => randomUUID());
      await walnut.pool.query(
        `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
         SELECT u::uuid, 'kv', 'k' || (($2::int + o) % 37), 'kv.set', jsonb_build_object('t', $2::int, 'r', o)
           FROM unnest($1::text[]) WITH ORDINALITY AS x(u, o)`,
        [batch, t],
      );
      ids.push(...batch);
      state.committed++;
    }
  })();
  return { ids, state, done };
}

tests('relay SIGKILLed mid-stream, restarted: 0 missing, 0 duplicates, commit order', async (ctx) => {
  if (skipped(ctx)) return;
  const { walnut, nats } = ctx;
  await purge(ctx);
  let relay = await startRelay(ctx);
  const start = await confirmedLsn(walnut.pool, walnut.slot);
  const load = writeLoad(walnut, 300, 10);
  let resent = 0;
  for (const quarter of [1, 2]) {
    await waitFor(`${quarter} quarter(s) written`, async () => load.state.committed >= 75 * quarter);
    await waitConfirmed(walnut.pool, walnut.slot, start + 1n, { what: 'some progress confirmed' });
    assert.is(await relay.stop('SIGKILL'), null, 'killed by the signal');
    const confirmed = await confirmedLsn(walnut.pool, walnut.slot);
    resent += (await readStream(nats.url, ctx.stream)).filter(
      (m) => BigInt(m.msgId?.split('-')[0] ?? 0) > confirmed,
    ).length;
    relay = await startRelay(ctx);
  }
  await load.done;
  const expected = new Set(load.ids);
  await waitConfirmed(walnut.pool, walnut.slot, await walInsert(walnut), { what: 'all confirmed', timeoutMs: 90_000 });
  const got = await readStream(nats.url, ctx.stream);
  const { missing, duplicates, unexpected } = countDelivery(
    expected,
    got.map((m) => m.headers.get('id')),
  );
  console.log(
    `  nats sink: ${expected.size} rows, ${got.length} messages, ${missing.length} missing, ${duplicates} duplicates; ${resent} messages stood above the confirmed LSN at the kills (resent, dropped by Nats-Msg-Id)`,
  );
  assert.is(missing.length, 0, `missing ${missing.length} of ${expected.size}`);
  assert.is(duplicates, 0, 'a resend is dropped by its Nats-Msg-Id');
  assert.is(unexpected, 0);
  assert.equal(
    got.map((m) => m.headers.get('id')),
    load.ids,
    'the stream holds the rows in commit order',
  );
});

tests('nats-server SIGKILLed and restarted (file storage): nothing acked is lost', async (ctx) => {
  if (skipped(ctx)) return;
  const { walnut, nats } = ctx;
  await purge(ctx);
  await startRelay(ctx);
  const start = await confirmedLsn(walnut.pool, walnut.slot);
  const load = writeLoad(walnut, 200, 10);
  await waitFor('a third written', async () => load.state.committed >= 66);
  await waitConfirmed(walnut.pool, walnut.slot, start + 1n, { what: 'some progress confirmed' });
  await nats.kill();
  const confirmedAtKill = await confirmedLsn(walnut.pool, walnut.slot);
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  await nats.start();
  await load.done;
  const expected = new Set(load.ids);
  await waitConfirmed(walnut.pool, walnut.slot, await walInsert(walnut), { what: 'all confirmed', timeoutMs: 90_000 });
  const got = await readStream(nats.url, ctx.stream);
  const { missing, duplicates } = countDelivery(
    expected,
    got.map((m) => m.headers.get('id')),
  );
  console.log(
    `  nats sink: nats-server killed with the slot confirmed at ${formatLsn(confirmedAtKill)}: ${expected.size} rows, ${got.length} messages, ${missing.length} missing, ${duplicates} duplicates`,
  );
  assert.is(missing.length, 0, `missing ${missing.length} of ${expected.size}`);
  assert.is(duplicates, 0);
  assert.equal(
    got.map((m) => m.headers.get('id')),
    load.ids,
    'commit order',
  );
});

/** A NatsSink on a stream of its own, outside the relay: for the ordering cases a relay cannot stage. */
async function bareSink(url: string, stream: string, config: { max_msg_size?: number; duplicate_window?: number }) {
  const nc = await connect({ servers: url, reconnect: false });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], storage: 'file', ...config });
  const acked: number[] = [];
  const failures: RelayError[] = [];
  const sink = new NatsSink<number>(
    {
      ready: Promise.resolve({
        js: jetstream(nc),
        rules: { maxRecordBytes: 1_000_000, deadLetterTopic: undefined, publisher: 'stream' },
      }),
      onLost: () => {},
    },
    { stream, sendTimeoutMs: 10_000, maxInflightRecords: 1_000, maxInflightBytes: 1 << 24 },
    { acked: (token) => acked.push(token), failed: (error) => failures.push(error) },
  );
  await sink.start();
  const record = (seq: number, bytes = 10) =>
    kafkaRecord(
      `${stream}.kv`,
      Buffer.from(`k${seq}`),
      Buffer.alloc(bytes, 97),
      new Map([[headerName('id'), Buffer.from(`row-${seq}`)]]),
      `row ${seq}`,
      { commitLsn: 1000n, seq },
    );
  return { nc, js: jetstream(nc), sink, acked, failures, record };
}

tests("acked messages give their bytes back to the relay's slabs, and JetStream holds them intact", async (ctx) => {
  if (skipped(ctx)) return;
  const stream = `SLABS_${ctx.stream}`;
  const { nc, sink, acked, failures } = await bareSink(ctx.nats.url, stream, {});
  try {
    const records = numberedSlabRecords(`${stream}.kv`, 3, 1000n);
    for (const [seq, r] of records.entries()) sink.push(r, seq);
    assert.equal(records.map(readable), [true, true, true], 'pushed, not acked: kept');
    await waitFor('every publish acked', async () => acked.length === 3, { timeoutMs: 10_000 });
    assert.equal(failures, []);
    assert.equal(records.map(readable), [false, false, false], 'acked: given back');
    const got = await readStream(ctx.nats.url, stream);
    assert.equal(
      got.map((m) => [m.headers.get('id'), Buffer.from(m.data).toString()]),
      numberedContents(3),
    );
  } finally {
    sink.close();
    await nc.close();
  }
});

tests('a publish refused while later ones are in flight: the later ones are refused too, no gap', async (ctx) => {
  if (skipped(ctx)) return;
  const stream = `GAP_${ctx.stream}`;
  const { nc, sink, acked, failures, record } = await bareSink(ctx.nats.url, stream, { max_msg_size: 1_000 });
  try {
    // Message 2 is over the stream's max_msg_size: JetStream refuses it and would store 3 and 4.
    for (const [seq, bytes] of [
      [0, 10],
      [1, 10],
      [2, 5_000],
      [3, 10],
      [4, 10],
    ] as const) {
      sink.push(record(seq, bytes), seq);
    }
    await waitFor('the sink to fail', async () => failures.length > 0, { timeoutMs: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const got = await readStream(ctx.nats.url, stream);
    console.log(
      `  nats sink: refused message 2 (${failures[0]?.message.slice(0, 80)}…); stream holds ${got.map((m) => m.headers.get('id')).join(', ')}`,
    );
    assert.equal(acked, [0, 1], 'acked: the prefix before the refused one');
    assert.equal(
      got.map((m) => m.headers.get('id')),
      ['row-0', 'row-1'],
      'nothing landed past the refused message',
    );
  } finally {
    sink.close();
    await nc.close();
  }
});

tests('a resend the duplicate window has partly forgotten: the chain restarts, nothing wedges', async (ctx) => {
  if (skipped(ctx)) return;
  const stream = `WINDOW_${ctx.stream}`;
  const { nc, js, sink, acked, failures, record } = await bareSink(ctx.nats.url, stream, {
    duplicate_window: nanos(1_000),
  });
  try {
    // A session stored 0; more than the window later, 1 and 2; then it died before its acks
    // were confirmed. The next session resends 0 (forgotten: stored again), 1 and 2 (duplicates:
    // the stream's last id stays 0), then 3 expecting 2.
    const direct = async (seq: number) =>
      js.publish(`${stream}.kv`, Buffer.alloc(10, 97), {
        msgID: `1000-${seq}`,
        headers: messageHeaders(record(seq)),
      });
    await direct(0);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await direct(1);
    await direct(2);
    for (const seq of [0, 1, 2, 3, 4]) sink.push(record(seq), seq);
    assert.ok(await sink.drain(10_000), `drained; failures: ${failures.map((f) => f.message).join('; ')}`);
    const got = await readStream(ctx.nats.url, stream);
    console.log(`  nats sink: window cut through a resend; stream ${got.map((m) => m.headers.get('id')).join(', ')}`);
    assert.equal(failures, []);
    assert.equal(acked, [0, 1, 2, 3, 4], 'every record acked, in push order');
    assert.equal(
      got.map((m) => m.headers.get('id')),
      ['row-0', 'row-1', 'row-2', 'row-0', 'row-3', 'row-4'],
      'row-0 again (outside the window: a documented duplicate), then 3 and 4 in order',
    );
  } finally {
    sink.close();
    await nc.close();
  }
});

tests('NATS_USER + NATS_PASSWORD_FILE log in; a wrong password stops the relay, naming the settings', async (ctx) => {
  if (skipped(ctx)) return;
  const secured = await startNats({ dir: path.join(ctx.dir, 'auth'), args: ['--user', 'relay', '--pass', 's3cret'] });
  try {
    const passwordFile = path.join(ctx.dir, 'nats-password');
    await writeFile(passwordFile, 's3cret\n');
    const base = { ...ctx.walnut.relayEnv, ...ctx.env, NATS_SERVERS: secured.url, NATS_USER: 'relay' };

    const wrong = startWalnutProcess('relay', { ...base, NATS_PASSWORD: 'wrong' });
    ctx.started.push(wrong);
    await waitFor('the relay to exit', async () => !wrong.running && wrong.child.stdout?.closed !== false, {
      timeoutMs: 30_000,
    });
    const fatal = wrong.output.filter((line) => line.includes('"level":60'));
    assert.is(fatal.length, 1, `one fatal line:\n${wrong.tail(10)}`);
    assert.ok(wrong.child.exitCode !== 0, 'a non-zero exit');
    assert.match(fatal[0] as string, /"code":"SINK_SEND_FAILED"/);
    assert.match(fatal[0] as string, /NATS_USER\/NATS_PASSWORD/);
    console.log(`  nats sink: wrong password: ${JSON.parse(fatal[0] as string).msg}`);

    await startRelay({
      ...ctx,
      env: { ...ctx.env, NATS_SERVERS: secured.url, NATS_USER: 'relay', NATS_PASSWORD_FILE: passwordFile },
    });
    const id = randomUUID();
    await ctx.walnut.pool.query(
      `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) VALUES ($1, 'kv', 'auth', 'kv.set', '{}')`,
      [id],
    );
    const login = { user: 'relay', pass: 's3cret' };
    await waitFor(
      'the row in the secured stream',
      async () =>
        (await readStream(secured.url, ctx.stream, login).catch(() => [])).some((m) => m.headers.get('id') === id),
      { timeoutMs: 30_000 },
    );
  } finally {
    await Promise.all(ctx.started.splice(0).map((p) => p.stop('SIGKILL')));
    await secured.stop();
  }
});

tests('NATS_TOKEN_FILE logs in to a server that wants a token', async (ctx) => {
  if (skipped(ctx)) return;
  const secured = await startNats({ dir: path.join(ctx.dir, 'token'), args: ['--auth', 't0ken'] });
  try {
    const tokenFile = path.join(ctx.dir, 'nats-token');
    await writeFile(tokenFile, 't0ken\n');
    await startRelay({ ...ctx, env: { ...ctx.env, NATS_SERVERS: secured.url, NATS_TOKEN_FILE: tokenFile } });
    const id = randomUUID();
    await ctx.walnut.pool.query(
      `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) VALUES ($1, 'kv', 'token', 'kv.set', '{}')`,
      [id],
    );
    await waitFor(
      'the row in the stream',
      async () =>
        (await readStream(secured.url, ctx.stream, { token: 't0ken' }).catch(() => [])).some(
          (m) => m.headers.get('id') === id,
        ),
      { timeoutMs: 30_000 },
    );
  } finally {
    await Promise.all(ctx.started.splice(0).map((p) => p.stop('SIGKILL')));
    await secured.stop();
  }
});

tests(
  'an existing stream that does not capture the topics: left unchanged, the relay stops with CONFIG_INVALID',
  async (ctx) => {
    if (skipped(ctx)) return;
    const stream = `OTHER_${ctx.stream}`;
    await withNats(ctx.nats.url, async (nc) => {
      await (await jetstreamManager(nc)).streams.add({ name: stream, subjects: [`${stream}.elsewhere.>`] });
    });
    const relay = startWalnutProcess('relay', { ...ctx.walnut.relayEnv, ...ctx.env, RELAY_NATS_STREAM: stream });
    ctx.started.push(relay);
    await waitFor('the relay to exit', async () => !relay.running && relay.child.stdout?.closed !== false, {
      timeoutMs: 30_000,
    });
    const fatal = relay.output.filter((line) => line.includes('"level":60'));
    assert.is(fatal.length, 1, `one fatal line:\n${relay.tail(10)}`);
    const { code, msg } = JSON.parse(fatal[0] as string) as { code: string; msg: string };
    console.log(`  nats sink: ${code}: ${msg}`);
    assert.is(code, 'CONFIG_INVALID');
    assert.match(
      msg,
      `NATS stream ${stream} captures ${stream}.elsewhere.> but not ${ctx.walnut.topic.replace(/\.kv$/, '.>')}`,
    );
    const info = await withNats(ctx.nats.url, async (nc) => (await jetstreamManager(nc)).streams.info(stream));
    assert.equal(info.config.subjects, [`${stream}.elsewhere.>`], 'the stream is left as it was');
  },
);

tests('a lost slot is SLOT_MISSING, not a silent new start; slot create is the way on', async (ctx) => {
  if (skipped(ctx)) return;
  const { walnut } = ctx;
  // The earlier tests streamed from this slot: its marker is in WALNUT_RELAY_SLOTS.
  const markers = await withNats(ctx.nats.url, async (nc) =>
    (await jetstreamManager(nc)).streams.info('WALNUT_RELAY_SLOTS'),
  );
  assert.ok(markers.state.messages >= 1, 'a slot marker');
  await waitFor('the slot free', async () => {
    const r = await walnut.pool.query('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [walnut.slot]);
    return r.rows[0]?.active !== true;
  });
  await walnut.pool.query('SELECT pg_drop_replication_slot($1)', [walnut.slot]);

  const relay = startWalnutProcess('relay', { ...walnut.relayEnv, ...ctx.env });
  ctx.started.push(relay);
  assert.is(await exitCode(relay, 60_000), 1, relay.tail());
  const fatal = relay.output.find((line) => line.includes('"level":60')) ?? '';
  assert.match(fatal, '"code":"SLOT_MISSING"');
  assert.match(fatal, 'NATS stream WALNUT_RELAY_SLOTS');
  assert.match(fatal, `walnut-relay slot create --slot ${walnut.slot}`);
  const slots = await walnut.pool.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [walnut.slot]);
  assert.is(slots.rowCount, 0, 'the relay did not recreate the slot');

  const created = await runRelayCli(['slot', 'create', '--slot', walnut.slot], walnut.relayEnv);
  assert.is(created.code, 0, created.stderr);
  await startRelay(ctx);
});

tests('a bad NATS_SERVERS: one line naming it, exit 2', async (ctx) => {
  if (skipped(ctx)) return;
  for (const [servers, problem] of [
    ['http://127.0.0.1:4222', /must be host:port or nats:\/\/host:port/],
    ['', /required with RELAY_SINK=nats/],
  ] as const) {
    const relay = startWalnutProcess('relay', { ...ctx.walnut.relayEnv, RELAY_SINK: 'nats', NATS_SERVERS: servers });
    ctx.started.push(relay);
    await waitFor('the relay to exit', async () => !relay.running && relay.child.stderr?.closed !== false, {
      timeoutMs: 30_000,
    });
    const lines = relay.output.filter((line) => line.includes('NATS_SERVERS'));
    assert.is(relay.child.exitCode, 2, `exit 2:\n${relay.tail(5)}`);
    assert.is(lines.length, 1, relay.tail(5));
    assert.match(lines[0] as string, /^walnut-relay: --nats-servers \/ NATS_SERVERS: /);
    assert.match(lines[0] as string, problem);
  }
});

tests.run();
