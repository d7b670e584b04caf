/**
 * Redis Streams as a bench sink: a private redis-server (the stack's startRedis: appendonly yes,
 * appendfsync always, as the relay's Redis tests run it), the relay pointed at it with
 * RELAY_SINK=redis, and its limit measured by Redis's own redis-benchmark (Debian's
 * redis-tools, which redis-server depends on) sending XADDs with 1 KB values.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { startRedis } from '@walnut/stack';
import { run } from './limits.ts';
import type { BenchSink, SinkLimit } from './sinks.ts';

/**
 * XADDs per pipeline, as the relay sends them: one MULTI/EXEC at a time of up to
 * RELAY_MAX_BATCH_BYTES (768 KiB) of entries, and a 1 KB row's entry is about 1.2 KB with its key
 * and six header fields, so about 650 of them. One connection, like the relay's.
 */
export const RELAY_LIKE_PIPELINE = 650;
/** redis-benchmark's default clients, each pipelining a little: what Redis takes from many writers. */
const MANY_CLIENTS = { clients: 50, pipeline: 16 };

export async function startRedisSink(dir: string, log: (line: string) => void): Promise<BenchSink> {
  const redis = await startRedis({ dir: path.join(dir, 'redis'), log });
  const cli = (...args: string[]) =>
    execFileSync('redis-cli', ['-p', String(redis.port), ...args], { encoding: 'utf8' })
      .trim()
      .split('\n');
  // Read back from the running server, so the report says what this run had, not what the stack meant.
  const setting = (name: string) => cli('CONFIG', 'GET', name)[1] ?? 'unknown';
  const version = /redis_version:(\S+)/.exec(cli('INFO', 'server').join('\n'))?.[1] ?? 'unknown';
  const durability = `appendfsync ${setting('appendfsync')}`;
  const server = `redis-server ${version}, appendonly ${setting('appendonly')}, ${durability}`;
  log(`Redis Streams sink: ${server}`);
  let limits = 0;
  const xadds = async (records: number, recordBytes: number, clients: number, pipeline: number) => {
    // Each run on a stream of its own, so an earlier run's entries do not weigh on it.
    const stream = `bench.redis-benchmark-${++limits}`;
    const { code, out } = await run(
      'redis-benchmark',
      [
        ...['-p', String(redis.port), '-c', String(clients), '-P', String(pipeline), '-n', String(records), '--csv'],
        ...['XADD', stream, '*', 'payload', 'x'.repeat(recordBytes)],
      ],
      600_000,
    );
    // "test","rps","avg_latency_ms",…; then one row per command, its name first (with the 1 KB value).
    const row = out
      .split('\n')
      .find((l) => l.startsWith('"XADD '))
      ?.split('","');
    const rps = Number(row?.[1]);
    if (code !== 0 || !row || !Number.isFinite(rps)) {
      throw new Error(`redis-benchmark exited ${code}: ${out.trim().slice(-500)}`);
    }
    const tool = `redis-benchmark -c ${clients} -P ${pipeline} -n ${records} XADD <stream> * payload <${recordBytes} B>`;
    return { tool, recordsPerSecond: rps, line: `${rps} requests per second, avg ${row[2]} ms, p99 ${row[6]} ms` };
  };
  return {
    name: 'Redis Streams',
    server,
    durability,
    about: `The relay (\`RELAY_SINK=redis\`, its defaults otherwise) sends one XADD per row with an explicit id (commit LSN-position, which makes a resend a no-op) and the fields \`key\`, \`payload\` and six \`h:<header>\`, in one MULTI/EXEC per batch of up to \`RELAY_MAX_BATCH_BYTES\` (768 KiB, a few hundred entries of 1 KB rows: "rows per request" above), one batch at a time on one connection, and counts a row once Redis has answered its batch. With appendfsync always, Redis writes and fsyncs its append-only file once per event-loop pass, before it answers the commands read in that pass: one fsync per batch for a lone client. \`redis-benchmark\` sends \`XADD <stream> * payload <1 KB>\` (Redis picks the id, one field, no MULTI/EXEC) on one connection with ${RELAY_LIKE_PIPELINE} commands pipelined, as the relay's batches: the limit the relay is held to. Beside it, labelled, the same with ${MANY_CLIENTS.clients} connections of ${MANY_CLIENTS.pipeline} pipelined commands each (redis-benchmark's default clients), which share each fsync: what Redis takes from many writers, not from one relay. Each drain's stream is deleted after it.`,
    relayEnv: { RELAY_SINK: 'redis', REDIS_URL: redis.url },
    // XADD creates the stream.
    prepare: async () => {},
    forget: async (stream) => {
      cli('DEL', stream);
    },
    async limit(records: number, recordBytes: number): Promise<SinkLimit[]> {
      return [
        await xadds(records, recordBytes, 1, RELAY_LIKE_PIPELINE),
        await xadds(records, recordBytes, MANY_CLIENTS.clients, MANY_CLIENTS.pipeline),
      ];
    },
    stop: () => redis.stop(),
  };
}
