/**
 * A Kafka Connect worker in standalone mode running Debezium's Postgres
 * connector with its outbox event router, from infra/debezium's jars. Its REST
 * port is free, its offsets file and configs live in the bench's temp dir, and
 * the JVM runs in its own process group, killed whole on stop() or when the
 * bench exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureMavenJars, freePort } from '@walnut/stack';
import { TUNED_PRODUCER_PROPS } from './limits.ts';

const projectDir = fileURLToPath(new URL('../../infra/debezium/', import.meta.url));

/** The Debezium release infra/debezium/pom.xml resolves, for the report. */
export const DEBEZIUM_VERSION = '3.4.3.Final';

/**
 * Debezium's throughput settings (postgresql connector docs, "max.batch.size", "max.queue.size"):
 * batches 8 times the default 2,048 events, a queue four batches deep (it must exceed the batch).
 */
export const DEBEZIUM_TUNING = ['max.batch.size=16384', 'max.queue.size=65536', 'poll.interval.ms=50'];
/** How often Connect flushes source offsets; Debezium confirms the slot's LSN only after a flush. */
export const OFFSET_FLUSH_INTERVAL_MS = 1_000;

export interface DebeziumConnectOptions {
  /** The bench's temp dir: configs, offsets and the worker's log go in a folder of their own. */
  dir: string;
  databaseUrl: string;
  brokers: string[];
  slot: string;
  publication: string;
  /** Outbox rows are routed by aggregatetype to `${topicPrefix}.<aggregatetype>`, as the relay's template does. */
  topicPrefix: string;
  log: (line: string) => void;
}

export interface DebeziumConnect {
  readonly pid: number | undefined;
  /** The line that says the connector or its task died while the JVM lives on (standalone keeps running). */
  readonly fatal: string | undefined;
  readonly output: readonly string[];
  readonly running: boolean;
  /** Resolves with the first line matching `pattern`; rejects if the JVM exits first. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<string>;
  stop(): Promise<void>;
}

export async function startDebeziumConnect(opts: DebeziumConnectOptions): Promise<DebeziumConnect> {
  const jars = await ensureMavenJars({
    projectDir,
    what: "Debezium's and Kafka Connect's jars",
    marker: 'debezium-connector-postgres-',
    log: opts.log,
  });
  const url = new URL(opts.databaseUrl);
  const restPort = await freePort();
  const worker = [
    `bootstrap.servers=${opts.brokers.join(',')}`,
    // The relay's records are the payload's bytes keyed by aggregateid: the same here.
    'key.converter=org.apache.kafka.connect.storage.StringConverter',
    'value.converter=org.apache.kafka.connect.storage.StringConverter',
    `offset.storage.file.filename=${path.join(opts.dir, 'offsets')}`,
    `offset.flush.interval.ms=${OFFSET_FLUSH_INTERVAL_MS}`,
    `listeners=http://127.0.0.1:${restPort}`,
    // Every plugin here ships a ServiceLoader manifest (KIP-898): without this, Connect also scans
    // each jar by reflection, which took most of its 40-50 s start-up on this machine.
    'plugin.discovery=service_load',
    // The produce settings Kafka's own limit is measured with (acks=all, idempotent, 1 MiB batches).
    ...TUNED_PRODUCER_PROPS.map((p) => `producer.${p}`),
    // Connect's source producers default to one request in flight (and no idempotence); idempotent,
    // five keep each partition's order and let batches overlap round trips, as the relay's do.
    'producer.max.in.flight.requests.per.connection=5',
  ];
  const connector = [
    'name=bench-debezium',
    'connector.class=io.debezium.connector.postgresql.PostgresConnector',
    'tasks.max=1',
    `database.hostname=${url.hostname}`,
    `database.port=${url.port || '5432'}`,
    `database.user=${decodeURIComponent(url.username)}`,
    `database.password=${decodeURIComponent(url.password)}`,
    `database.dbname=${url.pathname.slice(1)}`,
    'topic.prefix=bench_debezium',
    'plugin.name=pgoutput',
    // The slot and publication exist before the rows, as the relay's do: nothing to snapshot or create.
    `slot.name=${opts.slot}`,
    `publication.name=${opts.publication}`,
    'publication.autocreate.mode=disabled',
    'snapshot.mode=no_data',
    'table.include.list=public.outbox',
    ...DEBEZIUM_TUNING,
    'transforms=outbox',
    'transforms.outbox.type=io.debezium.transforms.outbox.EventRouter',
    // Walnut's outbox is Debezium's default layout (packages/schema/src/tables.ts): id, aggregatetype,
    // aggregateid (the key), type, payload. Spelled out so a change of defaults cannot go unseen.
    'transforms.outbox.table.field.event.id=id',
    'transforms.outbox.table.field.event.key=aggregateid',
    'transforms.outbox.table.field.event.payload=payload',
    'transforms.outbox.table.fields.additional.placement=type:header,aggregatetype:header',
    'transforms.outbox.route.by.field=aggregatetype',
    `transforms.outbox.route.topic.replacement=${opts.topicPrefix}.\${routedByValue}`,
  ];
  const workerFile = path.join(opts.dir, 'worker.properties');
  const connectorFile = path.join(opts.dir, 'connector.properties');
  await writeFile(workerFile, `${worker.join('\n')}\n`);
  await writeFile(connectorFile, `${connector.join('\n')}\n`);

  const java = process.env.JAVA_HOME ? `${process.env.JAVA_HOME}/bin/java` : 'java';
  const child = spawn(
    java,
    [
      // Connect's own start script's heap.
      '-Xms256m',
      '-Xmx2g',
      `-Dlog4j2.configurationFile=${path.join(projectDir, 'log4j2.xml')}`,
      '-cp',
      `${jars}/*`,
      'org.apache.kafka.connect.cli.ConnectStandalone',
      workerFile,
      connectorFile,
    ],
    // Its own process group, so stop() reaches every thread and any child it forks.
    { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return connectHandle(child);
}

/** A task or connector that fails stays failed in standalone mode until restarted: nothing more will come. */
const FATAL = /Task threw an uncaught and unrecoverable exception|Failed to (create|start) connector/;

function connectHandle(child: ChildProcess): DebeziumConnect {
  const output: string[] = [];
  let fatal: string | undefined;
  const listeners: Array<(line: string) => void> = [];
  let exited = false;
  const onData = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      output.push(line);
      if (fatal === undefined && FATAL.test(line)) fatal = line;
      if (output.length > 5_000) output.splice(0, 1_000);
      for (const l of listeners) l(line);
    }
  };
  child.once('error', (error) => output.push(`could not start java: ${error.message}`));
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exit = new Promise<void>((resolve) => child.once('close', () => resolve()));
  void exit.then(() => {
    exited = true;
  });
  const killGroup = (signal: NodeJS.Signals) => {
    if (exited || child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // Already gone.
    }
  };
  // A bench that dies mid-drain must not leave a JVM holding the slot.
  const onExit = () => killGroup('SIGKILL');
  process.once('exit', onExit);
  return {
    get pid() {
      return child.pid;
    },
    get fatal() {
      return fatal;
    },
    output,
    get running() {
      return !exited;
    },
    waitForLine(pattern, timeoutMs) {
      const seen = output.find((l) => pattern.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${pattern} in ${timeoutMs / 1000} s`)), timeoutMs);
        listeners.push((line) => {
          if (fatal !== undefined) {
            clearTimeout(timer);
            reject(new Error('the connector failed before it streamed'));
          } else if (pattern.test(line)) {
            clearTimeout(timer);
            resolve(line);
          }
        });
        void exit.then(() => {
          clearTimeout(timer);
          reject(new Error(`Kafka Connect exited before ${pattern}`));
        });
      });
    },
    async stop() {
      process.removeListener('exit', onExit);
      killGroup('SIGTERM');
      const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 15_000).unref());
      if ((await Promise.race([exit, timeout])) === 'timeout') {
        killGroup('SIGKILL');
        await exit;
      }
    },
  };
}
