import { readFileSync } from 'node:fs';
import { createLogger, listeningPort, parseEnv } from '@walnut/runtime';
import { Command } from 'commander';
import pg from 'pg';
import type { z } from 'zod';
import { type RelayConfig, relayConfig, relayEnv } from './config.ts';
import { RelayError } from './errors.ts';
import { startHttpServer } from './http-server.ts';
import { RelayMetrics } from './metrics.ts';
import { RelayStatus } from './relay-status.ts';
import { Relay } from './relay.ts';
import { addSettingOptions, adminSettings, allSettings, rawSettings, settingLabel } from './settings.ts';
import { createSlot, dropSlot, slotStatus, syncPublication } from './slot-admin.ts';
import { SlotFiguresProbe } from './slot-figures.ts';

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
    const env = parseOrExit(relayEnv, rawSettings(command, allSettings));
    let config: RelayConfig;
    try {
      config = relayConfig(env, (path) => readFileSync(path, 'utf8'));
    } catch (error) {
      console.error(`walnut-relay: ${(error as Error).message}`);
      process.exit(2);
    }
    await run(config, env.LOG_LEVEL);
  });

const adminEnv = relayEnv.pick({
  DATABASE_URL: true,
  RELAY_SLOT: true,
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
      const client = new pg.Client({ connectionString: env.DATABASE_URL });
      client.on('error', () => {});
      try {
        await client.connect();
        const [schema, table] = env.RELAY_OUTBOX_TABLE.split('.') as [string, string];
        await action(client, {
          slot: env.RELAY_SLOT,
          publication: env.RELAY_PUBLICATION,
          schema,
          table,
          json: !!opts.json,
        });
      } catch (error) {
        console.error(`walnut-relay ${parent.name()} ${name}: ${(error as Error).message}`);
        process.exitCode = 1;
      } finally {
        await client.end().catch(() => {});
      }
    });
}

type AdminAction = (
  client: pg.Client,
  target: { slot: string; publication: string; schema: string; table: string; json: boolean },
) => Promise<void>;

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
    ].join('\n'),
  );
}).option('--json', 'print one JSON object');
adminCommand(slot, 'create', 'create the pgoutput slot (before the app writes)', async (client, t) => {
  console.log((await createSlot(client, t.slot)) ? `created slot ${t.slot}` : `slot ${t.slot} already exists`);
});
adminCommand(slot, 'drop', 'drop the slot (refused while a relay streams from it)', async (client, t) => {
  console.log((await dropSlot(client, t.slot)) ? `dropped slot ${t.slot}` : `slot ${t.slot} does not exist`);
});
const publication = program.command('publication').description('manage the publication');
adminCommand(publication, 'sync', 'make the publication publish the outbox table, inserts only', async (client, t) => {
  const done = await syncPublication(client, t.publication, t);
  console.log(`${done} publication ${t.publication} for ${t.schema}.${t.table} (inserts only)`);
});

async function run(config: RelayConfig, level: string): Promise<void> {
  const log = createLogger('walnut-relay', level);
  const metrics = new RelayMetrics();
  const status = new RelayStatus(config.slot);
  const relay = new Relay(config, log, metrics, status);
  const lagClient = new SlotFiguresProbe(config.databaseUrl, config.slot);
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
