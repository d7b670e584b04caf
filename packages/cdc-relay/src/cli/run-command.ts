import { listeningPort, type StartedRunnable } from '@walnut/runtime';
import type { Command } from 'commander';
import type { RelayConfig, RelayEnv } from '../config.ts';
import { RelayError } from '../errors.ts';
import { startHttpServer } from '../http/http-server.ts';
import { RelayMetrics } from '../http/metrics.ts';
import { RelayStatus } from '../http/relay-status.ts';
import { Relay } from '../relay.ts';
import { incompleteSnapshot } from '../replay/snapshot-run.ts';
import { SlotFiguresProbe } from '../slot-figures.ts';
import { exitWith } from './exit-codes.ts';
import { addSettingOptions, allSettings, configOrExit } from './settings.ts';
import { startupGarbageCollection } from './startup-garbage.ts';

/** `walnut-relay run`, the default command: stream the slot to the sink until SIGTERM/SIGINT. */
export function addRunCommand(program: Command): void {
  addSettingOptions(program.command('run', { isDefault: true }), allSettings)
    .description(
      'stream the slot to Kafka (or Redis Streams or NATS JetStream, RELAY_SINK) until SIGTERM/SIGINT (the default command)',
    )
    .action(async (_opts, command: Command) => {
      const started = configOrExit(command, allSettings);
      try {
        const refusal = incompleteSnapshot(started.config.snapshotProgressFile, started.config.slot);
        if (refusal) throw refusal;
      } catch (error) {
        exitWith(error);
      }
      await runRelay(started);
    });
}

/**
 * Streams until stopped: exit 0 after a graceful stop (SIGTERM/SIGINT drain
 * the acks in flight, relay.ts), exit 1 with one fatal line carrying the code
 * of a RelayError a human must act on.
 */
export async function runRelay({
  config,
  log,
  onStop,
}: StartedRunnable<RelayEnv> & { config: RelayConfig }): Promise<void> {
  const metrics = new RelayMetrics();
  metrics.sinkInfo.set({ sink: config.sink.kind }, 1);
  const status = new RelayStatus(config.slot, config.sink.kind);
  const relay = new Relay(config, log, metrics, status, startupGarbageCollection());
  const lagClient = new SlotFiguresProbe(config.databaseUrl, config.slot, { onQuery: () => metrics.slotQueries.inc() });
  const server = await startHttpServer(config.http.port, config.http.host, metrics, {
    ready: () => relay.ready,
    beforeScrape: async () => {
      const slot = await lagClient.figures();
      if (slot) metrics.observeSlot(slot);
    },
    status: async () => status.snapshot(relay.inflight, await lagClient.figures().catch(() => null)),
  });
  log.info({ port: listeningPort(server) }, 'http listening (/ status page, /status.json, /health /ready /metrics)');

  const finished = relay.run().then(
    async () => {
      server.close();
      await lagClient.close();
    },
    (error: unknown) => {
      const failure = error instanceof RelayError ? error : undefined;
      log.fatal({ code: failure?.code ?? 'UNEXPECTED', err: error }, failure?.message ?? String(error));
      process.exit(1);
    },
  );
  // run() resolves only after stop() has drained and confirmed; the process exits 0 after that, in onStop.
  onStop(async () => {
    await relay.stop();
    await finished;
  });
  await finished;
}
