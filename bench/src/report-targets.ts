/** The system's targets (issue 26) against this run's figures: met, missed, or not measured in this run. */
import type { Footprint } from './footprint.ts';
import type { Results } from './report.ts';

interface Row {
  what: string;
  target: string;
  measured: string;
  met: boolean | undefined;
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits });

export function targetsSection(r: Results & { footprint: Footprint | undefined }): string[] {
  const rows: Row[] = [];
  for (const w of r.walnut) {
    const relay = w.rows / w.relaySeconds;
    const limit = Math.min(w.rows / w.recvlogicalSeconds, r.kafka.recordsPerSecond);
    rows.push({
      what: `drain, ${fmt(w.rowsPerTx)}-row transactions: relay / min(pg_recvlogical, ProducerPerformance tuned)`,
      target: '≥ 0.70',
      measured: `${(relay / limit).toFixed(2)} (${fmt(relay)} / ${fmt(limit)} events/s)`,
      met: relay / limit >= 0.7,
    });
    if (w.relayCpuSeconds !== null) {
      const micros = (w.relayCpuSeconds / w.rows) * 1e6;
      rows.push({
        what: `relay CPU per event, ${fmt(w.rowsPerTx)}-row transactions`,
        target: '≤ 12 µs',
        measured: `${micros.toFixed(1)} µs`,
        met: micros <= 12,
      });
    }
    if (w.relayPeakRssBytes !== null) {
      const mib = w.relayPeakRssBytes / 2 ** 20;
      rows.push({
        what: `relay peak RSS, ${fmt(w.rows)}-row drain, ${fmt(w.rowsPerTx)}-row transactions`,
        target: '≤ 150 MB',
        measured: `${mib.toFixed(0)} MiB (${(w.relayPeakRssBytes / 1e6).toFixed(0)} MB)`,
        met: w.relayPeakRssBytes <= 150e6,
      });
    }
  }
  const at1000 = r.latency.find((l) => l.system === 'Walnut' && l.phase === 'fixed' && l.offeredPerSecond === 1_000);
  rows.push({
    what: '202 → readable in kvs at 1,000 writes/s, p99',
    target: '≤ 50 ms',
    measured: at1000
      ? `${at1000.apply.p99.toFixed(1)} ms${at1000.sustained ? '' : ' (load not sustained)'}`
      : 'not run',
    met: at1000 ? at1000.sustained && at1000.apply.p99 <= 50 : undefined,
  });
  const at500 = r.latency.find((l) => l.system === 'Walnut' && l.phase === 'fixed' && l.offeredPerSecond === 500);
  rows.push({
    what: 'request → 202 at 500 writes/s, p99',
    target: '≤ 50 ms',
    measured: at500 ? `${at500.http.p99.toFixed(1)} ms${at500.sustained ? '' : ' (load not sustained)'}` : 'not run',
    met: at500 ? at500.sustained && at500.http.p99 <= 50 : undefined,
  });
  const sustained = r.latency.filter((l) => l.system === 'Walnut' && l.sustained).map((l) => l.offeredPerSecond);
  rows.push({
    what: 'highest sustained write rate, whole system',
    target: '≥ 1,500 writes/s',
    measured: r.latency.length === 0 ? 'not run' : `${fmt(Math.max(0, ...sustained))} writes/s`,
    met: r.latency.length === 0 ? undefined : Math.max(0, ...sustained) >= 1_500,
  });
  if (r.writes) {
    const ratio = r.writes.apiWritesPerSecond / r.writes.pgbenchTps;
    rows.push({
      what: 'API writes/s / pgbench tps, same transaction',
      target: '≥ 1.00',
      measured: `${ratio.toFixed(2)} (${fmt(r.writes.apiWritesPerSecond)} / ${fmt(r.writes.pgbenchTps)})`,
      met: ratio >= 1,
    });
  }
  const f = r.footprint;
  if (f) {
    rows.push(
      {
        what: 'sidecar: spawn → streaming',
        target: '≤ 1 s',
        measured: `${f.startToStreamingSeconds.toFixed(2)} s (the first relay on a new Kafka cluster: ${f.firstStartToStreamingSeconds.toFixed(2)} s)`,
        met: f.startToStreamingSeconds <= 1,
      },
      {
        what: `sidecar: idle RSS after ${f.idleSeconds.toFixed(0)} s`,
        target: '≤ 60 MB',
        measured: `${(f.idleRssBytes / 2 ** 20).toFixed(0)} MiB (${(f.idleRssBytes / 1e6).toFixed(0)} MB)`,
        met: f.idleRssBytes <= 60e6,
      },
      {
        what: `sidecar: idle CPU over ${f.idleSeconds.toFixed(0)} s`,
        target: '≤ 0.5% of a core',
        measured: `${(f.idleCpuShareOfCore * 100).toFixed(2)}%`,
        met: f.idleCpuShareOfCore <= 0.005,
      },
    );
  }
  return [
    '## Targets',
    '',
    "Issue 26's targets beside this run's figures. A miss is reported, not hidden; a row that this run did not measure says so.",
    '',
    '| | target | measured | |',
    '|---|---|---|---|',
    ...rows.map(
      (row) =>
        `| ${row.what} | ${row.target} | ${row.measured} | ${row.met === undefined ? '—' : row.met ? 'met' : 'missed'} |`,
    ),
    '',
  ];
}
