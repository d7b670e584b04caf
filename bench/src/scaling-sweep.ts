/**
 * Relay drain throughput by payload size (100-row transactions) and by rows per
 * transaction (1 KB payloads), each point beside Kafka's own produce limit for
 * the same number and size of records.
 */
import type { WalnutFixture } from '@walnut/stack';
import { type DrainResult, drainWalnut } from './drain.ts';
import { createTopic } from './kafka-topics.ts';
import { kafkaProducerPerf, type ProducerPerfResult } from './limits.ts';
import { PAYLOAD_BYTES } from './workload.ts';

export const SWEEP_PAYLOAD_BYTES = [100, PAYLOAD_BYTES, 10 * 1024, 100 * 1024];
export const SWEEP_ROWS_PER_TX = [1, 100, 10_000];
/** The payload sweep's transactions, and the rows-per-transaction sweep's payload. */
export const SWEEP_FIXED_ROWS_PER_TX = 100;

export type Failed = { failed: string };

export interface SweepPoint {
  payloadBytes: number;
  rowsPerTx: number;
  rows: number;
  drain: DrainResult | Failed;
  kafka: ProducerPerfResult | Failed;
}

/** The distinct points: 1 KB at 100 rows per transaction belongs to both sweeps and is measured once. */
export function sweepPoints(): { payloadBytes: number; rowsPerTx: number }[] {
  const points = [
    ...SWEEP_PAYLOAD_BYTES.map((payloadBytes) => ({ payloadBytes, rowsPerTx: SWEEP_FIXED_ROWS_PER_TX })),
    ...SWEEP_ROWS_PER_TX.map((rowsPerTx) => ({ payloadBytes: PAYLOAD_BYTES, rowsPerTx })),
  ];
  return points.filter(
    (p, i) => points.findIndex((q) => q.payloadBytes === p.payloadBytes && q.rowsPerTx === p.rowsPerTx) === i,
  );
}

/**
 * Rows for one point: `maxRows`, fewer where that would pass `budgetBytes` of
 * payload (so 100 KB points stay quick), in whole transactions, at least one.
 */
export function pointRows(maxRows: number, budgetBytes: number, payloadBytes: number, rowsPerTx: number): number {
  const rows = Math.min(maxRows, Math.floor(budgetBytes / payloadBytes));
  return Math.max(1, Math.floor(rows / rowsPerTx)) * rowsPerTx;
}

export async function runSweep(
  walnut: WalnutFixture,
  opts: { maxRows: number; budgetBytes: number; deadlineMs: number; jarDir: string; log: (line: string) => void },
): Promise<SweepPoint[]> {
  const results: SweepPoint[] = [];
  // Same record count and size, same limit: the 1 KB points share one run.
  const kafkaRuns = new Map<string, ProducerPerfResult | Failed>();
  for (const { payloadBytes, rowsPerTx } of sweepPoints()) {
    const rows = pointRows(opts.maxRows, opts.budgetBytes, payloadBytes, rowsPerTx);
    // A point that does not drain is reported as such, with the relay's first warning, and the run goes on.
    const drain = await drainWalnut(walnut, rows, rowsPerTx, payloadBytes, opts.deadlineMs).catch(
      (error: unknown): Failed => {
        const failed = error instanceof Error ? error.message : String(error);
        opts.log(`  failed: ${failed}`);
        return { failed };
      },
    );
    const runKey = `${rows}x${payloadBytes}`;
    let kafka = kafkaRuns.get(runKey);
    if (!kafka) {
      kafka = await producerLimit(walnut, opts.jarDir, rows, payloadBytes, opts.log);
      kafkaRuns.set(runKey, kafka);
    }
    results.push({ payloadBytes, rowsPerTx, rows, drain, kafka });
  }
  return results;
}

async function producerLimit(
  walnut: WalnutFixture,
  jarDir: string,
  records: number,
  recordBytes: number,
  log: (line: string) => void,
): Promise<ProducerPerfResult | Failed> {
  log(`Kafka ProducerPerformance (tuned), ${records} records of ${recordBytes} B, acks=all`);
  const topic = `bench.producer-perf-p${recordBytes}-n${records}`;
  try {
    await createTopic(walnut.kafka, topic);
    const result = await kafkaProducerPerf({
      jarDir,
      brokers: walnut.brokers,
      topic,
      records,
      recordBytes,
      timeoutMs: 600_000,
      settings: 'tuned',
    });
    log(`  ${result.line}`);
    return result;
  } catch (error) {
    const failed = error instanceof Error ? error.message : String(error);
    log(`  failed: ${failed}`);
    return { failed };
  }
}
