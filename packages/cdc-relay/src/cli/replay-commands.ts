import { exitRefused } from '@walnut/runtime';
import type { Command } from 'commander';
import { type ReplayRequest, runReplay, type StopSignal } from '../replay/replay-run.ts';
import { runSnapshot, type SnapshotRequest } from '../replay/snapshot-run.ts';
import { exitWith } from './exit-codes.ts';
import { runRelay } from './run-command.ts';
import { addSettingOptions, allSettings, configOrExit, kafkaOnlyOrExit, replaySettings } from './settings.ts';

/**
 * `replay` and `snapshot`: read outbox rows with ordinary queries and send
 * them in acked pages, saving progress after each (docs/relay.md, "Replay and
 * snapshot"). Their flags become the requests replay/ runs.
 */

interface ReplayFlags {
  fromId?: string;
  toId?: string;
  since?: string;
  until?: string;
  aggregateType?: string;
  aggregateId?: string;
  all?: boolean;
  toTopic?: string;
  pageSize: string;
  progressFile: string;
  resume?: boolean;
  replayId?: string;
  dryRun?: boolean;
}

function pageSizeOrExit(raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 100_000) {
    exitRefused([`walnut-relay: --page-size must be a whole number from 1 to 100000, got ${raw}`]);
  }
  return n;
}

/** SIGINT/SIGTERM stop a replay or snapshot after the pages in flight are acked and saved. */
function stopOnSignals(): StopSignal {
  const stop = { stopped: false };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      console.error(`walnut-relay: ${signal}: stopping after the open Kafka transaction commits`);
      stop.stopped = true;
    });
  }
  return stop;
}

/**
 * WALNUT_TEST_PAUSE_AFTER_SLOT_CREATED=1, for tests only: the snapshot stops
 * between creating its slot and saving its consistent point, says so, and
 * waits for the SIGKILL the test sends (test/snapshot-slot.test.ts).
 */
function pauseForTests(): Promise<void> {
  console.error('walnut-relay: WALNUT_TEST_PAUSE_AFTER_SLOT_CREATED: slot created, pausing until killed');
  return new Promise(() => {
    setInterval(() => {}, 60_000);
  });
}

/** `walnut-relay replay`: re-publish a selection of retained outbox rows. */
export function addReplayCommand(program: Command): void {
  addSettingOptions(
    program
      .command('replay')
      .description(
        're-publish retained outbox rows (same mapping, plus a walnut-replay header) while the live relay streams on',
      )
      .option('--from-id <id>', 'rows whose id is at least this')
      .option('--to-id <id>', 'rows whose id is at most this')
      .option('--since <time>', 'rows created at or after this time (ISO 8601)')
      .option('--until <time>', 'rows created before this time (ISO 8601)')
      .option('--aggregate-type <type>', 'rows of this aggregate type')
      .option('--aggregate-id <id>', 'rows of this aggregate id (the Kafka key)')
      .option('--all', 'every row of the outbox (without a selection, replay refuses to start)')
      .option('--to-topic <topic>', 'send every record to this topic instead of the mapped one')
      .option('--page-size <rows>', 'rows read, sent and acked per page', '1000')
      .option('--progress-file <path>', 'where acked progress is saved after every page', 'walnut-replay.json')
      .option('--resume', 'continue the replay the progress file holds, after its last acked row')
      .option('--replay-id <id>', 'value of the walnut-replay header (default replay-<UTC time>)')
      .option('--dry-run', 'count the selected rows and exit'),
    replaySettings,
  ).action(async (flags: ReplayFlags, command: Command) => {
    const { config } = configOrExit(command, replaySettings);
    if (!flags.dryRun) kafkaOnlyOrExit(config, 'replay');
    const request: ReplayRequest = {
      selection: {
        ...(flags.fromId !== undefined ? { fromId: flags.fromId } : {}),
        ...(flags.toId !== undefined ? { toId: flags.toId } : {}),
        ...(flags.since !== undefined ? { since: flags.since } : {}),
        ...(flags.until !== undefined ? { until: flags.until } : {}),
        ...(flags.aggregateType !== undefined ? { aggregateType: flags.aggregateType } : {}),
        ...(flags.aggregateId !== undefined ? { aggregateId: flags.aggregateId } : {}),
      },
      all: !!flags.all,
      toTopic: flags.toTopic,
      pageSize: pageSizeOrExit(flags.pageSize),
      progressFile: flags.progressFile,
      resume: !!flags.resume,
      replayId: flags.replayId,
      dryRun: !!flags.dryRun,
    };
    try {
      await runReplay(config, request, stopOnSignals());
      process.exit(0);
    } catch (error) {
      exitWith(error);
    }
  });
}

/** `walnut-relay snapshot`: relay the rows an adopted outbox already holds, then stream. */
export function addSnapshotCommand(program: Command): void {
  addSettingOptions(
    program
      .command('snapshot')
      .description(
        'adopt an outbox that already holds rows: create the slot, relay every row committed before it, then stream from it',
      )
      .option('--page-size <rows>', 'rows read, sent and acked per page', '1000')
      .option('--progress-file <path>', 'where acked progress is saved (default: --snapshot-progress-file)')
      .option('--resume', 'continue the interrupted snapshot the progress file holds')
      .option('--no-stream', 'exit once the snapshot is acked instead of streaming the slot'),
    allSettings,
  ).action(
    async (flags: { pageSize: string; progressFile?: string; resume?: boolean; stream: boolean }, command: Command) => {
      const started = configOrExit(command, allSettings);
      const { config } = started;
      kafkaOnlyOrExit(config, 'snapshot');
      const stop = stopOnSignals();
      const request: SnapshotRequest = {
        pageSize: pageSizeOrExit(flags.pageSize),
        progressFile: flags.progressFile ?? config.snapshotProgressFile,
        resume: !!flags.resume,
        ...(process.env.WALNUT_TEST_PAUSE_AFTER_SLOT_CREATED === '1' ? { afterSlotCreated: pauseForTests } : {}),
      };
      try {
        await runSnapshot(config, request, stop);
      } catch (error) {
        exitWith(error);
      }
      if (!flags.stream) process.exit(0);
      process.removeAllListeners('SIGTERM');
      process.removeAllListeners('SIGINT');
      await runRelay(started);
    },
  );
}
