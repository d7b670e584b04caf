import { randomBytes } from 'node:crypto';

/**
 * server.properties for a single-node KRaft cluster: one process is broker and
 * controller, everything on 127.0.0.1. Internal topics get replication factor
 * 1 because there is one broker; with Kafka's defaults (3) consumer groups and
 * transactions would never become available.
 */
export function serverProperties(opts: { dataDir: string; brokerPort: number; controllerPort: number }): string {
  const lines = [
    ...nodeLines({ ...opts, nodeId: 1, voters: `1@127.0.0.1:${opts.controllerPort}` }),
    'num.partitions=3',
    'default.replication.factor=1',
    'min.insync.replicas=1',
    'auto.create.topics.enable=true',
    'offsets.topic.replication.factor=1',
    // Fewer coordinator partitions to create and load: the first consumer group is served sooner.
    'offsets.topic.num.partitions=5',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=5',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    // Kafka waits 3 s for more members before the first rebalance of a group; tests have one.
    'group.initial.rebalance.delay.ms=0',
  ];
  return `${lines.join('\n')}\n`;
}

/** One node's controller port, by node id: the static voter set every node of a cluster shares. */
export function quorumVoters(controllerPorts: ReadonlyMap<number, number>): string {
  return [...controllerPorts].map(([id, port]) => `${id}@127.0.0.1:${port}`).join(',');
}

/**
 * server.properties for one node of a 3-node KRaft cluster (each node broker
 * and controller), configured the way a production cluster that must not lose
 * acked writes is: every topic and internal topic on all three brokers, a
 * write acked by all in-sync replicas needs at least two, and an out-of-sync
 * replica never becomes leader.
 */
export function clusterNodeProperties(opts: {
  nodeId: number;
  dataDir: string;
  brokerPort: number;
  controllerPort: number;
  voters: string;
}): string {
  const lines = [
    ...nodeLines(opts),
    'num.partitions=3',
    'default.replication.factor=3',
    'min.insync.replicas=2',
    'unclean.leader.election.enable=false',
    'auto.create.topics.enable=true',
    'offsets.topic.replication.factor=3',
    'offsets.topic.num.partitions=5',
    'transaction.state.log.replication.factor=3',
    'transaction.state.log.min.isr=2',
    'transaction.state.log.num.partitions=5',
    'share.coordinator.state.topic.replication.factor=3',
    'share.coordinator.state.topic.min.isr=2',
    'group.initial.rebalance.delay.ms=0',
    // Fault tests freeze (SIGSTOP) or kill a broker and expect the cluster to route
    // around it within seconds, as it would in production after its (longer) timeouts.
    // The controller fences a broker whose heartbeats stop for broker.session.timeout.ms
    // (default 9 s), which moves its leaderships and drops it from every ISR.
    'broker.session.timeout.ms=4000',
    'broker.heartbeat.interval.ms=1000',
    // A follower that stops fetching leaves the ISR after this (default 30 s); until then
    // an acks=all write waits for it. Not lower: on a busy 2-core machine a starved but
    // healthy follower would flap in and out of the ISR.
    'replica.lag.time.max.ms=10000',
    // The tests move leaders themselves (elections, reassignments, restarts); an automatic
    // rebalance (every 5 min by default) would be an unannounced extra move mid-phase.
    'auto.leader.rebalance.enable=false',
    // Three brokers share two cores: fewer threads each than the defaults (3 network, 8 I/O).
    'num.network.threads=2',
    'num.io.threads=4',
  ];
  return `${lines.join('\n')}\n`;
}

function nodeLines(opts: {
  nodeId: number;
  dataDir: string;
  brokerPort: number;
  controllerPort: number;
  voters: string;
}) {
  return [
    'process.roles=broker,controller',
    `node.id=${opts.nodeId}`,
    // A static voter set, so `StorageTool format` must not get --standalone (Kafka refuses both).
    `controller.quorum.voters=${opts.voters}`,
    `listeners=PLAINTEXT://127.0.0.1:${opts.brokerPort},CONTROLLER://127.0.0.1:${opts.controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${opts.brokerPort}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    `log.dirs=${opts.dataDir}`,
  ];
}

/**
 * A cluster id as `kafka-storage random-uuid` makes it: 16 random bytes,
 * URL-safe base64 without padding, never starting with '-' (it would read as
 * an option on the command line). Made here to save a JVM start.
 */
export function randomClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}
