import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StackError } from './errors.ts';
import type { KafkaHandle } from './kafka.ts';
import {
  clusterServes,
  electPreferredLeaders,
  fullyInSync,
  liveNodeIds,
  type PartitionState,
  partitionStates,
  reassignPartition,
} from './kafka-cluster-admin.ts';
import { clusterNodeProperties, quorumVoters, randomClusterId } from './kafka-config.ts';
import { ensureKafkaJars, findJava } from './kafka-jars.ts';
import { KafkaProcess, kafkaNodeFiles } from './kafka-process.ts';
import { rememberedPorts } from './ports.ts';
import { waitFor } from './wait-for.ts';

/** One broker+controller of the cluster, for fault tests. */
export interface KafkaClusterNode {
  readonly id: number;
  /** '127.0.0.1:<port>' */
  readonly broker: string;
  /** Its JVM is alive (frozen included). */
  readonly running: boolean;
  readonly frozen: boolean;
  readonly pid: number | undefined;
  /** SIGTERM: controlled shutdown (its leaderships move first); waits for the exit. */
  stop(): Promise<void>;
  /** SIGKILL: a crash; waits for the exit. */
  kill(): Promise<void>;
  /**
   * Same ports, same data. Resolves once the node is registered, serves
   * requests, and is back in the ISR of every partition of `inSyncOn` (default:
   * the harness's probe topic) that it is a replica of.
   */
  start(opts?: { inSyncOn?: readonly string[] }): Promise<void>;
  /** SIGSTOP: alive, sockets open, answering nothing (a long GC pause, a partitioned host). */
  freeze(): void;
  /** SIGCONT. */
  thaw(): void;
}

/**
 * A KafkaHandle (stop/start/kill act on every node) plus per-node control and
 * the cluster-level operations fault tests need.
 */
export interface KafkaCluster extends KafkaHandle {
  readonly nodes: readonly KafkaClusterNode[];
  node(id: number): KafkaClusterNode;
  /** Partition states from the metadata of a live broker. */
  partitions(topic: string): Promise<PartitionState[]>;
  /** The node id leading the partition, or -1 while none does. */
  leaderOf(topic: string, partition: number): Promise<number>;
  /** Waits until every partition of the topic has a leader and all its replicas in sync. */
  waitInSync(topic: string, timeoutMs?: number): Promise<void>;
  /** Preferred-leader election for all partitions (kafka-leader-election.sh); returns the tool's output. */
  electPreferredLeaders(): Promise<string>;
  /** Reassigns a partition's replicas (first = preferred leader) and waits until it is done. */
  reassignPartition(topic: string, partition: number, replicas: readonly number[]): Promise<void>;
}

const readyTimeoutMs = 120_000;
const lastNodeGraceMs = 3_000;
const electionTimeoutMs = 30_000;
const probeTopic = 'walnut-stack.ready';

/**
 * A KRaft cluster of `nodes` combined broker+controller JVMs from the same
 * Maven jars, on 127.0.0.1: node i in `<dir>/kafka-<i>` (data,
 * server.properties, ports, server.log) with its JVM output in
 * `<dir>/kafka-<i>.log`, all formatted with one cluster id
 * (`<dir>/kafka-cluster.id`) and sharing a static voter set. Ports are
 * remembered per node, so a node that restarts is found where it was.
 */
export async function startKafkaCluster(opts: {
  dir: string;
  nodes: number;
  log?: (line: string) => void;
}): Promise<KafkaCluster> {
  const log = opts.log ?? (() => {});
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1) {
    throw new StackError('BAD_ENV', `a Kafka cluster needs a positive number of nodes, got ${opts.nodes}`);
  }
  const [jars, java] = await Promise.all([ensureKafkaJars({ log }), findJava()]);
  const dir = path.resolve(opts.dir);
  const ids = Array.from({ length: opts.nodes }, (_, i) => i + 1);

  const members: Array<{ id: number; process: KafkaProcess; brokerPort: number; controllerPort: number }> = [];
  const taken: number[] = [];
  for (const id of ids) {
    const files = kafkaNodeFiles(path.join(dir, `kafka-${id}`), path.join(dir, `kafka-${id}.log`));
    await mkdir(files.home, { recursive: true });
    const process = new KafkaProcess(`kafka-${id}`, java, jars, files, log);
    const portsFile = path.join(files.home, 'ports');
    await process.killLeftover(portsFile);
    const [brokerPort, controllerPort] = (await rememberedPorts(portsFile, 2, taken)) as [number, number];
    taken.push(brokerPort, controllerPort);
    members.push({ id, process, brokerPort, controllerPort });
  }
  const voters = quorumVoters(new Map(members.map((m) => [m.id, m.controllerPort])));
  const idFile = path.join(dir, 'kafka-cluster.id');
  const clusterId = existsSync(idFile) ? (await readFile(idFile, 'utf8')).trim() : randomClusterId();
  await writeFile(idFile, `${clusterId}\n`);
  await Promise.all(
    members.map(async ({ id, process, brokerPort, controllerPort }) => {
      const { dataDir, propsFile } = process.files;
      await writeFile(propsFile, clusterNodeProperties({ nodeId: id, dataDir, brokerPort, controllerPort, voters }));
      await process.format(clusterId);
    }),
  );

  const brokers = members.map((m) => `127.0.0.1:${m.brokerPort}`);
  /** Bootstrap list for admin calls: nodes that can answer. */
  const reachable = () => {
    const up = members.filter((m) => m.process.running && !m.process.isFrozen).map((m) => `127.0.0.1:${m.brokerPort}`);
    return up.length > 0 ? up : brokers;
  };
  const tool = { java, jars, logsDir: path.join(dir, 'kafka-tools') };
  await mkdir(tool.logsDir, { recursive: true });

  /** The node serves requests itself and the cluster lists it as alive (registered, not fenced). */
  const registered = async (id: number, broker: string) => (await liveNodeIds([broker])).includes(id);

  const nodes: KafkaClusterNode[] = members.map(({ id, process, brokerPort, controllerPort }) => {
    const broker = `127.0.0.1:${brokerPort}`;
    return {
      id,
      broker,
      get running() {
        return process.running;
      },
      get frozen() {
        return process.isFrozen;
      },
      get pid() {
        return process.pid;
      },
      stop: () => process.terminate('SIGTERM'),
      kill: () => process.terminate('SIGKILL'),
      async start(startOpts = {}) {
        const topics = startOpts.inSyncOn ?? [probeTopic];
        log(`starting kafka-${id} on ${broker} (controller 127.0.0.1:${controllerPort})`);
        await process.start(
          `kafka-${id} to serve and be in sync on ${topics.join(', ')}`,
          async () => {
            if (!(await registered(id, broker))) return false;
            for (const topic of topics) {
              const states = await partitionStates(reachable(), topic);
              if (states.length === 0) return false;
              if (states.some((p) => p.replicas.includes(id) && !p.isr.includes(id))) return false;
            }
            return true;
          },
          readyTimeoutMs,
        );
      },
      freeze: () => process.freeze(),
      thaw: () => process.thaw(),
    };
  });

  /** All nodes at once: a KRaft quorum needs a majority of them before any is ready. */
  const startAll = async () => {
    log(`starting a ${opts.nodes}-node kafka cluster on ${brokers.join(', ')}`);
    const started = await Promise.allSettled(
      members.map(({ id, process }) =>
        process.running
          ? undefined
          : process.start(
              `kafka-${id} to register with the cluster`,
              () => registered(id, brokers[id - 1] as string),
              readyTimeoutMs,
            ),
      ),
    );
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await Promise.all(members.map((m) => m.process.terminate('SIGKILL')));
      throw failed.reason;
    }
    await waitFor(
      `the ${opts.nodes}-node kafka cluster to serve`,
      () => clusterServes(brokers, probeTopic, opts.nodes),
      {
        timeoutMs: readyTimeoutMs,
        intervalMs: 500,
      },
    ).catch(async (error: unknown) => {
      await Promise.all(members.map((m) => m.process.terminate('SIGKILL')));
      throw error;
    });
  };

  await startAll();
  return {
    brokers,
    owned: true,
    nodes,
    node(id) {
      const node = nodes.find((n) => n.id === id);
      if (!node) throw new StackError('KAFKA_FAILED', `no kafka node ${id} (nodes are ${ids.join(', ')})`);
      return node;
    },
    start: startAll,
    // One after another: each controlled shutdown needs a controller quorum (a majority
    // of the nodes) to hand its leaderships over. The last node has none left, so it
    // would wait forever; it gets a short grace, then SIGKILL (its log recovers on start).
    stop: async () => {
      const running = members.filter((m) => m.process.running);
      for (const [i, m] of running.entries()) {
        await m.process.terminate('SIGTERM', i === running.length - 1 ? lastNodeGraceMs : 30_000);
      }
    },
    kill: async () => {
      await Promise.all(members.map((m) => m.process.terminate('SIGKILL')));
    },
    partitions: (topic) => partitionStates(reachable(), topic),
    async leaderOf(topic, partition) {
      const states = await partitionStates(reachable(), topic);
      const state = states.find((p) => p.partition === partition);
      if (!state) throw new StackError('KAFKA_FAILED', `${topic} has no partition ${partition}`);
      return state.leader;
    },
    async waitInSync(topic, timeoutMs = 60_000) {
      await waitFor(`${topic} fully in sync`, async () => fullyInSync(await partitionStates(reachable(), topic)), {
        timeoutMs,
        intervalMs: 250,
      });
    },
    async electPreferredLeaders() {
      // A replica that just came back may not be in sync on every partition yet (internal
      // topics included), and the tool fails for any partition whose preferred leader is not.
      const deadline = Date.now() + electionTimeoutMs;
      for (;;) {
        try {
          return await electPreferredLeaders(tool, reachable());
        } catch (error) {
          if (Date.now() > deadline) throw error;
          log(
            `preferred-leader election failed, retrying: ${(error as Error).message.split('\n').slice(-3).join(' ')}`,
          );
          await new Promise((resolve) => setTimeout(resolve, 1_000));
        }
      }
    },
    reassignPartition: (topic, partition, replicas) => reassignPartition(reachable(), topic, partition, replicas),
  };
}
