/**
 * The relay's drains to a sink other than Kafka: the same rows, the same transaction shapes and
 * the same timing as "Relay drain throughput", each on its own slot, with the sink's own limit
 * measured on the same server with as many records before the drains and after them (heldTo in
 * sinks.ts). A failure is reported, and the run goes on.
 */
import type { WalnutFixture } from '@walnut/stack';
import { drainWalnut } from './drain.ts';
import type { BenchSink, LimitRun, SinkRun } from './sinks.ts';
import { PAYLOAD_BYTES } from './workload.ts';

export async function drainToSink(
  walnut: WalnutFixture,
  sink: BenchSink,
  opts: { rows: number; rowsPerTx: readonly number[]; deadlineMs: number; log: (line: string) => void },
): Promise<SinkRun> {
  const run: SinkRun = {
    name: sink.name,
    server: sink.server,
    about: sink.about,
    durability: sink.durability,
    drains: [],
    limitRuns: [],
  };
  const measureLimit = async (when: string): Promise<LimitRun> => {
    try {
      const limits = await sink.limit(opts.rows, PAYLOAD_BYTES);
      for (const limit of limits) opts.log(`  ${limit.tool} (${when}): ${limit.line}`);
      return { when, limits };
    } catch (error) {
      const failed = error instanceof Error ? error.message : String(error);
      opts.log(`  ${sink.name} limit failed (${when}): ${failed}`);
      return { when, failed };
    }
  };
  run.limitRuns.push(await measureLimit('before the drains'));
  const label = sink.name.toLowerCase();
  try {
    for (const rowsPerTx of opts.rowsPerTx) {
      run.drains.push(await drainWalnut(walnut, opts.rows, rowsPerTx, PAYLOAD_BYTES, opts.deadlineMs, { sink, label }));
    }
  } catch (error) {
    run.failed = error instanceof Error ? error.message : String(error);
    opts.log(`  ${sink.name} drain failed: ${run.failed}`);
  }
  run.limitRuns.push(await measureLimit('after the drains'));
  return run;
}
