export { assertError, type Body, call, type Reply, rowCounts, waitApplied, write } from './api-client.ts';
export { createDatabase } from './database.ts';
export {
  checkDelivery,
  countDelivery,
  type DeliveryCount,
  type DeliveryReport,
  formatReport,
  type Phase,
  type PhaseFigures,
  type TopicRow,
  type WitnessRow,
} from './delivery-check.ts';
export { StackError, type StackErrorCode } from './errors.ts';
export { type KafkaHandle, startKafka } from './kafka.ts';
export { type KafkaCluster, type KafkaClusterNode, startKafkaCluster } from './kafka-cluster.ts';
export type { PartitionState } from './kafka-cluster-admin.ts';
export { ensureKafkaJars } from './kafka-jars.ts';
export { ensureMavenJars } from './maven-jars.ts';
export { type NatsHandle, natsServerInstalled, startNats } from './nats.ts';
export { insertOutboxRows } from './outbox-rows.ts';
export { DEFAULT_PG_VERSION, PG_VERSIONS, type PgVersion, pgVersion } from './pg-binaries.ts';
export { freePort } from './ports.ts';
export { type PostgresHandle, startPostgres } from './postgres.ts';
export { type RedisHandle, redisServerInstalled, startRedis } from './redis.ts';
export { multiHostUrl, type StandbyHandle, type StandbyOptions, startStandby } from './postgres-standby.ts';
export { confirmedLsn, slotLsn, waitConfirmed, walInsertLsn, walLsn } from './slot-lsn.ts';
export { type KafkaNodes, type Stack, startStack } from './stack.ts';
export { readDistinctIds, waitWholeTopic } from './topic-reads.ts';
export { pause, waitFor } from './wait-for.ts';
export {
  type RelayRole,
  readTopic,
  readWholeTopic,
  relayRoleFromEnv,
  type TopicRecord,
  type WalnutFixture,
  walnutFixture,
} from './walnut-fixture.ts';
export {
  exitCode,
  httpUrl,
  lineTime,
  RELAY_NODE_ARGS,
  RELAY_PROCESS_ENV,
  runRelayCli,
  startNodeScript,
  startRelayCli,
  startWalnutProcess,
  type WalnutProcess,
  type WalnutRunnable,
} from './walnut-processes.ts';
export { killAfterEach, walnutSuite } from './walnut-suite.ts';
