import type pg from 'pg';
import type { RelayConfig } from './config.ts';
import { connectPgClient } from './pg-client.ts';

/**
 * A standby relay's wait for the slot another relay streams from (RELAY_STANDBY,
 * the default): Postgres lets one connection stream from a slot, which is what
 * keeps two relays from streaming at once. It polls with one query on one kept
 * connection, not a new connection and the whole inspection twice a second.
 */
export class StandbyWait {
  /** The standby's one connection for its polls. */
  private client: pg.Client | null = null;

  constructor(private readonly config: Pick<RelayConfig, 'databaseUrl' | 'slot' | 'standbyPollMs'>) {}

  /**
   * Returns once the slot has no active walsender (or the query fails), or
   * stopped() says so; the relay's openSlot then checks everything and takes
   * the slot, or finds it taken again. sleep(ms) is the relay's, which stop() wakes.
   */
  async whileSlotHeld(sleep: (ms: number) => Promise<void>, stopped: () => boolean): Promise<void> {
    while (!stopped()) {
      await sleep(this.config.standbyPollMs);
      if (stopped()) return;
      try {
        this.client ??= await connectPgClient({ connectionString: this.config.databaseUrl });
        const held = await this.client.query<{ active_pid: number | null }>(
          'SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1',
          [this.config.slot],
        );
        if (held.rows[0]?.active_pid == null) break;
      } catch {
        // Whatever broke, openSlot meets it too and reports it: back off there, not here.
        break;
      }
    }
    await this.close();
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => {});
  }
}
