/**
 * The polling baseline as its own process, for the end-to-end runs: in the
 * benchmark's process it would share an event loop with the load generator,
 * while Walnut's relay has a process to itself.
 *
 *   DATABASE_URL=… KAFKA_BROKERS=… node --import tsx bench/src/polling-relay-cli.ts --table outbox --topic t
 *
 * Prints "polling relay running" once connected; SIGTERM stops it after the poll in progress.
 */
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { PollingRelay } from './polling-relay.ts';

const { values } = parseArgs({ options: { table: { type: 'string' }, topic: { type: 'string' } } });
const { DATABASE_URL: databaseUrl, KAFKA_BROKERS: brokers } = process.env;
if (!values.table || !values.topic || !databaseUrl || !brokers) {
  console.error('polling-relay: needs --table, --topic, DATABASE_URL and KAFKA_BROKERS');
  process.exit(2);
}
const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
const kafka = new Kafka({ clientId: 'bench-polling-relay', brokers: brokers.split(','), logLevel: logLevel.NOTHING });
const relay = new PollingRelay({ pool, kafka, table: values.table, topic: values.topic });
await relay.start();
console.log('polling relay running');

const stop = async (code: number) => {
  await relay.stop();
  await pool.end();
  process.exit(code);
};
process.once('SIGTERM', () => void stop(0));
// A dead loop must end the process, so the benchmark sees it exit rather than wait on a silent relay.
const timer = setInterval(() => {
  if (relay.error === undefined) return;
  clearInterval(timer);
  console.error(`polling-relay: ${relay.error instanceof Error ? relay.error.message : String(relay.error)}`);
  void stop(1);
}, 200);
