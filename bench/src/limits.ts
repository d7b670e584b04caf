/**
 * The two ceilings a WAL-to-Kafka relay cannot beat: how fast Postgres decodes
 * the slot (pg_recvlogical, no consumer work at all) and how fast Kafka takes
 * acks=all produce requests from a client that does nothing else
 * (Kafka's own ProducerPerformance, from the jars the harness already has).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * A Postgres client program (pg_recvlogical, pgbench): from PG_BIN when it is
 * there, else from PATH (Debian's postgresql-client, which ./walnut install
 * installs). The registry's server builds the stack runs do not ship them.
 */
export function pgClientTool(name: string): string {
  const inPgBin = process.env.PG_BIN ? path.join(process.env.PG_BIN, name) : undefined;
  return inPgBin && existsSync(inPgBin) ? inPgBin : name;
}

/** Runs a tool to its exit (SIGKILLed after timeoutMs): its exit code and its stdout and stderr together. */
export function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return once(child, 'exit').then(([code]) => {
    clearTimeout(timer);
    return { code: code as number | null, out };
  });
}

/** Seconds pg_recvlogical takes to decode `slot` from its start up to `endLsn`. */
export async function pgRecvlogicalSeconds(opts: {
  databaseUrl: string;
  slot: string;
  publication: string;
  endLsn: string;
  timeoutMs: number;
}): Promise<number> {
  const args = [
    '-d',
    opts.databaseUrl,
    '-S',
    opts.slot,
    '--start',
    '--no-loop',
    '-o',
    'proto_version=1',
    '-o',
    `publication_names=${opts.publication}`,
    '--endpos',
    opts.endLsn,
    '-f',
    '/dev/null',
  ];
  // The binaries refuse nothing as root, but the harness's cluster runs as postgres; do as it does.
  const asRoot = process.getuid?.() === 0;
  const [cmd, argv] = asRoot
    ? ['runuser', ['-u', 'postgres', '--', pgClientTool('pg_recvlogical'), ...args]]
    : [pgClientTool('pg_recvlogical'), args];
  const started = performance.now();
  const { code, out } = await run(cmd, argv as string[], opts.timeoutMs);
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`pg_recvlogical exited ${code}: ${out.trim()}`);
  return seconds;
}

/**
 * Kafka's produce limit is what its own client reaches with the best settings it accepts, not with
 * its defaults (16 KB batches, no linger), which a tuned producer beats by more than twice here.
 * Large batches and a short linger, still acks=all and idempotent: what a relay may use too.
 */
export const TUNED_PRODUCER_PROPS = [
  'acks=all',
  'enable.idempotence=true',
  'batch.size=1048576',
  'linger.ms=10',
  'buffer.memory=268435456',
  'max.request.size=10485760',
];
export const DEFAULT_PRODUCER_PROPS = ['acks=all'];
export type ProducerSettings = 'tuned' | 'defaults';

export interface ProducerPerfResult {
  settings: ProducerSettings;
  recordsPerSecond: number;
  mbPerSecond: number;
  avgLatencyMs: number;
  line: string;
}

/** Runs Kafka's ProducerPerformance and parses its final summary line. */
export async function kafkaProducerPerf(opts: {
  jarDir: string;
  brokers: string[];
  topic: string;
  records: number;
  recordBytes: number;
  timeoutMs: number;
  settings: ProducerSettings;
}): Promise<ProducerPerfResult> {
  const java = process.env.JAVA_HOME ? `${process.env.JAVA_HOME}/bin/java` : 'java';
  const { code, out } = await run(
    java,
    [
      '-cp',
      `${opts.jarDir}/*`,
      'org.apache.kafka.tools.ProducerPerformance',
      '--topic',
      opts.topic,
      '--num-records',
      String(opts.records),
      '--record-size',
      String(opts.recordBytes),
      '--throughput',
      '-1',
      '--producer-props',
      `bootstrap.servers=${opts.brokers.join(',')}`,
      ...(opts.settings === 'tuned' ? TUNED_PRODUCER_PROPS : DEFAULT_PRODUCER_PROPS),
    ],
    opts.timeoutMs,
  );
  // "50000 records sent, 41666.7 records/sec (40.69 MB/sec), 312.45 ms avg latency, …"
  const line = out
    .split('\n')
    .reverse()
    .find((l) => /records sent,/.test(l));
  const m = line && /([\d.]+) records\/sec \(([\d.]+) MB\/sec\), ([\d.]+) ms avg latency/.exec(line);
  if (code !== 0 || !line || !m) throw new Error(`ProducerPerformance exited ${code}: ${out.trim().slice(-2000)}`);
  return {
    settings: opts.settings,
    recordsPerSecond: Number(m[1]),
    mbPerSecond: Number(m[2]),
    avgLatencyMs: Number(m[3]),
    line: line.trim(),
  };
}
