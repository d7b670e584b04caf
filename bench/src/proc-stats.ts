import { readFileSync } from 'node:fs';

/** Linux's USER_HZ: /proc/stat and /proc/<pid>/stat count CPU time in these ticks. */
export const CLOCK_TICKS_PER_SECOND = 100;

/** A process's command name and user + system CPU ticks so far, from /proc (Linux), or null once gone. */
export function processCpuTicks(pid: number | string): { comm: string; ticks: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is parenthesised and may contain spaces; after it, utime and stime are the 12th and 13th fields.
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { comm, ticks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return null;
  }
}

/** User + system CPU seconds a process has used so far, or null once gone. */
export function cpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  const p = processCpuTicks(pid);
  return p ? p.ticks / CLOCK_TICKS_PER_SECOND : null;
}

/** Resident memory of a process now, from /proc (Linux), or null once gone. */
export function rssBytes(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) * 1024 : null;
  } catch {
    return null;
  }
}
