/**
 * A sidecar's footprint: the relay started the way its image starts it (the
 * bin, running the bundled build), next to a database where nothing happens.
 * Start-up is spawn to the "streaming" log line; then CPU and RSS over an idle
 * stretch, from /proc.
 */
import { freePort, startWalnutProcess, type WalnutFixture } from '@walnut/stack';
import { cpuSeconds } from './proc-stats.ts';

export interface Footprint {
  startToStreamingSeconds: number;
  idleSeconds: number;
  idleCpuShareOfCore: number;
  idleRssBytes: number;
}

export async function measureFootprint(
  walnut: WalnutFixture,
  idleSeconds: number,
  log: (line: string) => void,
): Promise<Footprint> {
  const slot = 'bench_footprint';
  const spawned = performance.now();
  const relay = startWalnutProcess('relay', {
    ...walnut.env,
    RELAY_SLOT: slot,
    RELAY_HTTP_PORT: String(await freePort()),
  });
  try {
    await relay.waitForLine(/"state":"streaming"/);
    const startToStreamingSeconds = (performance.now() - spawned) / 1000;
    const cpuAtStart = cpuSeconds(relay.pid) ?? 0;
    const idleStarted = performance.now();
    await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000));
    const measuredSeconds = (performance.now() - idleStarted) / 1000;
    const idleCpuShareOfCore = ((cpuSeconds(relay.pid) ?? 0) - cpuAtStart) / measuredSeconds;
    const idleRssBytes = relay.rssBytes() ?? 0;
    log(
      `  sidecar: streaming ${startToStreamingSeconds.toFixed(2)} s after spawn; idle ${measuredSeconds.toFixed(0)} s: ${(idleCpuShareOfCore * 100).toFixed(2)}% of a core, RSS ${(idleRssBytes / 2 ** 20).toFixed(0)} MiB`,
    );
    return { startToStreamingSeconds, idleSeconds: measuredSeconds, idleCpuShareOfCore, idleRssBytes };
  } finally {
    await relay.stop('SIGTERM');
    await walnut.pool.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => {});
  }
}
