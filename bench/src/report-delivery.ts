/** The report's section on the relay's delivery modes: drains and end-to-end latency, at-least-once beside exactly-once. */
import type { DrainResult } from './drain.ts';
import { FIXED_RATES, highestSustained, type LoadStep, type SystemName } from './load-steps.ts';
import { fmt, ms, rate } from './report-format.ts';

const AT_LEAST_ONCE: SystemName = 'Walnut';
const EXACTLY_ONCE: SystemName = 'Walnut exactly-once';

const cpuPer100k = (d: DrainResult) =>
  d.relayCpuSeconds === null ? 'n/a' : ((d.relayCpuSeconds / d.rows) * 100_000).toFixed(1);

export function deliverySection(r: {
  rows: number;
  walnut: DrainResult[];
  exactlyOnce: DrainResult[];
  latency: LoadStep[];
  latencySeconds: number;
}): string[] {
  const out: string[] = ['## Delivery modes: the cost of exactly-once', ''];
  const eoSteps = r.latency.filter((l) => l.system === EXACTLY_ONCE);
  if (r.exactlyOnce.length === 0 && eoSteps.length === 0) return [...out, 'Not measured in this run.', ''];
  out.push(
    "The relay's two settings of `RELAY_DELIVERY`, measured in this run on the same private Postgres and Kafka: at-least-once (the default: up to 5 idempotent produce requests in flight; a crash may resend) and exactly-once (each produce request is one Kafka transaction holding its records and a checkpoint record naming the last of them, one transaction at a time). Every ratio below comes from this one run: each figure is a single measurement on a shared machine, not an average of repeated runs.",
    '',
  );
  if (r.exactlyOnce.length > 0) {
    out.push(
      `Drains: the drains of "Relay drain throughput" (${fmt(r.rows)} rows of 1 KB, timed from the relay's "streaming" line until it counts every record in Kafka as acked, or in exactly-once mode as in a committed transaction), run again after them with \`RELAY_DELIVERY=exactly-once\`, each on a slot and topic of its own.`,
      '',
      '| rows per transaction | at-least-once (events/s) | exactly-once (events/s) | exactly-once / at-least-once | relay CPU s per 100k events, at-least-once | exactly-once | relay peak RSS, exactly-once |',
      '|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const eo of r.exactlyOnce) {
      const alo = r.walnut.find((w) => w.rowsPerTx === eo.rowsPerTx && w.rows === eo.rows);
      const eoRate = rate(eo.rows, eo.relaySeconds);
      const aloRate = alo ? rate(alo.rows, alo.relaySeconds) : undefined;
      const rss = eo.relayPeakRssBytes === null ? 'n/a' : `${(eo.relayPeakRssBytes / 2 ** 20).toFixed(0)} MiB`;
      out.push(
        `| ${fmt(eo.rowsPerTx)} | ${aloRate === undefined ? 'n/a' : `${fmt(aloRate)} (${alo?.relaySeconds.toFixed(2)} s)`} | ${fmt(eoRate)} (${eo.relaySeconds.toFixed(2)} s) | ${aloRate === undefined ? 'n/a' : (eoRate / aloRate).toFixed(2)} | ${alo ? cpuPer100k(alo) : 'n/a'} | ${cpuPer100k(eo)} | ${rss} |`,
      );
    }
    out.push('');
  }
  if (eoSteps.length > 0) out.push(...latencyTable(r.latency, r.latencySeconds));
  return out;
}

/** p50 and p99 of 202 → kvs per fixed rate for both modes, then each mode's highest sustained rate. */
function latencyTable(latency: LoadStep[], latencySeconds: number): string[] {
  const at = (system: SystemName, offered: number) =>
    latency.find((l) => l.system === system && l.phase === 'fixed' && l.offeredPerSecond === offered);
  const cells = (l: LoadStep | undefined) =>
    l ? `${ms(l.apply.p50)} | ${ms(l.apply.p99)} | ${l.sustained ? 'yes' : 'no'}` : 'not run | | ';
  const out: string[] = [
    `End-to-end latency: a third deployment, Walnut with \`RELAY_DELIVERY=exactly-once\` (its own database, api, relay and applier), took its turn at every step of "End-to-end latency" after the other two, so both modes met the same offered loads (${latencySeconds} s each) within minutes of each other. From the API's 202 to the value being readable in \`kvs\`, as measured there:`,
    '',
    '| offered writes/s | at-least-once p50 (ms) | p99 | sustained | exactly-once p50 (ms) | p99 | sustained | exactly-once p50 / at-least-once p50 | exactly-once p99 / at-least-once p99 |',
    '|---:|---:|---:|---|---:|---:|---|---:|---:|',
  ];
  for (const offered of FIXED_RATES) {
    const alo = at(AT_LEAST_ONCE, offered);
    const eo = at(EXACTLY_ONCE, offered);
    const ratio = (q: 'p50' | 'p99') => (alo && eo ? (eo.apply[q] / alo.apply[q]).toFixed(2) : 'n/a');
    out.push(`| ${fmt(offered)} | ${cells(alo)} | ${cells(eo)} | ${ratio('p50')} | ${ratio('p99')} |`);
  }
  out.push('');
  const best = (system: SystemName) => {
    const own = latency.filter((l) => l.system === system);
    if (!own.some((l) => l.phase === 'search')) return undefined;
    const b = highestSustained(own);
    const above = own
      .filter((l) => !l.sustained && l.offeredPerSecond > (b?.offeredPerSecond ?? 0))
      .sort((x, y) => x.offeredPerSecond - y.offeredPerSecond)[0];
    const next = above ? `; not sustained at ${fmt(above.offeredPerSecond)}` : '';
    return b
      ? `${fmt(b.offeredPerSecond)} writes/s (p50 ${ms(b.apply.p50)} ms, p99 ${ms(b.apply.p99)} ms${next})`
      : 'none of the rates tried';
  };
  const aloBest = best(AT_LEAST_ONCE);
  const eoBest = best(EXACTLY_ONCE);
  if (aloBest && eoBest)
    out.push(
      `Highest sustained rate found by the search: at-least-once ${aloBest}, exactly-once ${eoBest}. Each deployment has its own API process, so where both stop near the same rate, the API rather than the relay is the likely limit.`,
      '',
    );
  return out;
}
