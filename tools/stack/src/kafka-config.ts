import { randomBytes } from 'node:crypto';

/**
 * server.properties for a single-node KRaft cluster: one process is broker and
 * controller, everything on 127.0.0.1. Internal topics get replication factor
 * 1 because there is one broker; with Kafka's defaults (3) consumer groups and
 * transactions would never become available.
 */
export function serverProperties(opts: { dataDir: string; brokerPort: number; controllerPort: number }): string {
  const lines = [
    'process.roles=broker,controller',
    'node.id=1',
    // A static voter set, so `StorageTool format` must not get --standalone (Kafka refuses both).
    `controller.quorum.voters=1@127.0.0.1:${opts.controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${opts.brokerPort},CONTROLLER://127.0.0.1:${opts.controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${opts.brokerPort}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    `log.dirs=${opts.dataDir}`,
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
