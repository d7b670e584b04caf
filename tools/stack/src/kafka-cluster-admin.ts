import { type Admin, Kafka, logLevel } from 'kafkajs';
import { StackError } from './errors.ts';
import { run } from './exec.ts';
import { kafkaLog4jConfig } from './kafka-jars.ts';
import { waitFor } from './wait-for.ts';

/**
 * The cluster-level questions and operations fault tests need: who leads a
 * partition, who is in sync, elect preferred leaders, move a partition's
 * replicas. Each call uses a fresh admin client bootstrapped from the brokers
 * that are up and not frozen (a frozen broker accepts connections and then
 * answers nothing, which would cost a client its whole request timeout).
 */

export interface PartitionState {
  partition: number;
  /** Node id, or -1 while the partition has no leader. */
  leader: number;
  /** Assigned replicas; the first is the preferred leader. */
  replicas: number[];
  isr: number[];
}

export async function withAdmin<T>(brokers: readonly string[], fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = new Kafka({
    clientId: 'walnut-stack-admin',
    brokers: [...brokers],
    logLevel: logLevel.NOTHING,
    // A few quick retries: the metadata may still list a broker that was just
    // stopped, and a refused connection to it then moves on to another one.
    retry: { retries: 4, initialRetryTime: 100, maxRetryTime: 1_000 },
    connectionTimeout: 2_000,
    requestTimeout: 5_000,
  }).admin();
  try {
    await admin.connect();
    return await fn(admin);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

export async function partitionStates(brokers: readonly string[], topic: string): Promise<PartitionState[]> {
  return withAdmin(brokers, async (admin) => {
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
    const partitions = metadata.topics[0]?.partitions ?? [];
    return partitions
      .map((p) => ({ partition: p.partitionId, leader: p.leader, replicas: p.replicas, isr: p.isr }))
      .sort((a, b) => a.partition - b.partition);
  });
}

/** Every partition of the topic has a leader and all its replicas in sync. */
export function fullyInSync(states: readonly PartitionState[]): boolean {
  return states.length > 0 && states.every((p) => p.leader >= 0 && p.isr.length === p.replicas.length);
}

/** The nodes the cluster's metadata lists as alive (registered and not fenced). */
export async function liveNodeIds(brokers: readonly string[]): Promise<number[]> {
  return withAdmin(brokers, async (admin) => (await admin.describeCluster()).brokers.map((b) => b.nodeId));
}

/**
 * Ready means served, not listening: a topic replicated on all nodes can be
 * created and every partition has a leader and a full ISR, and the group
 * coordinator answers (it is "not available" until __consumer_offsets, itself
 * replicated three times here, is created and loaded).
 */
export async function clusterServes(brokers: readonly string[], probeTopic: string, nodes: number): Promise<boolean> {
  return withAdmin(brokers, async (admin) => {
    if ((await admin.describeCluster()).brokers.length < nodes) return false;
    await admin.createTopics({
      topics: [{ topic: probeTopic, numPartitions: nodes, replicationFactor: nodes }],
      waitForLeaders: true,
      timeout: 5_000,
    });
    const metadata = await admin.fetchTopicMetadata({ topics: [probeTopic] });
    const partitions = metadata.topics[0]?.partitions ?? [];
    if (partitions.length === 0 || !partitions.every((p) => p.leader >= 0 && p.isr.length === nodes)) return false;
    await admin.describeGroups(['walnut-stack-probe']);
    return true;
  });
}

/**
 * Runs a command-line tool class of the kafka-tools jar (as `kafka-*.sh` would)
 * and returns its output; a non-zero exit fails with that output.
 */
export function runKafkaTool(
  tool: { java: string; jars: string; logsDir: string },
  main: string,
  args: readonly string[],
): Promise<string> {
  return run(
    tool.java,
    [
      '-Xmx256m',
      // A tool's JVM lives for a few seconds: skip the JIT's slow tiers, it starts faster.
      '-XX:TieredStopAtLevel=1',
      '-Djava.awt.headless=true',
      `-Dlog4j2.configurationFile=${kafkaLog4jConfig}`,
      `-Dkafka.logs.dir=${tool.logsDir}`,
      '-cp',
      `${tool.jars}/*`,
      main,
      ...args,
    ],
    { code: 'KAFKA_FAILED' },
  );
}

/**
 * Moves leadership of every partition whose leader is not its preferred
 * replica (the first assigned) back to it, if that replica is in sync. The
 * tool (kafka-leader-election.sh) reports partitions already led by their
 * preferred replica as such, not as errors.
 */
export async function electPreferredLeaders(
  tool: { java: string; jars: string; logsDir: string },
  brokers: readonly string[],
): Promise<string> {
  const args = ['--bootstrap-server', brokers.join(','), '--election-type', 'PREFERRED', '--all-topic-partitions'];
  return runKafkaTool(tool, 'org.apache.kafka.tools.LeaderElectionCommand', args);
}

/**
 * Assigns the partition to `replicas` (in that order: the first is the
 * preferred leader) and waits until the metadata shows exactly that
 * assignment, a leader, and every replica in sync: an added replica has
 * copied the log, a removed one is gone. Removing the current leader moves
 * the leadership at once; with the same replicas in a new order nothing moves
 * until a preferred election.
 */
export async function reassignPartition(
  brokers: readonly string[],
  topic: string,
  partition: number,
  replicas: readonly number[],
  timeoutMs = 60_000,
): Promise<void> {
  await withAdmin(brokers, (admin) =>
    admin.alterPartitionReassignments({
      topics: [{ topic, partitionAssignment: [{ partition, replicas: [...replicas] }] }],
      timeout: 10_000,
    }),
  );
  await waitFor(
    `${topic}-${partition} reassigned to [${replicas.join(',')}] and in sync`,
    async () => {
      const states = await partitionStates(brokers, topic);
      const state = states.find((p) => p.partition === partition);
      if (!state) throw new StackError('KAFKA_FAILED', `${topic} has no partition ${partition}`);
      return (
        state.leader >= 0 &&
        state.replicas.join(',') === replicas.join(',') &&
        replicas.every((id) => state.isr.includes(id))
      );
    },
    { timeoutMs, intervalMs: 250 },
  );
}
