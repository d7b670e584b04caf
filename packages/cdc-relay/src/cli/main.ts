import { readFileSync } from 'node:fs';
import { createLogger, listeningPort, parseEnv } from '@walnut/runtime';
import { formatLsn } from '@walnut/schema';
import { Command } from 'commander';
import type pg from 'pg';
import type { z } from 'zod';
import { type RelayConfig, relayConfig, relayEnv } from '../config.ts';
import { RelayError } from '../errors.ts';
import { startHttpServer } from '../http/http-server.ts';
import { RelayMetrics } from '../http/metrics.ts';
import { RelayStatus } from '../http/relay-status.ts';
import { withPgClient } from '../pg-client.ts';
import { Relay } from '../relay.ts';
import { type ReplayRequest, runReplay, type StopSignal, UsageError } from '../replay/replay-run.ts';
import { incompleteSnapshot, runSnapshot, type SnapshotRequest } from '../replay/snapshot-run.ts';
import { noFailoverSlotsNote } from '../slot-failover.ts';
import { SlotFiguresProbe } from '../slot-figures.ts';
import { dropSlot } from '../slot-lifecycle.ts';
import {
  addSettingOptions,
  adminSettings,
  allSettings,
  rawSettings,
  replaySettings,
  settingLabel,
} from './settings.ts';
import { createSlot, slotStatus, syncPublication } from './slot-admin.ts';

const program = new Command('walnut-relay')
  .description('Streams outbox inserts from a Postgres pgoutput slot to Kafka, confirming only what Kafka acked.')
  .showHelpAfterError()
  .addHelpText(
    'after',
    '\nEvery option also reads the environment variable shown. DATABASE_URL and KAFKA_SASL_PASSWORD come only\nfrom the environment or from a file named by DATABASE_URL_FILE / KAFKA_SASL_PASSWORD_FILE.',
  );

function parseOrExit<T extends z.ZodType>(schema: T, raw: Record<string, string | undefined>): z.infer<T> {
  const parsed = parseEnv('walnut-relay', schema, raw, settingLabel);
  if (!parsed.ok) {
    for (const line of parsed.errors) console.error(line);
    process.exit(2);
  }
  return parsed.env;
}

addSettingOptions(program.command('run', { isDefault: true }), allSettings)
  .description('stream the slot to Kafka until SIGTERM/SIGINT (the default command)')
  .action(async (_opts, command: Command) => {
    const { config, level } = configOrExit(command, allSettings);
    try {
      const refusal = incompleteSnapshot(config.snapshotProgressFile, config.slot);
      if (refusal) throw refusal;
    } catch (error) {
      exitWith(error);
    }
    await run(config, level);
  });

/** Parses a command's settings into the relay's configuration, or exits 2 saying what is wrong. */
function configOrExit(
  command: Command,
  names: Parameters<typeof rawSettings>[1],
): { config: RelayConfig; level: string } {
  // Settings a command does not offer keep their defaults.
  const env = parseOrExit(relayEnv, rawSettings(command, names));
  try {
    return { config: relayConfig(env, (path) => readFileSync(path, 'utf8')), level: env.LOG_LEVEL };
  } catch (error) {
    console.error(`walnut-relay: ${(error as Error).message}`);
    process.exit(2);
  }
}

const adminEnv = relayEnv.pick({
  DATABASE_URL: true,
  RELAY_SLOT: true,
  RELAY_SLOT_FAILOVER: true,
  RELAY_PUBLICATION: true,
  RELAY_OUTBOX_TABLE: true,
  LOG_LEVEL: true,
});

/** Runs an admin action on a plain connection with the relay's own settings. */
function adminCommand(parent: Command, name: string, description: string, action: AdminAction): Command {
  return addSettingOptions(parent.command(name), adminSettings)
    .description(description)
    .action(async (opts: { json?: boolean }, command: Command) => {
      const env = parseOrExit(adminEnv, rawSettings(command, adminSettings));
      const [schema, table] = env.RELAY_OUTBOX_TABLE.split('.') as [string, string];
      const target = {
        slot: env.RELAY_SLOT,
        slotFailover: env.RELAY_SLOT_FAILOVER,
        publication: env.RELAY_PUBLICATION,
        schema,
        table,
        json: !!opts.json,
      };
      try {
        await withPgClient(env.DATABASE_URL, (client) => action(client, target));
      } catch (error) {
        console.error(`walnut-relay ${parent.name()} ${name}: ${(error as Error).message}`);
        process.exitCode = 1;
      }
    });
}

type AdminAction = (
  client: pg.Client,
  target: { slot: string; slotFailover: boolean; publication: string; schema: string; table: string; json: boolean },
) => Promise<void>;

/** A slot column only Postgres 17+ has: null before. */
function orNotOnThisServer(value: boolean | string | null): string {
  if (value === null) return 'n/a (Postgres 17+)';
  return typeof value === 'boolean' ? (value ? 'yes' : 'no') : value;
}

const slot = program.command('slot').description('inspect or manage the replication slot');
adminCommand(slot, 'status', 'slot name, active pid, confirmed LSN, lag and WAL retained', async (client, t) => {
  const status = await slotStatus(client, t.slot);
  if (t.json) {
    console.log(JSON.stringify(status));
    return;
  }
  if (!status.exists) {
    console.log(`slot ${t.slot} does not exist`);
    process.exitCode = 1;
    return;
  }
  console.log(
    [
      `slot:          ${status.slot}`,
      `active:        ${status.active ? `yes (pid ${status.activePid})` : 'no'}`,
      `confirmed LSN: ${status.confirmedFlushLsn}`,
      `lag:           ${status.lagBytes} bytes (${status.lagPretty})`,
      `WAL retained:  ${status.retainedWalBytes} bytes (${status.retainedWalPretty})`,
      `wal_status:    ${status.walStatus}`,
      `failover:      ${orNotOnThisServer(status.failover)}`,
      `synced:        ${orNotOnThisServer(status.synced)}`,
      `idle since:    ${status.active ? '-' : orNotOnThisServer(status.inactiveSince)}`,
      `invalidated:   ${status.invalidationReason ?? (status.walStatus === 'lost' ? 'yes (wal_status lost)' : 'no')}`,
    ].join('\n'),
  );
}).option('--json', 'print one JSON object');
adminCommand(slot, 'create', 'create the pgoutput slot (before the app writes)', async (client, t) => {
  const created = await createSlot(client, t.slot, { failover: t.slotFailover });
  if (!created) {
    console.log(`slot ${t.slot} already exists`);
    return;
  }
  console.log(`created slot ${t.slot} at ${formatLsn(created.startLsn)} (failover ${created.failover ? 'on' : 'off'})`);
  if (t.slotFailover && !created.failover) console.error(noFailoverSlotsNote(created.serverVersionNum));
});
adminCommand(slot, 'drop', 'drop the slot (refused while a relay streams from it)', async (client, t) => {
  console.log((await dropSlot(client, t.slot)) ? `dropped slot ${t.slot}` : `slot ${t.slot} does not exist`);
});
const publication = program.command('publication').description('manage the publication');
adminCommand(publication, 'sync', 'make the publication publish the outbox table, inserts only', async (client, t) => {
  const done = await syncPublication(client, t.publication, t);
  console.log(`${done} publication ${t.publication} for ${t.schema}.${t.table} (inserts only)`);
});

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
    console.error(`walnut-relay: --page-size must be a whole number from 1 to 100000, got ${raw}`);
    process.exit(2);
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

/** Exit codes: 1 for a failure (progress so far is saved), 2 for a refused command line. */
function exitWith(error: unknown): never {
  if (error instanceof UsageError) {
    console.error(`walnut-relay: ${error.message}`);
    process.exit(2);
  }
  const code = error instanceof RelayError ? error.code : 'UNEXPECTED';
  console.error(`walnut-relay: ${code}: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}

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
    const { config, level } = configOrExit(command, allSettings);
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
    await run(config, level);
  },
);

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

async function run(config: RelayConfig, level: string): Promise<void> {
  const log = createLogger('walnut-relay', level);
  const metrics = new RelayMetrics();
  const status = new RelayStatus(config.slot);
  const relay = new Relay(config, log, metrics, status);
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

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      log.info({ signal }, 'stopping');
      void relay.stop();
    });
  }
  try {
    await relay.run();
    server.close();
    await lagClient.close();
    process.exit(0);
  } catch (error) {
    const failure = error instanceof RelayError ? error : undefined;
    log.fatal({ code: failure?.code ?? 'UNEXPECTED', err: error }, failure?.message ?? String(error));
    process.exit(1);
  }
}

await program.parseAsync(process.argv);
