/**
 * Walnut deployed for the load steps: a fixture's api, relay and applier, one
 * process each, the relay configured by the fixture's env (so a fixture made
 * with RELAY_DELIVERY=exactly-once is the exactly-once deployment).
 */
import type { WalnutFixture, WalnutProcess } from '@walnut/stack';
import type { SystemName, SystemUnderLoad } from './load-steps.ts';
import type { CpuPart } from './machine-cpu.ts';

/** The parts' process ids, for the CPU figures; `parts` names each process's part, in order. */
export function processParts(processes: readonly WalnutProcess[], parts: readonly CpuPart[]): Map<number, CpuPart> {
  const byPid = new Map<number, CpuPart>();
  processes.forEach((p, i) => {
    const part = parts[i];
    if (p.pid !== undefined && part) byPid.set(p.pid, part);
  });
  return byPid;
}

/** A running deployment as a system under load: it fails its step when any of its processes has exited. */
export function walnutSystem(
  name: SystemName,
  fixture: WalnutFixture,
  apiUrl: string,
  processes: readonly [relay: WalnutProcess, applier: WalnutProcess, api: WalnutProcess],
): SystemUnderLoad {
  return {
    name,
    apiUrl,
    pool: fixture.pool,
    processes: processParts(processes, ['relay', 'applier', 'api']),
    assertRunning() {
      for (const p of processes) if (!p.running) throw new Error(`${name}: ${p.name} exited:\n${p.tail()}`);
    },
  };
}

/** Starts the three processes; the fixture's close() stops them. */
export async function startWalnutDeployment(name: SystemName, fixture: WalnutFixture): Promise<SystemUnderLoad> {
  const relay = await fixture.startRelay();
  const applier = await fixture.startApplier();
  const api = await fixture.startApi();
  return walnutSystem(name, fixture, api.url, [relay, applier, api.process]);
}
