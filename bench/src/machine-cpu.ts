/**
 * Where the machine's CPU went during a load step, by part of the system: the
 * named processes of the deployment under load, the processes of the deployments
 * waiting their turn, every Postgres process (its backends, walsenders and
 * background workers), Kafka's JVMs, the benchmark itself (the load generator),
 * and the rest of the machine. Read from /proc
 * (Linux) before and after the step; a tail latency on a saturated machine is
 * queueing for a core, and this is what shows it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { CLOCK_TICKS_PER_SECOND, processCpuTicks } from './proc-stats.ts';

/** `idle`: the api, relay and applier processes of the deployments not under load in the step. */
export type CpuPart = 'api' | 'relay' | 'applier' | 'postgres' | 'kafka' | 'bench' | 'idle' | 'other';
export const CPU_PARTS: readonly CpuPart[] = ['api', 'relay', 'applier', 'postgres', 'kafka', 'bench', 'idle', 'other'];

export interface CpuSnapshot {
  at: number;
  /** Busy ticks of the whole machine (every CPU, all but idle and iowait). */
  machine: number;
  /** Ticks per process id, with the part it belongs to. */
  processes: Map<number, { part: CpuPart; ticks: number }>;
}

export interface CpuUse {
  /** Cores the machine had. */
  cores: number;
  /** Cores busy on average over the step, out of `cores`. */
  busyCores: number;
  /** Share of one core per part, on average over the step (1 = a whole core). */
  parts: Record<CpuPart, number>;
}

function machineBusyTicks(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  // cpu user nice system idle iowait irq softirq steal ...
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  return (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
}

/** A snapshot now; `named` maps the deployment's process ids to their part. */
export function cpuSnapshot(named: ReadonlyMap<number, CpuPart>): CpuSnapshot {
  const processes = new Map<number, { part: CpuPart; ticks: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const p = processCpuTicks(entry);
    if (!p) continue;
    const part: CpuPart | undefined =
      named.get(pid) ??
      (pid === process.pid ? 'bench' : p.comm === 'postgres' ? 'postgres' : p.comm === 'java' ? 'kafka' : undefined);
    if (part) processes.set(pid, { part, ticks: p.ticks });
  }
  return { at: performance.now(), machine: machineBusyTicks(), processes };
}

/**
 * The use between two snapshots. A process that started in between counts from
 * zero; one that ended is missed (its share lands in `other`, which is the
 * machine's busy time less the parts).
 */
export function cpuUse(before: CpuSnapshot, after: CpuSnapshot): CpuUse {
  const seconds = (after.at - before.at) / 1000;
  const perCore = (ticks: number) => ticks / CLOCK_TICKS_PER_SECOND / seconds;
  const parts = Object.fromEntries(CPU_PARTS.map((p) => [p, 0])) as Record<CpuPart, number>;
  for (const [pid, { part, ticks }] of after.processes) {
    parts[part] += perCore(ticks - (before.processes.get(pid)?.ticks ?? 0));
  }
  const busyCores = perCore(after.machine - before.machine);
  parts.other = Math.max(0, busyCores - CPU_PARTS.reduce((sum, p) => (p === 'other' ? sum : sum + parts[p]), 0));
  return { cores: os.cpus().length, busyCores, parts };
}
