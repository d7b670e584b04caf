import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { randomClusterId, serverProperties } from './kafka-config.ts';
import { ensureKafkaJars, findJava } from './kafka-jars.ts';
import { KafkaProcess, kafkaNodeFiles } from './kafka-process.ts';
import { rememberedPorts } from './ports.ts';

export interface KafkaHandle {
  /** ['127.0.0.1:<port>'] */
  brokers: string[];
  /** false when the brokers came from KAFKA_BROKERS: then stop/start/kill reject with NOT_OWNED. */
  owned: boolean;
  /** SIGTERM (controlled shutdown) and wait for exit; SIGKILL after 30 s. */
  stop(): Promise<void>;
  /** Same ports, same data; resolves once the broker serves requests again. */
  start(): Promise<void>;
  /** SIGKILL and wait for exit: a crash, for fault tests. */
  kill(): Promise<void>;
}

const readyTimeoutMs = 90_000;

/**
 * A single-node KRaft broker+controller from the Maven-resolved jars, in
 * `<dir>/kafka` (data, server.properties, cluster.id, server.log), with the
 * JVM's own output in `<dir>/kafka.log`. Its two ports stay the same across
 * stop/start so clients find it again, and across runs on the same dir when free.
 */
export async function startKafka(opts: { dir: string; log?: (line: string) => void }): Promise<KafkaHandle> {
  const log = opts.log ?? (() => {});
  const [jars, java] = await Promise.all([ensureKafkaJars({ log }), findJava()]);
  const files = kafkaNodeFiles(path.resolve(opts.dir, 'kafka'), path.resolve(opts.dir, 'kafka.log'));
  await mkdir(files.home, { recursive: true });
  const kafka = new KafkaProcess('kafka', java, jars, files, log);
  const portsFile = path.join(files.home, 'ports');
  await kafka.killLeftover(portsFile);
  const [brokerPort, controllerPort] = (await rememberedPorts(portsFile, 2)) as [number, number];
  await writeFile(files.propsFile, serverProperties({ dataDir: files.dataDir, brokerPort, controllerPort }));
  if (!kafka.formatted) {
    const idFile = path.join(files.home, 'cluster.id');
    const clusterId = existsSync(idFile) ? (await readFile(idFile, 'utf8')).trim() : randomClusterId();
    await writeFile(idFile, `${clusterId}\n`);
    await kafka.format(clusterId);
  }

  const brokers = [`127.0.0.1:${brokerPort}`];
  const start = async () => {
    if (kafka.running) return;
    log(`starting kafka on ${brokers[0]} (controller 127.0.0.1:${controllerPort})`);
    await kafka.start(
      `Kafka to serve requests on ${brokers[0]}`,
      async () => {
        await probe(brokers);
        return true;
      },
      readyTimeoutMs,
    );
  };
  await start();
  return {
    brokers,
    owned: true,
    start,
    stop: () => kafka.terminate('SIGTERM'),
    kill: () => kafka.terminate('SIGKILL'),
  };
}

const probeTopic = 'walnut-stack.ready';

/**
 * Ready means served, not listening: a topic can be created and has a leader,
 * and the group coordinator answers (a fresh broker says "coordinator not
 * available" until __consumer_offsets is created and loaded).
 */
async function probe(brokers: string[]): Promise<void> {
  const admin = new Kafka({
    clientId: 'walnut-stack-probe',
    brokers,
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
    connectionTimeout: 2_000,
    requestTimeout: 5_000,
  }).admin();
  try {
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic: probeTopic, numPartitions: 1 }],
      waitForLeaders: true,
      timeout: 5_000,
    });
    const metadata = await admin.fetchTopicMetadata({ topics: [probeTopic] });
    const leader = metadata.topics[0]?.partitions[0]?.leader ?? -1;
    if (leader < 0) throw new Error(`${probeTopic} has no leader yet`);
    await admin.describeGroups(['walnut-stack-probe']);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}
