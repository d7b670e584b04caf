/**
 * Exactly-once refuses a checkpoint that is not this slot's history:
 * - two slots under one RELAY_TRANSACTIONAL_ID: the second stops with
 *   CONFIG_INVALID before fencing, and the first streams on;
 * - a server restored from a copy taken before the checkpoint, whose WAL has
 *   since grown past the checkpoint's LSN with other transactions: the relay
 *   stops with CHECKPOINT_MISMATCH instead of skipping them, without
 *   confirming any, and a new RELAY_TRANSACTIONAL_ID relays them all.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseLsn } from '@walnut/schema';
import {
  countDelivery,
  type PostgresHandle,
  readTopic,
  slotLsn,
  startPostgres,
  startWalnutProcess,
  type WalnutFixture,
  type WalnutProcess,
  waitFor,
  walLsn,
  walnutFixture,
} from '@walnut/stack';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const RELAY_ENV = { RELAY_DELIVERY: 'exactly-once', RELAY_MAX_BATCH_RECORDS: '50' };

interface Ctx {
  dir: string;
  fixtures: WalnutFixture[];
  servers: PostgresHandle[];
}

const identity = suite<Ctx>('exactly-once checkpoint identity');

identity.before((ctx) => {
  ctx.dir = mkdtempSync(path.join(tmpdir(), 'walnut-eo-identity-'));
  chmodSync(ctx.dir, 0o755); // the postgres OS user must reach the cluster inside
  ctx.fixtures = [];
  ctx.servers = [];
});

identity.after(async (ctx) => {
  for (const fixture of ctx.fixtures) await fixture.close().catch(() => {});
  for (const server of ctx.servers) await server.stop('immediate').catch(() => {});
  rmSync(ctx.dir, { recursive: true, force: true });
});

/** Commits `transactions` transactions of `rows` outbox rows each; returns the row ids. */
async function write(walnut: WalnutFixture, transactions: number, rows = 20): Promise<string[]> {
  const ids: string[] = [];
  for (let t = 0; t < transactions; t++) {
    const batch = Array.from({ length: rows }, () => randomUUID());
    await walnut.pool.query(
      `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
       SELECT id, 'kv', 'k' || (n % 7), 'kv.set', jsonb_build_object('n', n)
         FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, n)`,
      [batch],
    );
    ids.push(...batch);
  }
  return ids;
}

/** Waits until every id is in the fixture's topic (read_committed); returns what was read. */
async function relayed(walnut: WalnutFixture, ids: readonly string[]) {
  const wanted = new Set(ids);
  const records = await readTopic(
    walnut.kafka,
    walnut.topic,
    (seen) => [...wanted].every((id) => seen.some((r) => r.headers.id === id)),
    120_000,
  );
  const { missing } = countDelivery(
    ids,
    records.map((r) => r.headers.id),
  );
  assert.is(missing.length, 0, `${missing.length} of ${ids.length} rows missing from ${walnut.topic}`);
  return records;
}

/** Waits for a relay that is expected to give up; returns its one fatal line. */
async function fatalExit(relay: WalnutProcess): Promise<{ code: string; msg: string }> {
  await waitFor('the relay to exit', async () => !relay.running, { timeoutMs: 60_000 }).catch((error: Error) => {
    throw new Error(`${error.message}; relay output:\n${relay.tail(15)}`);
  });
  const fatal = relay.output.filter((line) => line.includes('"level":60'));
  assert.is(fatal.length, 1, `one fatal line, got:\n${relay.tail(10)}`);
  assert.ok(relay.child.exitCode !== 0, `exit code ${relay.child.exitCode}`);
  return JSON.parse(fatal[0] as string) as { code: string; msg: string };
}

identity('a RELAY_TRANSACTIONAL_ID shared by two slots stops the second with CONFIG_INVALID', async (ctx) => {
  const first = await walnutFixture('eo_shared_a');
  const second = await walnutFixture('eo_shared_b');
  ctx.fixtures.push(first, second);
  const env = { ...RELAY_ENV, RELAY_TRANSACTIONAL_ID: `shared-${randomUUID()}` };
  const relay = await first.startRelay(env);
  await relayed(first, await write(first, 3));
  // The second slot exists already (a relay that ran before, under its own id): it opens as ready.
  await second.pool.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [second.slot]);

  const intruder = startWalnutProcess('relay', { ...second.relayEnv, ...env });
  const fatal = await fatalExit(intruder);
  console.log(`  shared transactional id: ${fatal.code}: ${fatal.msg}`);
  assert.is(fatal.code, 'CONFIG_INVALID');
  assert.ok(fatal.msg.includes(first.slot) && fatal.msg.includes(second.slot), 'names both slots');
  assert.match(fatal.msg, /its own RELAY_TRANSACTIONAL_ID/);

  // The first was not fenced: it streams on in the same session.
  await relayed(first, await write(first, 3));
  assert.ok(relay.running);
  const states = relay.output.filter((line) => /"state":"/.test(line)).map((line) => /"state":"(\w+)"/.exec(line)?.[1]);
  assert.equal(states, ['streaming'], 'one session, never in backoff');
  await relay.stop('SIGTERM');
});

identity('a restored server whose WAL passed the checkpoint stops with CHECKPOINT_MISMATCH', async (ctx) => {
  const server = await startPostgres({ dir: path.join(ctx.dir, 'server') });
  ctx.servers.push(server);
  const walnut = await walnutFixture('eo_restore', { databaseUrl: server.url });
  ctx.fixtures.push(walnut);

  let relay = await walnut.startRelay(RELAY_ENV);
  await relayed(walnut, await write(walnut, 3));
  await relay.stop('SIGTERM');

  // The backup: a cold copy, slot included, confirmed where the relay stopped.
  await server.stop('fast');
  const backup = path.join(ctx.dir, 'backup');
  copyCluster(server.dataDir, backup);
  await server.start();
  const slotAtBackup = await slotLsn(walnut.pool, walnut.slot);

  relay = await walnut.startRelay(RELAY_ENV);
  const lost = await write(walnut, 10);
  const records = await relayed(walnut, lost);
  await relay.stop('SIGKILL');
  const checkpointLsn = records
    .map((r) => r.headers['walnut-commit-lsn'] as string)
    .reduce((a, b) => (parseLsn(a) > parseLsn(b) ? a : b));

  // Restore the backup: the same system identifier and slot, and a WAL that ends before the checkpoint.
  await server.stop('immediate');
  await rename(server.dataDir, path.join(ctx.dir, 'lost-history'));
  copyCluster(backup, server.dataDir);
  await server.start();
  assert.is(await slotLsn(walnut.pool, walnut.slot), slotAtBackup);
  // The app writes on, the same rows as before the restore: its WAL passes the checkpoint's LSN.
  const fresh: string[] = [];
  while ((await walLsn(walnut.pool)) <= parseLsn(checkpointLsn)) fresh.push(...(await write(walnut, 10)));

  const restarted = startWalnutProcess('relay', { ...walnut.relayEnv, ...RELAY_ENV });
  const fatal = await fatalExit(restarted);
  console.log(
    `  restored server: ${fresh.length} new rows, checkpoint at ${checkpointLsn}; ${fatal.code}: ${fatal.msg}`,
  );
  assert.is(fatal.code, 'CHECKPOINT_MISMATCH');
  assert.is(await slotLsn(walnut.pool, walnut.slot), slotAtBackup, 'nothing confirmed: the slot replays the new rows');

  // A new transactional id starts exactly-once afresh and relays every row the restored server holds.
  relay = await walnut.startRelay({ ...RELAY_ENV, RELAY_TRANSACTIONAL_ID: `after-restore-${randomUUID()}` });
  await relayed(walnut, fresh);
  await relay.stop('SIGTERM');
});

/** cp -a: the copy keeps the postgres OS user as its owner. */
function copyCluster(from: string, to: string): void {
  execFileSync('cp', ['-a', from, to]);
}

identity.run();
