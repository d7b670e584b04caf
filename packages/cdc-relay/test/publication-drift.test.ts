/**
 * Issue 23 item 6: the publication cannot drift silently. Before this check, a
 * publication set to another table made a restarted relay report `streaming`,
 * confirm its slot past three writes and send nothing to Kafka. Now, at every
 * session start and every RELAY_PUBLICATION_CHECK_MS while streaming, a
 * publication that does not publish the configured outbox's inserts (or an
 * outbox that is another table than the one streamed) stops the session with
 * PUBLICATION_DRIFT: the relay stays up, `blocked` (/ready 503, in
 * walnut_relay_state; the code on the status page), and its slot confirms nothing
 * past rows it could not see.
 */
import {
  confirmedLsn,
  httpUrl,
  killAfterEach,
  pause,
  readTopic,
  runRelayCli,
  startWalnutProcess,
  type WalnutFixture,
  type WalnutProcess,
  walLsn,
  walnutFixture,
} from '@walnut/stack';
import pg from 'pg';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const CHECK_MS = 1_000;
/** Short status reports: a relay without the LSN ceiling would confirm past a gap at once. */
const FAST = {
  RELAY_PUBLICATION_CHECK_MS: String(CHECK_MS),
  RELAY_STATUS_INTERVAL_MS: '200',
  RELAY_BACKOFF_MAX_MS: '1000',
};

const drift = suite<{ walnut: WalnutFixture }>('publication drift');
/** Relays a test starts itself (walnut.startRelay waits for `streaming`, which these never reach). */
const killAfterTest = killAfterEach(drift);
drift.before.each(async (ctx) => {
  ctx.walnut = await walnutFixture('pub_drift');
});
drift.after.each(async ({ walnut }) => {
  await walnut?.close();
});

function startRelay(walnut: WalnutFixture, env: Record<string, string>): WalnutProcess {
  return killAfterTest(startWalnutProcess('relay', { ...walnut.env, ...FAST, ...env }));
}

async function insert(
  walnut: WalnutFixture,
  n: number,
  table = 'outbox',
  client: pg.ClientBase | pg.Pool = walnut.pool,
) {
  await client.query(
    `INSERT INTO ${pg.escapeIdentifier(table)} (id, aggregatetype, aggregateid, type, payload)
     SELECT gen_random_uuid(), 'kv', 'k' || g, 'kv.set', '{}' FROM generate_series(1, $1::int) g`,
    [n],
  );
}

/** A first relay creates the slot and publication, relays two rows and stops: the state drift starts from. */
async function relayTwoRows(walnut: WalnutFixture): Promise<void> {
  const first = await walnut.startRelay(FAST);
  await insert(walnut, 2);
  await readTopic(walnut.kafka, walnut.topic, (r) => r.length >= 2, 30_000);
  assert.is(await first.stop('SIGTERM'), 0);
}

/**
 * Waits for PUBLICATION_DRIFT, then checks what a user or an orchestrator sees:
 * /ready 503, walnut_relay_state blocked, the code on the status page; and that
 * the slot confirmed nothing past `gapStart` (the WAL position before rows the
 * relay could not see). Returns the error message.
 */
async function assertStopped(walnut: WalnutFixture, relay: WalnutProcess, gapStart: bigint): Promise<string> {
  const base = await httpUrl(relay);
  const line = await relay.waitForLine(/"code":"PUBLICATION_DRIFT"/, 30_000);
  const { error } = JSON.parse(line) as { error: string };
  assert.ok(relay.running, 'the relay stays up, saying so');
  assert.is((await fetch(`${base}/ready`)).status, 503);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, 'walnut_relay_state{state="blocked"} 1');
  assert.match(metrics, 'walnut_relay_state{state="streaming"} 0');
  assert.match(metrics, /walnut_relay_reconnects_total\{code="PUBLICATION_DRIFT"\} [1-9]/);
  const status = (await (await fetch(`${base}/status.json`)).json()) as { lastError: { code: string } | null };
  assert.is(status.lastError?.code, 'PUBLICATION_DRIFT');
  // Still not streaming a few checks later, and still nothing confirmed past the gap.
  await pause(3 * CHECK_MS);
  assert.is((await fetch(`${base}/ready`)).status, 503);
  const confirmed = await confirmedLsn(walnut.pool, walnut.slot);
  assert.ok(confirmed <= gapStart, `confirmed_flush_lsn ${confirmed} is not past the gap, which starts at ${gapStart}`);
  assert.match(error, 'walnut-relay replay --since');
  return error;
}

drift('a publication for another table: stops at start; fixed, it streams on by itself', async ({ walnut }) => {
  const publication = walnut.env.RELAY_PUBLICATION as string;
  await relayTwoRows(walnut);
  await walnut.pool.query('CREATE TABLE other (id int)');
  await walnut.pool.query(`ALTER PUBLICATION ${pg.escapeIdentifier(publication)} SET TABLE other`);
  const gapStart = await walLsn(walnut.pool);
  await insert(walnut, 3); // what the user wrote through the API: never sent

  const relay = startRelay(walnut, {});
  const error = await assertStopped(walnut, relay, gapStart);
  assert.match(error, `ALTER PUBLICATION "${publication}" ADD TABLE "public"."outbox"`);
  assert.match(error, 'walnut-relay publication sync');

  // The named fix; the relay, waiting in backoff, streams again without a restart.
  const sync = await runRelayCli(['publication', 'sync'], walnut.env);
  assert.is(sync.code, 0, sync.stderr);
  await relay.waitForLine(/"state":"streaming"/, 30_000);
  await insert(walnut, 1);
  const records = await readTopic(walnut.kafka, walnut.topic, (r) => r.length >= 3, 30_000);
  assert.is(records.length, 3, 'the 3 rows of the gap are not in the slot; replay re-publishes them');
  await relay.stop('SIGTERM');
});

drift("publish = 'update': stops at start", async ({ walnut }) => {
  const publication = walnut.env.RELAY_PUBLICATION as string;
  await relayTwoRows(walnut);
  await walnut.pool.query(`ALTER PUBLICATION ${pg.escapeIdentifier(publication)} SET (publish = 'update')`);
  const gapStart = await walLsn(walnut.pool);
  await insert(walnut, 3);

  const relay = startRelay(walnut, {});
  const error = await assertStopped(walnut, relay, gapStart);
  assert.match(error, "SET (publish = 'insert')");
  await relay.stop('SIGTERM');
});

drift('a row filter on the outbox (15+): stops at start', async ({ walnut }) => {
  const version = await walnut.pool.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
  if (Number(version.rows[0]?.v) < 150000) {
    console.log('  publication drift: SKIPPED row filter case: row filters need Postgres 15+');
    return;
  }
  const publication = walnut.env.RELAY_PUBLICATION as string;
  await relayTwoRows(walnut);
  await walnut.pool.query(
    `ALTER PUBLICATION ${pg.escapeIdentifier(publication)} SET TABLE outbox WHERE (aggregatetype <> 'kv')`,
  );
  const gapStart = await walLsn(walnut.pool);
  await insert(walnut, 3); // filtered out: never decoded

  const relay = startRelay(walnut, {});
  const error = await assertStopped(walnut, relay, gapStart);
  assert.match(error, 'has a row filter');
  assert.match(error, `ALTER PUBLICATION "${publication}" SET TABLE "public"."outbox"`);
  await relay.stop('SIGTERM');
});

drift('the outbox dropped and created again while streaming: stops within the check interval', async ({ walnut }) => {
  const publication = pg.escapeIdentifier(walnut.env.RELAY_PUBLICATION as string);
  const relay = await walnut.startRelay(FAST);
  await insert(walnut, 2);
  await readTopic(walnut.kafka, walnut.topic, (r) => r.length >= 2, 30_000);
  const gapStart = await walLsn(walnut.pool);
  // One transaction, so no check can see the outbox unpublished in between: only the
  // table's oid tells. The 3 rows inserted before the new table joins the publication
  // are never decoded; the 2 after it are.
  const client = await walnut.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('ALTER TABLE outbox RENAME TO outbox_old');
    await client.query('CREATE TABLE outbox (LIKE outbox_old INCLUDING ALL)');
    await client.query('DROP TABLE outbox_old');
    await insert(walnut, 3, 'outbox', client);
    await client.query(`ALTER PUBLICATION ${publication} SET TABLE outbox`);
    await insert(walnut, 2, 'outbox', client);
    await client.query('COMMIT');
  } finally {
    client.release();
  }
  const error = await assertStopped(walnut, relay, gapStart);
  assert.match(error, /dropped and created again \(oid \d+, now \d+\)/);
  await relay.stop('SIGTERM');
});

drift('RELAY_OUTBOX_TABLE changed between runs: stops at start', async ({ walnut }) => {
  await relayTwoRows(walnut);
  await walnut.pool.query('CREATE TABLE outbox2 (LIKE outbox INCLUDING ALL)');
  const gapStart = await walLsn(walnut.pool);
  // Rows of the old outbox the slot still holds: a relay streaming outbox2 would skip them.
  await insert(walnut, 3);
  await insert(walnut, 3, 'outbox2');

  const relay = startRelay(walnut, { RELAY_OUTBOX_TABLE: 'public.outbox2' });
  const error = await assertStopped(walnut, relay, gapStart);
  assert.match(error, 'does not publish the outbox table "public"."outbox2"');
  await relay.stop('SIGTERM');
});

drift('the publication altered while streaming: caught within the check interval', async ({ walnut }) => {
  const publication = pg.escapeIdentifier(walnut.env.RELAY_PUBLICATION as string);
  const relay = await walnut.startRelay(FAST);
  await insert(walnut, 2);
  await readTopic(walnut.kafka, walnut.topic, (r) => r.length >= 2, 30_000);
  await walnut.pool.query('CREATE TABLE other (id int)');
  await walnut.pool.query(`ALTER PUBLICATION ${publication} SET TABLE other`);
  const gapStart = await walLsn(walnut.pool);
  const alteredAt = performance.now();
  await insert(walnut, 3);
  await relay.waitForLine(/"code":"PUBLICATION_DRIFT"/, 30_000);
  const caughtMs = performance.now() - alteredAt;
  console.log(
    `  publication drift: mid-stream drift caught after ${caughtMs.toFixed(0)} ms (check every ${CHECK_MS} ms)`,
  );
  // The check interval, plus a loaded 2-core machine's slack for one query.
  assert.ok(caughtMs < CHECK_MS + 4_000, `caught after ${caughtMs} ms`);
  await assertStopped(walnut, relay, gapStart);
  await relay.stop('SIGTERM');
});

drift.run();
