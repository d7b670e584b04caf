/** The bars of each chart in docs/: only measured figures, nothing interpolated. */
import type { Bar } from './chart.ts';
import type { DrainResult, PollingDrainResult } from './drain.ts';
import type { ProducerPerfResult } from './limits.ts';
import { highestSustained, type LoadStep } from './load-steps.ts';
import type { SweepPoint } from './scaling-sweep.ts';

/** 100 B, 1 KB, 100 KB: the sizes the sweep is named by. */
export function sizeLabel(bytes: number): string {
  return bytes % 1024 === 0 ? `${bytes / 1024} KB` : `${bytes} B`;
}

export function drainBars(
  walnut: DrainResult[],
  polling: PollingDrainResult[],
  kafka: ProducerPerfResult,
  kafkaDefaults: ProducerPerfResult,
): Bar[] {
  return [
    ...walnut.map((w) => ({
      label: `Walnut relay, ${w.rowsPerTx.toLocaleString('en-US')}-row tx`,
      value: w.rows / w.relaySeconds,
      group: 'walnut',
    })),
    ...polling.map((p) => ({
      label: `polling relay, ${p.rowsPerTx}-row tx`,
      value: p.rows / p.seconds,
      group: 'polling',
    })),
    ...walnut.map((w) => ({
      label: `pg_recvlogical, ${w.rowsPerTx.toLocaleString('en-US')}-row tx`,
      value: w.rows / w.recvlogicalSeconds,
      group: 'limit',
    })),
    { label: 'Kafka ProducerPerformance, tuned', value: kafka.recordsPerSecond, group: 'limit' },
    { label: 'Kafka ProducerPerformance, defaults', value: kafkaDefaults.recordsPerSecond, group: 'reference' },
  ];
}

/** Per point: the relay, then its two ceilings; a series keeps its colour across points. */
export function sweepBars(points: SweepPoint[]): Bar[] {
  return points.flatMap((p) => {
    const point = `${sizeLabel(p.payloadBytes)}, ${p.rowsPerTx.toLocaleString('en-US')}-row tx`;
    const bars: Bar[] = [];
    if (!('failed' in p.drain)) {
      const d = p.drain;
      bars.push({ label: `${point}: Walnut relay`, value: d.rows / d.relaySeconds, group: 'relay' });
      bars.push({ label: `${point}: pg_recvlogical`, value: d.rows / d.recvlogicalSeconds, group: 'recvlogical' });
    }
    if (!('failed' in p.kafka))
      bars.push({ label: `${point}: Kafka`, value: p.kafka.recordsPerSecond, group: 'kafka' });
    return bars;
  });
}

/**
 * The fixed loads and each system's highest sustained load, four percentiles
 * each, coloured by system and ordered by load, so the systems sit side by side
 * where both ran. Search steps other than the highest sustained are in the table only.
 */
export function latencyBars(steps: LoadStep[]): Bar[] {
  const systems = [...new Set(steps.map((s) => s.system))];
  const best = new Set(systems.map((system) => highestSustained(steps.filter((s) => s.system === system))));
  return steps
    .filter((s) => s.phase === 'fixed' || best.has(s))
    .sort((a, b) => a.offeredPerSecond - b.offeredPerSecond || systems.indexOf(a.system) - systems.indexOf(b.system))
    .flatMap((s) =>
      (['p50', 'p95', 'p99', 'max'] as const).map((q) => ({
        label: `${s.system}, ${s.offeredPerSecond.toLocaleString('en-US')}/s${s.sustained ? '' : ' not sustained'}, ${q}`,
        value: s.apply[q],
        group: s.system,
      })),
    )
    .filter((b) => Number.isFinite(b.value));
}
