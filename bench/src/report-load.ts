/** The report's sections under load: end-to-end latency of both systems, and API writes against pgbench. */
import { FIXED_RATES, highestSustained, type LoadStep, SUSTAINED_FRACTION, type SystemName } from './load-steps.ts';
import { CPU_PARTS } from './machine-cpu.ts';
import { POLL_INTERVAL_MS } from './polling-relay.ts';
import { fmt, ms } from './report-format.ts';
import type { WriteThroughput } from './write-throughput.ts';

export function latencySection(r: {
  latency: LoadStep[];
  latencySeconds: number;
  searchSeconds: number;
  maxSearchSteps: number;
  latencyChart: string | undefined;
  /** Whether Walnut exactly-once took its turn at each step too (reported in its own section). */
  alongside: boolean;
}): string[] {
  const out: string[] = ['## End-to-end latency', ''];
  if (r.latency.length === 0) return [...out, 'Not measured in this run.', ''];
  const systems = [...new Set(r.latency.map((l) => l.system))];
  out.push(
    `From the API's 202 to the value being readable in \`kvs\`, for ${systems.join(' and ')}, each as deployed with one process per part. Walnut is its api, relay and applier. The polling baseline is the same api and applier on a Postgres server of its own (the same build and settings), whose \`outbox\` has the polling columns, with the polling relay (\`bench/src/polling-relay-cli.ts\`, one worker, its own process) in place of Walnut's relay. Only the hop from the outbox to Kafka differs. Both deployments run side by side and the steps alternate between them (Walnut, then polling${r.alongside ? ', then a third deployment, Walnut with its relay in exactly-once mode, whose figures are in "Delivery modes" below' : ''}, at each load), so a change in the machine's other work falls on ${r.alongside ? 'all of them' : 'both'}; only one is under load at a time. The idle ${r.alongside ? 'ones still cost' : 'one still costs'} a little (the "idle" column below): the polling relay polls its empty outbox every ${POLL_INTERVAL_MS} ms, and the other processes wait on their sockets. Each deployment has its Postgres server to itself${r.alongside ? ' (the exactly-once one too)' : ''}, so no relay's walsender decodes another deployment's WAL only to skip it, as it would on a shared server.`,
    '',
    `Writes are offered at a fixed rate, open loop (sent on schedule whether or not earlier ones finished, at most 512 in flight; beyond that a write is shed and counted), each to its own key, from the benchmark's own Node process on the same cores. The end of each figure is the arrival of the applier's NOTIFY on \`walnut_applied\` for that request, on a LISTEN connection of the benchmark: the applier sends it in the transaction that writes the value to \`kvs\`, and Postgres delivers it at that commit, so it marks the moment the value became readable (the same for both systems, which share the applier). Per system: a 3 s warm-up at 100 writes/s (not counted), ${r.latencySeconds} s at each of ${FIXED_RATES.map(fmt).join(', ')} writes/s, then a search for the highest sustained rate in steps of ${r.searchSeconds} s: ×1.5 (rounded to 50) while each step is sustained, then bisecting geometrically between the highest sustained and the lowest not sustained rate until they are within 20%, at most ${r.maxSearchSteps} steps per system. A rate is sustained when the API answered 202 to at least ${SUSTAINED_FRACTION * 100}% of it (accepted writes/s), no write was shed or failed, and every accepted write was readable in \`kvs\` within 30 s after the load. Before each step the benchmark waits until every accepted request is marked applied, so no step inherits a backlog.`,
    '',
    '| system | offered writes/s | step | sustained | accepted writes/s | 202 → kvs p50 (ms) | p95 | p99 | max | request → 202 p50 (ms) | p99 | sent | applied | not applied in 30 s | failed | shed |',
    '|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const l of r.latency) {
    out.push(
      `| ${l.system} | ${fmt(l.offeredPerSecond)} | ${l.phase} | ${l.sustained ? 'yes' : 'no'} | ${fmt(l.acceptedPerSecond)} | ${ms(l.apply.p50)} | ${ms(l.apply.p95)} | ${ms(l.apply.p99)} | ${ms(l.apply.max)} | ${ms(l.http.p50)} | ${ms(l.http.p99)} | ${fmt(l.sent)} | ${fmt(l.applied)} | ${fmt(l.notApplied)} | ${fmt(l.failed)} | ${fmt(l.shed)} |`,
    );
  }
  out.push(
    '',
    '"accepted writes/s" is 202s over the time from the first request to the last 202. Where a rate is not sustained, the API (or the machine) did not keep up: writes queued before their 202, and the 202 → kvs figures describe a saturated system, not the offered rate.',
    '',
    'Highest sustained rate found, per system (the true limit lies between it and the next rate tried above it, if any):',
    '',
    '| system | highest sustained writes/s | 202 → kvs p50 (ms) | p95 | p99 | max | next rate tried, not sustained |',
    '|---|---:|---:|---:|---:|---:|---:|',
  );
  for (const system of systems) {
    const own = r.latency.filter((l) => l.system === system);
    const best = highestSustained(own);
    const above = own
      .filter((l) => !l.sustained && l.offeredPerSecond > (best?.offeredPerSecond ?? 0))
      .sort((a, b) => a.offeredPerSecond - b.offeredPerSecond)[0];
    const next = above ? fmt(above.offeredPerSecond) : 'none (the search ran out of steps)';
    if (!best) out.push(`| ${system} | none of the rates tried | | | | | ${next} |`);
    else
      out.push(
        `| ${system} | ${fmt(best.offeredPerSecond)} | ${ms(best.apply.p50)} | ${ms(best.apply.p95)} | ${ms(best.apply.p99)} | ${ms(best.apply.max)} | ${next} |`,
      );
  }
  out.push('');
  out.push(...stagesTable(r.latency));
  out.push(...ratioTable(r.latency));
  out.push(
    `Caveats: both systems share the API, so once the API is what saturates, the highest sustained rate says more about the API than about the relays. The polling relay sleeps ${POLL_INTERVAL_MS} ms only after an empty poll: while writes arrive faster than one poll, publish and update round trip it polls back to back, but a write committed just after an empty poll waits up to ${POLL_INTERVAL_MS} ms for the next one. Its records carry \`poll_seq\` as their "commit LSN" header, which the applier needs in order to decode them; insert order is not commit order, which is harmless here only because every write has its own key. Everything runs on one shared machine with the load generator; each rate is one run, not a distribution of runs.`,
    '',
  );
  if (r.latencyChart) out.push(`![End-to-end latency, ms](${r.latencyChart})`, '');
  return out;
}

/**
 * Where each step's time and CPU went: 202 → kvs split at the applier's
 * transaction start, and the machine's cores by part while the load ran.
 */
function stagesTable(latency: LoadStep[]): string[] {
  const pct = (share: number) => `${Math.round(share * 100)}%`;
  const out = [
    "Where the time and the machine went, per step. 202 → kvs is split at the applier's transaction start: `requests.created_at` (the API's statement start, just before its commit) → `requests.applied_at` (the start of the applier's transaction that wrote the value) holds the relay, Kafka and the applier's fetch; from there to the NOTIFY's arrival, the applier's statement, its commit and the delivery. The CPU columns are shares of one core, averaged over the step's load, from /proc: the deployment's api, relay and applier processes, every Postgres process, Kafka's JVM, the benchmark's own process (the load generator and the LISTEN connection), the api, relay and applier processes of the deployments waiting their turn (idle: a relay's walsender still reads every commit's WAL to skip it, and sends the relay keepalives as it passes them), and the rest of the machine (the kernel's threads and interrupts, time stolen by the hypervisor, other tenants' work).",
    '',
    `| system | offered writes/s | statement → apply start p50 (ms) | p99 | apply start → readable p50 (ms) | p99 | cores busy | ${CPU_PARTS.join(' | ')} |`,
    `|---|---:|---:|---:|---:|---:|---:|${CPU_PARTS.map(() => '---:').join('|')}|`,
  ];
  for (const l of latency) {
    const st = l.stages;
    out.push(
      `| ${l.system} | ${fmt(l.offeredPerSecond)} | ${st ? `${ms(st.commitToApplyStart.p50)} | ${ms(st.commitToApplyStart.p99)} | ${ms(st.applyStartToReadable.p50)} | ${ms(st.applyStartToReadable.p99)}` : ' | | | '} | ${l.cpu.busyCores.toFixed(2)} of ${l.cpu.cores} | ${CPU_PARTS.map((p) => pct(l.cpu.parts[p])).join(' | ')} |`,
    );
  }
  out.push('');
  return out;
}

/** polling p50 / Walnut p50 at every offered rate both were measured at (their highest sustained rates differ, see above). */
function ratioTable(latency: LoadStep[]): string[] {
  const at = (system: SystemName, offered: number) =>
    latency.find((l) => l.system === system && l.offeredPerSecond === offered);
  const rates = [...new Set(latency.map((l) => l.offeredPerSecond))].sort((a, b) => a - b);
  const rows: string[] = [];
  const row = (label: string, walnut: LoadStep | undefined, polling: LoadStep | undefined) => {
    if (!walnut || !polling) return;
    const mark = (l: LoadStep) => (l.sustained ? '' : ' (not sustained)');
    rows.push(
      `| ${label} | ${ms(walnut.apply.p50)}${mark(walnut)} | ${ms(polling.apply.p50)}${mark(polling)} | ${(polling.apply.p50 / walnut.apply.p50).toFixed(2)} |`,
    );
  };
  for (const offered of rates) row(fmt(offered), at('Walnut', offered), at('polling', offered));
  if (rows.length === 0) return [];
  return [
    'Median latency, polling against Walnut:',
    '',
    '| offered writes/s | Walnut p50 (ms) | polling p50 (ms) | polling p50 / Walnut p50 |',
    '|---|---:|---:|---:|',
    ...rows,
    '',
  ];
}

export function writesSection(w: WriteThroughput | undefined): string[] {
  const out: string[] = ['## API write throughput against pgbench', ''];
  if (!w) return [...out, 'Not measured in this run.', ''];
  out.push(
    `With Walnut's relay and applier running (so downstream work is the same for both), an API process of its own with a pool of ${w.clients} Postgres connections (\`API_PG_POOL_MAX=${w.clients}\`) takes single-key writes from autocannon: ${w.clients} keep-alive connections on loopback, closed loop (each connection sends its next request when the last one is answered), each request to a new key, for ${w.seconds} s after a 3 s warm-up that is not counted. Then \`pgbench -c ${w.clients} -j 2 -T ${w.seconds}\` runs the transaction the API commits (one outbox row with a valid kv event and one \`requests\` row, sharing a request id, so the applier marks pgbench's requests applied as it does the API's) against the same database: as many connections as the API's pool and the load's concurrency. pgbench commits one write per transaction; the API may share a transaction between concurrent writes (its group commit, described in docs/api.md), so the ratio compares the two write paths as they are, not equal numbers of commits. Both commit with the server's defaults (the harness keeps fsync on; neither changes synchronous_commit). The API's CPU is its process's user + system time (from /proc) over the measured run, divided by its 202s.`,
    '',
    '| | writes/s | latency |',
    '|---|---:|---|',
    `| API (POST /kv → 202), ${w.clients} connections | ${fmt(w.apiWritesPerSecond)} (${fmt(w.apiFailed)} not 202) | p50 ${ms(w.apiLatencyP50Ms)} ms, p99 ${ms(w.apiLatencyP99Ms)} ms |`,
    `| pgbench, same transaction, ${w.clients} connections | ${fmt(w.pgbenchTps)} | see its summary |`,
    `| API / pgbench | ${(w.apiWritesPerSecond / w.pgbenchTps).toFixed(2)} | |`,
    '',
    `API CPU per accepted write: ${w.apiCpuMsPerWrite === null ? 'n/a' : `${w.apiCpuMsPerWrite.toFixed(3)} ms`}.`,
    '',
    `pgbench's summary: ${w.pgbenchLines.map((l) => `\`${l}\``).join(', ')}`,
    '',
    "autocannon runs in the benchmark's Node process and pgbench is a C client; both share the machine's cores with Postgres, Kafka, the relay and the applier, and autocannon costs more CPU per request than pgbench does per transaction, so the ratio understates what the API would do with cores of its own.",
    '',
  );
  return out;
}
