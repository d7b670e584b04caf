import { formatLsn } from '@walnut/schema';
import type { Command } from 'commander';
import type pg from 'pg';
import { relayEnv } from '../config.ts';
import { withPgClient } from '../pg-client.ts';
import { noFailoverSlotsNote } from '../slot-failover.ts';
import { dropSlot } from '../slot-lifecycle.ts';
import { addSettingOptions, adminSettings, startCommand } from './settings.ts';
import { createSlot, slotStatus, syncPublication } from './slot-admin.ts';

const adminEnv = relayEnv.pick({
  DATABASE_URL: true,
  RELAY_SLOT: true,
  RELAY_SLOT_FAILOVER: true,
  RELAY_PUBLICATION: true,
  RELAY_OUTBOX_TABLE: true,
  LOG_LEVEL: true,
});

type AdminAction = (
  client: pg.Client,
  target: { slot: string; slotFailover: boolean; publication: string; schema: string; table: string; json: boolean },
) => Promise<void>;

/** Runs an admin action on a plain connection with the relay's own settings. */
function adminCommand(parent: Command, name: string, description: string, action: AdminAction): Command {
  return addSettingOptions(parent.command(name), adminSettings)
    .description(description)
    .action(async (opts: { json?: boolean }, command: Command) => {
      const { env } = startCommand(command, adminSettings, adminEnv);
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

/** A slot column only Postgres 17+ has: null before. */
function orNotOnThisServer(value: boolean | string | null): string {
  if (value === null) return 'n/a (Postgres 17+)';
  return typeof value === 'boolean' ? (value ? 'yes' : 'no') : value;
}

/** `slot status|create|drop` and `publication sync`: one connection, one action, a line of outcome. */
export function addAdminCommands(program: Command): void {
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
    console.log(
      `created slot ${t.slot} at ${formatLsn(created.startLsn)} (failover ${created.failover ? 'on' : 'off'})`,
    );
    if (t.slotFailover && !created.failover) console.error(noFailoverSlotsNote(created.serverVersionNum));
  });
  adminCommand(slot, 'drop', 'drop the slot (refused while a relay streams from it)', async (client, t) => {
    console.log((await dropSlot(client, t.slot)) ? `dropped slot ${t.slot}` : `slot ${t.slot} does not exist`);
  });
  const publication = program.command('publication').description('manage the publication');
  adminCommand(
    publication,
    'sync',
    'make the publication publish the outbox table, inserts only',
    async (client, t) => {
      const done = await syncPublication(client, t.publication, t);
      console.log(`${done} publication ${t.publication} for ${t.schema}.${t.table} (inserts only)`);
    },
  );
}
