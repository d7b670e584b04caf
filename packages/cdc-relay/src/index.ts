export { AckTracker, type TxToken } from './ack-tracker.ts';
export { type CommittedRecord, readCommittedRecords } from './checkpoint/topic-reader.ts';
export { type RelayConfig, relayConfig, relayEnv, secretSettings } from './config.ts';
export { RelayError, type RelayErrorCode } from './errors.ts';
export type { KafkaRecord } from './kafka-record.ts';
export { type OutboxMapping, outboxRowMapper } from './outbox-mapping.ts';
export { Relay, type RelayState } from './relay.ts';
