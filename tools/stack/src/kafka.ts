import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { StackError } from './errors.ts';
import { run, tailFile } from './exec.ts';
import { onHarnessExit } from './exit-hooks.ts';
import { randomClusterId, serverProperties } from './kafka-config.ts';
import { ensureKafkaJars, findJava, kafkaLog4jConfig } from './kafka-jars.ts';
import { portIsFree, rememberedPorts } from './ports.ts';
import { waitFor } from './wait-for.ts';
import { deadMansSwitch } from './watchdog.ts';

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
const stopGraceMs = 30_000;

/**
 * A single-node KRaft broker+controller from the Maven-resolved jars, in
 * `<dir>/kafka` (data, server.properties, cluster.id, server.log), with the
 * JVM's own output in `<dir>/kafka.log`. Its two ports stay the same across
 * stop/start so clients find it again, and across runs on the same dir when free.
 */
export async function startKafka(opts: { dir: string; log?: (line: string) => void }): Promise<KafkaHandle> {
  const log = opts.log ?? (() => {});
  const [jars, java] = await Promise.all([ensureKafkaJars({ log }), findJava()]);
  const home = path.resolve(opts.dir, 'kafka');
  const dataDir = path.join(home, 'data');
  const propsFile = path.join(home, 'server.properties');
  const pidFile = path.join(home, 'kafka.pid');
  const outFile = path.resolve(opts.dir, 'kafka.log');
  await mkdir(home, { recursive: true });
  const portsFile = path.join(home, 'ports');
  await killLeftover(pidFile, propsFile, portsFile, log);
  const [brokerPort, controllerPort] = (await rememberedPorts(portsFile, 2)) as [number, number];
  await writeFile(propsFile, serverProperties({ dataDir, brokerPort, controllerPort }));
  const jvm = (heap: string, main: string, args: string[]) => [
    heap,
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${kafkaLog4jConfig}`,
    `-Dkafka.logs.dir=${home}`,
    '-cp',
    `${jars}/*`,
    main,
    ...args,
  ];

  if (!existsSync(path.join(dataDir, 'meta.properties'))) {
    const idFile = path.join(home, 'cluster.id');
    const clusterId = existsSync(idFile) ? (await readFile(idFile, 'utf8')).trim() : randomClusterId();
    await writeFile(idFile, `${clusterId}\n`);
    log(`formatting kafka storage ${dataDir} (cluster ${clusterId})`);
    await run(
      java,
      jvm('-Xmx256m', 'kafka.tools.StorageTool', ['format', '-t', clusterId, '-c', propsFile, '--ignore-formatted']),
      {
        code: 'KAFKA_FAILED',
      },
    );
  }

  const brokers = [`127.0.0.1:${brokerPort}`];
  let child: ChildProcess | undefined;
  let watchdog: { disarm(): void } | undefined;
  const expectedExits = new WeakSet<ChildProcess>();

  const terminate = async (signal: 'SIGTERM' | 'SIGKILL') => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    expectedExits.add(proc);
    const exited = once(proc, 'exit');
    proc.kill(signal);
    const escalate = signal === 'SIGTERM' ? setTimeout(() => proc.kill('SIGKILL'), stopGraceMs) : undefined;
    await exited;
    clearTimeout(escalate);
  };

  const start = async () => {
    if (child) return;
    log(`starting kafka on ${brokers[0]} (controller 127.0.0.1:${controllerPort})`);
    const out = openSync(outFile, 'a');
    const proc = spawn(java, jvm('-Xmx512m', 'kafka.Kafka', [propsFile]), { stdio: ['ignore', out, out] });
    closeSync(out);
    child = proc;
    let exit: string | undefined;
    const onGone = (reason: string) => {
      exit ??= reason;
      watchdog?.disarm();
      if (child !== proc) return;
      child = undefined;
      watchdog = undefined;
      void rm(pidFile, { force: true });
      if (!expectedExits.has(proc)) log(`kafka exited unexpectedly (${reason}); see ${outFile}`);
    };
    proc.once('error', (error) => onGone(error.message));
    proc.once('exit', (code, signal) => onGone(`${signal ?? `code ${code}`}`));
    if (proc.pid === undefined) {
      // spawn failed synchronously (ENOENT is reported through 'error' next tick).
      await once(proc, 'error').catch(() => {});
    } else {
      watchdog = deadMansSwitch('kill', ['-KILL', String(proc.pid)]);
      await writeFile(pidFile, `${proc.pid}\n`);
    }
    try {
      await waitFor(
        `Kafka to serve requests on ${brokers[0]}`,
        async () => {
          if (exit) throw new StackError('KAFKA_FAILED', `kafka exited while starting (${exit})`);
          await probe(brokers);
          return true;
        },
        { timeoutMs: readyTimeoutMs, intervalMs: 250 },
      );
    } catch (error) {
      if (child === proc) await terminate('SIGKILL');
      throw new StackError(
        'KAFKA_FAILED',
        `${(error as Error).message}\n--- ${outFile}:\n${tailFile(outFile)}\n(INFO log: ${path.join(home, 'server.log')})`,
        { cause: error },
      );
    }
  };

  onHarnessExit(() => {
    child?.kill('SIGKILL');
    watchdog?.disarm();
  });
  await start();
  return {
    brokers,
    owned: true,
    start,
    stop: () => terminate('SIGTERM'),
    kill: () => terminate('SIGKILL'),
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

/**
 * A broker that a SIGKILLed harness left on this directory holds its data
 * lock and ports; it is ours (same server.properties), so it goes.
 */
async function killLeftover(
  pidFile: string,
  propsFile: string,
  portsFile: string,
  log: (line: string) => void,
): Promise<void> {
  if (!existsSync(pidFile)) return;
  const pid = Number((await readFile(pidFile, 'utf8')).trim());
  const isOurBroker = () => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(propsFile);
    } catch {
      return false;
    }
  };
  if (Number.isInteger(pid) && pid > 0 && isOurBroker()) {
    log(`killing kafka (pid ${pid}) left running on ${propsFile}`);
    process.kill(pid, 'SIGKILL');
    // Its ports, which clients of the last run still know, are free only once all its threads are
    // gone, which can be after /proc shows it as a zombie; so wait on the ports themselves.
    const ports = existsSync(portsFile) ? (await readFile(portsFile, 'utf8')).trim().split(/\s+/).map(Number) : [];
    await waitFor(`leftover kafka pid ${pid} to exit`, async () => !isOurBroker(), { timeoutMs: 30_000 });
    await waitFor(
      `ports ${ports.join(', ')} to be released`,
      async () => (await Promise.all(ports.map(portIsFree))).every(Boolean),
      { timeoutMs: 5_000 },
    ).catch(() => log(`ports ${ports.join(', ')} stay taken; kafka gets new ones`));
  }
  await rm(pidFile, { force: true });
}
