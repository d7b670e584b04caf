import { parseLsn } from '@walnut/schema';
/**
 * Scripted stand-ins for the Kafka producer, for the sink's unit tests: each
 * send or commit settles when the test says (the Kafka side is proven by the
 * integration and cluster suites; these pin the sink's order rules).
 */
import type { RelayProducer } from '../kafka-producer.ts';
import { type KafkaRecord, kafkaRecord } from '../kafka-record.ts';
import type { KafkaSinkOptions } from './kafka-sink-options.ts';

export interface Sent {
  messages: KafkaRecord[];
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * Every send of the scripted producers. A send a test leaves pending is failed
 * after it: the sink's send timeout (a minute) would otherwise hold the process.
 */
const everySent: Sent[] = [];

/** Fails the sends a test left pending (call after each). */
export function failPending(): void {
  for (const pending of everySent.splice(0)) pending.reject(new Error('test over'));
}

/** A producer whose sends (outside transactions) are acked when the test says. */
export function scriptedProducer() {
  const sent: Sent[] = [];
  const producer = {
    send({ messages }: { messages: KafkaRecord[] }) {
      return new Promise<void>((resolve, reject) => {
        sent.push({ messages, resolve, reject });
        everySent.push({ messages, resolve, reject });
      });
    },
  } as unknown as RelayProducer;
  return { producer, sent };
}

/** The stream's sink, at-least-once: two records a request, three requests in flight. */
export const options: KafkaSinkOptions = {
  maxBatchRecords: 2,
  maxBatchBytes: 1024 * 1024,
  maxRequestsInFlight: 3,
  maxRecordBytes: 1024 * 1024,
  deadLetterTopic: undefined,
  publisher: 'stream',
  sendTimeoutMs: 60_000,
  lingerMs: 0,
  maxInflightRecords: 1_000,
  maxInflightBytes: 64 * 1024 * 1024,
  transactions: 'none',
  checkpoint: {
    identity: { topic: 'checkpoints', key: Buffer.from('relay'), slot: 's', database: 'd', systemIdentifier: '1' },
    intervalMs: 0,
  },
};

export /** A producer whose transactions commit when the test says; what each committed or was sent. */
function scriptedTransactions() {
  const sent: Sent[] = [];
  const producer = {
    async beginTransaction() {
      let messages: KafkaRecord[] = [];
      return {
        async send(request: { messages: KafkaRecord[] }) {
          messages = request.messages;
        },
        commit: () => new Promise<void>((resolve, reject) => sent.push({ messages, resolve, reject })),
      };
    },
  } as unknown as RelayProducer;
  return { producer, sent };
}

export /** A producer whose transactional sends and commits settle when the test says. */
function scriptedGroups() {
  const sent: Sent[] = [];
  const commits: Array<Omit<Sent, 'messages'>> = [];
  let begun = 0;
  const producer = {
    async beginTransaction() {
      begun++;
      return {
        send: ({ messages }: { messages: KafkaRecord[] }) =>
          new Promise<void>((resolve, reject) => {
            sent.push({ messages, resolve, reject });
            everySent.push({ messages, resolve, reject });
          }),
        commit: () => new Promise<void>((resolve, reject) => commits.push({ resolve, reject })),
      };
    },
  } as unknown as RelayProducer;
  return { producer, sent, commits, begun: () => begun };
}

export const record = (commitLsn: string, seq: number) =>
  kafkaRecord('events', Buffer.from(`k${seq}`), Buffer.from('{}'), new Map(), `row ${seq}`, {
    commitLsn: parseLsn(commitLsn),
    seq,
  });

export const tick = () => new Promise((resolve) => setImmediate(resolve));
export const events = (s: Sent) => s.messages.filter((m) => m.topic === 'events').map((m) => m.position.seq);
export const checkpointOf = (s: Sent) => {
  const found = s.messages.find((m) => m.topic === 'checkpoints');
  return found ? (JSON.parse(String(found.value)) as { seq: number }).seq : null;
};
