/**
 * A sidecar's footprint: the relay started the way its image starts it (the
 * bin, running the bundled build), next to a database where nothing happens.
 * Start-up is spawn to the "streaming" log line; then CPU and RSS over an idle
 * stretch, from /proc.
 *
 * Twice, each time with a slot of its own: the first relay to fence a producer on
 * a new Kafka cluster waits while the broker creates its transaction log
 * (__transaction_state, 50 partitions), about 0.6 s here, once per cluster. The
 * second start is what a sidecar costs next to a Kafka in use; both are reported.
 */
import { freePort, startWalnutProcess, type WalnutFixture } from '@walnut/stack';
import { cpuSeconds } from './proc-stats.ts';

export interface Footprint {
  /** A new slot, on a Kafka cluster where transactions were used before. */
  startToStreamingSeconds: number;
  /** The same, for the first relay on this (new) Kafka cluster. */
  firstStartToStreamingSeconds: number;
  idleSeconds: number;
  idleCpuShareOfCore: number;
  idleRssBytes: number;
}

export async function measureFootprint(
  walnut: WalnutFixture,
  idleSeconds: number,
  log: (line: string) => void,
): Promise<Footprint> {
  const first = await startToStreaming(walnut, 'bench_footprint_first');
  await first.relay.stop('SIGTERM');
  await dropSlot(walnut, 'bench_footprint_first');
  log(`  sidecar: the first relay on this Kafka cluster streamed ${first.seconds.toFixed(2)} s after spawn`);
  const slot = 'bench_footprint';
  const { relay, seconds: startToStreamingSeconds } = await startToStreaming(walnut, slot);
  try {
    const cpuAtStart = cpuSeconds(relay.pid) ?? 0;
    const idleStarted = performance.now();
    await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000));
    const measuredSeconds = (performance.now() - idleStarted) / 1000;
    const idleCpuShareOfCore = ((cpuSeconds(relay.pid) ?? 0) - cpuAtStart) / measuredSeconds;
    const idleRssBytes = relay.rssBytes() ?? 0;
    log(
      `  sidecar: streaming ${startToStreamingSeconds.toFixed(2)} s after spawn; idle ${measuredSeconds.toFixed(0)} s: ${(idleCpuShareOfCore * 100).toFixed(2)}% of a core, RSS ${(idleRssBytes / 2 ** 20).toFixed(0)} MiB`,
    );
    return {
      startToStreamingSeconds,
      firstStartToStreamingSeconds: first.seconds,
      idleSeconds: measuredSeconds,
      idleCpuShareOfCore,
      idleRssBytes,
    };
  } finally {
    await relay.stop('SIGTERM');
    await dropSlot(walnut, slot);
  }
}

async function startToStreaming(walnut: WalnutFixture, slot: string) {
  const spawned = performance.now();
  const relay = startWalnutProcess('relay', {
    ...walnut.env,
    RELAY_SLOT: slot,
    RELAY_HTTP_PORT: String(await freePort()),
  });
  try {
    await relay.waitForLine(/"state":"streaming"/);
  } catch (error) {
    await relay.stop('SIGTERM');
    throw error;
  }
  return { relay, seconds: (performance.now() - spawned) / 1000 };
}

async function dropSlot(walnut: WalnutFixture, slot: string): Promise<void> {
  await walnut.pool.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => {});
}
