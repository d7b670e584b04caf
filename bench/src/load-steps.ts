/**
 * End-to-end latency of each system at the fixed offered loads, then a search
 * for the highest load it sustains: up by SEARCH_FACTOR while it keeps up, then
 * bisecting (geometrically) between the highest load it kept up with and the
 * lowest it did not, for a few steps.
 */
import type pg from 'pg';
import { type LatencyResult, measureLatency } from './latency.ts';
import type { CpuPart } from './machine-cpu.ts';

export type SystemName = 'Walnut' | 'Walnut exactly-once' | 'polling';

/** An API, relay and applier running together, and the database the watcher reads `kvs` from. */
export interface SystemUnderLoad {
  name: SystemName;
  apiUrl: string;
  pool: pg.Pool;
  /** Throws when one of its processes has died: a dead relay would read as a latency. */
  assertRunning(): void;
  /** Its api, relay and applier processes by id, for the CPU figures of each step. */
  processes: ReadonlyMap<number, CpuPart>;
}

export interface LoadStep extends LatencyResult {
  system: SystemName;
  phase: 'fixed' | 'search';
  sustained: boolean;
}

export const FIXED_RATES = [200, 500, 1_000];
const SEARCH_FACTOR = 1.5;
/** The search stops once its bracket is this narrow: closer than that is the machine's noise. */
const SEARCH_RESOLUTION = 1.2;
/** The API took at least 95% of the offered writes, and every one of them was sent, accepted and applied. */
export const SUSTAINED_FRACTION = 0.95;

export function isSustained(l: LatencyResult): boolean {
  return (
    l.acceptedPerSecond >= SUSTAINED_FRACTION * l.offeredPerSecond &&
    l.shed === 0 &&
    l.failed === 0 &&
    l.notApplied === 0
  );
}

/** The next offered rate to try, or undefined when the search is done. Pure. */
export function nextRate(steps: readonly Pick<LoadStep, 'offeredPerSecond' | 'sustained'>[]): number | undefined {
  const sustained = steps.filter((s) => s.sustained).map((s) => s.offeredPerSecond);
  if (sustained.length === 0) return undefined;
  const lo = Math.max(...sustained);
  const above = steps.filter((s) => !s.sustained && s.offeredPerSecond > lo).map((s) => s.offeredPerSecond);
  if (above.length === 0) return roundRate(lo * SEARCH_FACTOR);
  const hi = Math.min(...above);
  if (hi / lo <= SEARCH_RESOLUTION) return undefined;
  const rate = roundRate(Math.sqrt(lo * hi));
  return rate > lo && rate < hi ? rate : undefined;
}

const roundRate = (rate: number) => Math.round(rate / 50) * 50;

/**
 * Runs every system at each fixed load, then each one's search, one system after
 * the other at every step: whatever else the shared machine does then weighs on
 * both systems' figures alike, not on whichever would have run second.
 */
export async function runLoadSteps(
  systems: readonly SystemUnderLoad[],
  opts: { fixedSeconds: number; searchSeconds: number; maxSearchSteps: number; log: (line: string) => void },
): Promise<LoadStep[]> {
  for (const system of systems) {
    // Warm-up, not counted: first connections, JIT, the applier's group join.
    await measureLatency({ apiUrl: system.apiUrl, pool: system.pool, ratePerSecond: 100, seconds: 3, label: 'warmup' });
    const unapplied = await settle(system.pool);
    if (unapplied > 0) opts.log(`${system.name}: ${unapplied} warm-up requests still not applied after 60 s`);
  }
  const steps: LoadStep[] = [];
  /** Systems left with a backlog: their next step would inherit it, so they take no more. */
  const stuck = new Set<SystemName>();
  const step = async (system: SystemUnderLoad, ratePerSecond: number, phase: LoadStep['phase']) => {
    const seconds = phase === 'fixed' ? opts.fixedSeconds : opts.searchSeconds;
    opts.log(`${system.name}: end-to-end latency at ${ratePerSecond} writes/s for ${seconds} s`);
    system.assertRunning();
    const result = await measureLatency({
      apiUrl: system.apiUrl,
      pool: system.pool,
      ratePerSecond,
      seconds,
      label: `${phase}-${ratePerSecond}`,
      processes: withIdleNeighbours(system, systems),
    });
    system.assertRunning();
    const s: LoadStep = { ...result, system: system.name, phase, sustained: isSustained(result) };
    steps.push(s);
    const { p50, p95, p99, max } = s.apply;
    opts.log(
      `  202→kvs p50 ${p50.toFixed(1)} p95 ${p95.toFixed(1)} p99 ${p99.toFixed(1)} max ${max.toFixed(1)} ms; ${s.acceptedPerSecond.toFixed(0)} accepted/s, ${s.applied}/${s.sent} applied, ${s.failed} failed${s.failed > 0 ? ` (${JSON.stringify(s.failures)})` : ''}, ${s.shed} shed${s.sustained ? '' : ' (not sustained)'}`,
    );
    const unapplied = await settle(system.pool);
    if (unapplied > 0) {
      opts.log(`  ${unapplied} accepted requests still not applied after 60 s; no further steps for ${system.name}`);
      stuck.add(system.name);
    }
  };
  for (const rate of FIXED_RATES)
    for (const system of systems) if (!stuck.has(system.name)) await step(system, rate, 'fixed');
  for (let i = 0; i < opts.maxSearchSteps; i++) {
    let searched = false;
    for (const system of systems) {
      if (stuck.has(system.name)) continue;
      const rate = nextRate(steps.filter((s) => s.system === system.name));
      if (rate === undefined) continue;
      await step(system, rate, 'search');
      searched = true;
    }
    if (!searched) break;
  }
  return steps;
}

/** The system's processes by part, and the other systems' (idle meanwhile) as `idle`. */
function withIdleNeighbours(system: SystemUnderLoad, systems: readonly SystemUnderLoad[]): Map<number, CpuPart> {
  const parts = new Map<number, CpuPart>();
  for (const other of systems) if (other !== system) for (const pid of other.processes.keys()) parts.set(pid, 'idle');
  for (const [pid, part] of system.processes) parts.set(pid, part);
  return parts;
}

/** The highest offered rate the system sustained, with its figures, if any. */
export function highestSustained(steps: readonly LoadStep[]): LoadStep | undefined {
  return steps.filter((s) => s.sustained).sort((a, b) => b.offeredPerSecond - a.offeredPerSecond)[0];
}

/** Waits until every accepted request is applied (the applier marks them), at most 60 s; returns how many are not. */
async function settle(pool: pg.Pool): Promise<number> {
  const deadline = performance.now() + 60_000;
  for (;;) {
    const { rows } = await pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM requests WHERE applied_at IS NULL',
    );
    const unapplied = rows[0]?.n ?? 0;
    if (unapplied === 0 || performance.now() > deadline) return unapplied;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
