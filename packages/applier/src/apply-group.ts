import type { DecodedKvEvent } from './kv-message.ts';

export interface ApplyGroupOptions {
  /** Most events in one shared apply; further batches wait for the next one. */
  maxEventsPerApply: number;
}

interface Member {
  events: readonly DecodedKvEvent[];
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * Applies the batches of one Kafka fetch in one database transaction. kafkajs
 * hands a fetch's partitions to eachBatch side by side and fetches again only
 * when every one of them returned; applied one transaction each, a fetch of
 * six partitions cost six commits (six WAL flushes) on the applier's four
 * connections, and the next fetch waited for the slowest. Batches that arrive
 * in the same turn of the event loop go together instead: one commit, one
 * visibility wait, and the next fetch sooner.
 *
 * Sharing is safe because partitions hold disjoint keys and apply_kv_batch's
 * version guard orders each key's events itself. A shared apply that fails is
 * retried one batch at a time, so a batch Postgres refuses fails alone and the
 * other partitions go on.
 */
export class ApplyGroup {
  private queue: Member[] = [];
  private flushScheduled = false;

  constructor(
    private readonly apply: (events: readonly DecodedKvEvent[]) => Promise<void>,
    private readonly options: ApplyGroupOptions,
  ) {}

  /** Resolves once `events` are committed to `kvs`, alone or with others. */
  submit(events: readonly DecodedKvEvent[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ events, resolve, reject });
      if (this.flushScheduled) return;
      this.flushScheduled = true;
      // After the current I/O callbacks: kafkajs starts a fetch's batches in one turn.
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    });
  }

  private flush(): void {
    while (this.queue.length > 0) void this.applyTogether(this.take());
  }

  /** At least one batch, however large; then more while they fit. */
  private take(): Member[] {
    let events = 0;
    let n = 0;
    for (const member of this.queue) {
      if (n > 0 && events + member.events.length > this.options.maxEventsPerApply) break;
      events += member.events.length;
      n++;
    }
    return this.queue.splice(0, n);
  }

  private async applyTogether(members: Member[]): Promise<void> {
    try {
      await this.apply(members.length === 1 ? (members[0] as Member).events : members.flatMap((m) => m.events));
      for (const member of members) member.resolve();
      return;
    } catch (error) {
      if (members.length === 1) {
        members[0]?.reject(error);
        return;
      }
    }
    await Promise.all(
      members.map(async (member) => {
        try {
          await this.apply(member.events);
          member.resolve();
        } catch (error) {
          member.reject(error);
        }
      }),
    );
  }
}
