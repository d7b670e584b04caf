export { assertError, type Body, call, type Reply, rowCounts, waitApplied, write } from './api-client.ts';
export { createDatabase } from './database.ts';
export { StackError, type StackErrorCode } from './errors.ts';
export { type KafkaHandle, startKafka } from './kafka.ts';
export { type KafkaCluster, type KafkaClusterNode, startKafkaCluster } from './kafka-cluster.ts';
export type { PartitionState } from './kafka-cluster-admin.ts';
export { ensureKafkaJars } from './kafka-jars.ts';
export { freePort } from './ports.ts';
export { DEFAULT_PG_VERSION, PG_VERSIONS, type PgVersion, pgVersion } from './pg-binaries.ts';
export { type PostgresHandle, startPostgres } from './postgres.ts';
export { multiHostUrl, type StandbyHandle, type StandbyOptions, startStandby } from './postgres-standby.ts';
export { type KafkaNodes, type Stack, startStack } from './stack.ts';
export { waitFor } from './wait-for.ts';
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
  startNodeScript,
  startWalnutProcess,
  type WalnutProcess,
  type WalnutRunnable,
} from './walnut-processes.ts';
export { walnutSuite } from './walnut-suite.ts';
