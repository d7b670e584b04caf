import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { StackError } from './errors.ts';
import { run } from './exec.ts';
import { onHarnessExit } from './exit-hooks.ts';
import { ensureKafkaJars } from './kafka-jars.ts';
import { freePort, portIsFree } from './ports.ts';
import { waitFor } from './wait-for.ts';

export interface KafkaHandle {
  brokers: string[];
  owned: boolean;
  /** SIGTERM (controlled shutdown), SIGKILL after 30 s. */
  stop(): Promise<void>;
  /** Same ports, same data; resolves when the broker answers. */
  start(): Promise<void>;
  kill(): Promise<void>;
}

/**
 * A single-node KRaft broker+controller from the Maven-resolved jars, on free
 * ports that stay the same across stop/start so clients find it again.
 */
export async function startKafka(opts: { dir: string; log?: (line: string) => void }): Promise<KafkaHandle> {
  const log = opts.log ?? (() => {});
  const jars = await ensureKafkaJars(log);
  const home = path.resolve(opts.dir, 'kafka');
  await mkdir(home, { recursive: true });
  const { broker, controller } = await rememberedPorts(path.join(home, 'ports.json'));
  const propsFile = path.join(home, 'server.properties');
  await writeFile(propsFile, serverProperties(home, broker, controller));
  const java = process.env.JAVA ?? 'java';
  const classpath = `${jars}/*`;

  if (!existsSync(path.join(home, 'data', 'meta.properties'))) {
    const clusterId = (
      await run(java, ['-cp', classpath, 'kafka.tools.StorageTool', 'random-uuid'], { code: 'KAFKA_FAILED' })
    )
      .trim()
      .split('\n')
      .at(-1) as string;
    await run(java, ['-cp', classpath, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', propsFile], {
      code: 'KAFKA_FAILED',
    });
  }

  const brokers = [`127.0.0.1:${broker}`];
  let child: ChildProcess | null = null;
  onHarnessExit(() => child?.kill('SIGKILL'));

  const start = async () => {
    if (child) return;
    log(`starting kafka on ${brokers[0]}`);
    const out = openSync(path.join(home, 'kafka.log'), 'a');
    const proc = spawn(
      java,
      ['-Xmx512m', '-Xms256m', '-Djava.awt.headless=true', '-cp', classpath, 'kafka.Kafka', propsFile],
      { stdio: ['ignore', out, out] },
    );
    child = proc;
    proc.once('exit', () => {
      if (child === proc) child = null;
    });
    await waitFor(
      `Kafka to answer on ${brokers[0]}`,
      async () => {
        if (child !== proc) throw new StackError('KAFKA_FAILED', `kafka exited; see ${path.join(home, 'kafka.log')}`);
        return brokerAnswers(brokers);
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
  };

  const terminate = async (signal: NodeJS.Signals) => {
    const proc = child;
    if (!proc) return;
    const exited = once(proc, 'exit');
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  };

  await start();
  return {
    brokers,
    owned: true,
    start,
    stop: () => terminate('SIGTERM'),
    kill: () => terminate('SIGKILL'),
  };
}

/** A metadata and create-topic round trip: the broker serves requests, not just accepts TCP. */
async function brokerAnswers(brokers: string[]): Promise<boolean> {
  const admin = new Kafka({
    clientId: 'walnut-stack',
    brokers,
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
    connectionTimeout: 2_000,
  }).admin();
  try {
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: '__walnut_ready', numPartitions: 1 }], waitForLeaders: true });
    await admin.fetchTopicMetadata({ topics: ['__walnut_ready'] });
    return true;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

function serverProperties(home: string, broker: number, controller: number): string {
  return `${[
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controller}`,
    `listeners=PLAINTEXT://127.0.0.1:${broker},CONTROLLER://127.0.0.1:${controller}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${broker}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    `log.dirs=${path.join(home, 'data')}`,
    'num.partitions=3',
    'auto.create.topics.enable=true',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=5',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
  ].join('\n')}\n`;
}

async function rememberedPorts(file: string): Promise<{ broker: number; controller: number }> {
  if (existsSync(file)) {
    const saved = JSON.parse(await readFile(file, 'utf8')) as { broker: number; controller: number };
    if ((await portIsFree(saved.broker)) && (await portIsFree(saved.controller))) return saved;
  }
  const broker = await freePort();
  let controller = await freePort();
  while (controller === broker) controller = await freePort();
  await writeFile(file, JSON.stringify({ broker, controller }));
  return { broker, controller };
}
