import type { MessageToProduce } from '@platformatic/kafka';
import type { RelayProducer } from '../kafka-producer.ts';
import type { KafkaRecord } from '../kafka-record.ts';

/**
 * How produce requests are grouped into Kafka transactions:
 * - `none`: idempotent sends outside transactions, several in flight (the
 *   stream, at-least-once; see kafka-sink.ts for why that is still fenced);
 * - `per-request`: each request one transaction, one at a time (the stream,
 *   exactly-once: the request carries its own checkpoint);
 * - `sealed`: one transaction per group the caller seals, its requests side
 *   by side (replay and snapshot: a transaction of a few pages, whose
 *   cursor is saved once it commits).
 */
export type TransactionMode = 'none' | 'per-request' | 'sealed';

type Transaction = Awaited<ReturnType<RelayProducer['beginTransaction']>>;

/** A request's two moments: Kafka acked its records, and they are durable (their transaction committed). */
export interface Sending {
  sent: Promise<void>;
  durable: Promise<void>;
}

/** A sealed-mode transaction: begun with its first request, committed after its last. */
interface Group {
  transaction: Promise<Transaction>;
  sends: Array<Promise<void>>;
  committed: Promise<void>;
  settle: (commit: Promise<void>) => void;
}

/**
 * Sends produce requests in the sink's transaction mode, each within
 * timeoutMs. A transaction that fails or times out is left open: the next
 * owner's fence (InitProducerId) aborts it, so none of it is ever
 * read_committed. A producer has one open transaction, so in `sealed` mode no
 * request goes while a group commits.
 */
export class KafkaRequests {
  private group: Group | null = null;
  private commitInFlight = false;

  constructor(
    private readonly producer: RelayProducer,
    private readonly mode: TransactionMode,
    private readonly timeoutMs: number,
  ) {}

  /**
   * Takes over the transactional id: the coordinator bumps its epoch and
   * aborts what an earlier owner left open, whose sends partition leaders then
   * refuse. No transaction is kept: the empty one is dropped on the client.
   */
  async fence(): Promise<void> {
    const transaction = await this.withinTimeout(this.producer.beginTransaction(), performance.now());
    await transaction.cancel();
  }

  /** Whether a group's commit holds the next request back. */
  get committing(): boolean {
    return this.commitInFlight;
  }

  /** Most requests in flight the mode allows, given the configured cap. */
  maxInFlight(configured: number): number {
    return this.mode === 'per-request' ? 1 : configured;
  }

  /** `endsGroup`: in `sealed` mode, the request is its group's last; its transaction commits after it. */
  send(records: readonly KafkaRecord[], endsGroup: boolean): Sending {
    // The library takes a missing key or value as null, which is what undefined means here.
    const messages = records as unknown as MessageToProduce[];
    const started = performance.now();
    if (this.mode === 'none') {
      const durable = this.withinTimeout(this.producer.send({ messages }), started).then(() => {});
      return { sent: durable, durable };
    }
    if (this.mode === 'per-request') {
      const durable = this.withinTimeout(this.inTransaction(messages), started);
      return { sent: durable, durable };
    }
    const group = this.openGroup();
    const sent = this.withinTimeout(
      group.transaction.then((transaction) => transaction.send({ messages })),
      started,
    ).then(() => {});
    group.sends.push(sent);
    if (endsGroup) this.seal();
    return { sent, durable: sent.then(() => group.committed) };
  }

  /** A request outside any transaction (the stream's lone checkpoint). */
  sendAlone(records: readonly KafkaRecord[]): Promise<void> {
    const messages = records as unknown as MessageToProduce[];
    return this.withinTimeout(this.producer.send({ messages }), performance.now()).then(() => {});
  }

  /** `sealed` mode: commits the open group once its requests are acked (none open: nothing to do). */
  seal(): void {
    const group = this.group;
    if (!group) return;
    this.group = null;
    this.commitInFlight = true;
    const commit = Promise.all(group.sends).then(async () => {
      const transaction = await group.transaction;
      await this.withinTimeout(transaction.commit(), performance.now());
    });
    // Cleared before the group's requests hear of it, so their acks can start the next one.
    const done = commit.finally(() => {
      this.commitInFlight = false;
    });
    group.settle(done);
  }

  private openGroup(): Group {
    if (this.group) return this.group;
    let settle!: (commit: Promise<void>) => void;
    const committed = new Promise<void>((resolve, reject) => {
      settle = (commit) => commit.then(resolve, reject);
    });
    // Its requests' `durable` carry a failure to the sink; one that failed its send first never looks.
    committed.catch(() => {});
    const transaction = this.producer.beginTransaction();
    transaction.catch(() => {});
    this.group = { transaction, sends: [], committed, settle };
    return this.group;
  }

  private async inTransaction(messages: MessageToProduce[]): Promise<void> {
    const transaction = await this.producer.beginTransaction();
    await transaction.send({ messages });
    await transaction.commit();
  }

  private async withinTimeout<T>(operation: Promise<T>, started: number): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no ack within ${this.timeoutMs} ms`)),
        Math.max(0, started + this.timeoutMs - performance.now()),
      );
    });
    try {
      return await Promise.race([operation, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
