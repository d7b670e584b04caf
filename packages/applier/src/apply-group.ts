import { GroupCommit } from '@walnut/runtime';
import type { DecodedKvEvent } from './kv-message.ts';

export interface ApplyGroupOptions {
  /** Most events in one shared apply; further batches wait for the next one. */
  maxEventsPerApply: number;
}

type Batch = readonly DecodedKvEvent[];

/**
 * Applies the batches of one Kafka fetch in one database transaction. kafkajs
 * hands a fetch's partitions to eachBatch side by side and fetches again only
 * when every one of them returned; applied one transaction each, a fetch of
 * six partitions cost six commits (six WAL flushes) on the applier's four
 * connections, and the next fetch waited for the slowest. Batches that arrive
 * in the same turn of the event loop go together instead (GroupCommit): one
 * commit, one visibility wait, and the next fetch sooner.
 *
 * Sharing is safe because partitions hold disjoint keys and apply_kv_batch's
 * version guard orders each key's events itself. A shared apply that fails is
 * retried one batch at a time, so a batch Postgres refuses fails alone and the
 * other partitions go on.
 */
export class ApplyGroup {
  private readonly group: GroupCommit<Batch>;

  constructor(apply: (events: Batch) => Promise<void>, options: ApplyGroupOptions) {
    this.group = new GroupCommit<Batch>(
      (batches) => apply(batches.length === 1 ? (batches[0] as Batch) : batches.flat()),
      {
        // No cap of its own: kafkajs runs at most one batch per partition at a time.
        maxConcurrentCommits: Number.POSITIVE_INFINITY,
        maxWeightPerCommit: options.maxEventsPerApply,
        weight: (batch) => batch.length,
      },
    );
  }

  /** Resolves once `events` are committed to `kvs`, alone or with others. */
  submit(events: Batch): Promise<void> {
    return this.group.submit(events);
  }
}
