import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseLsn, resolvePgUrl } from '@walnut/schema';
import type { RelayConfig } from '../config.ts';
import { RelayError, toRelayError } from '../errors.ts';
import { withPgClient } from '../pg-client.ts';
import { inspectSlot } from '../slot.ts';
import { failoverWanted, noFailoverSlotsNote } from '../slot-failover.ts';
import { dropSlot } from '../slot-lifecycle.ts';
import { createSlotWithSnapshot } from './exported-snapshot.ts';
import { OutboxPages } from './outbox-pages.ts';
import { type ReplayState, readReplayState, writeReplayState } from './replay-progress.ts';
import { newState, publishPages, replayColumns, type StopSignal, UsageError } from './replay-run.ts';
import { pageOrder } from './replay-selection.ts';
import { snapshotPosition } from './republish.ts';

export interface SnapshotRequest {
  pageSize: number;
  progressFile: string;
  resume: boolean;
  /**
   * Tests only (WALNUT_TEST_PAUSE_AFTER_SLOT_CREATED): runs once the slot exists and
   * before its consistent point is saved, so a test can SIGKILL the run there.
   */
  afterSlotCreated?: () => Promise<void>;
}

/**
 * `walnut-relay snapshot`: creates the slot with an exported snapshot and
 * relays the rows that snapshot sees (all committed before the slot's
 * consistent point), then returns so the caller streams the slot from that
 * point. A resumed snapshot reads a newer snapshot after its cursor: rows
 * committed since the consistent point then go out twice, once streamed, once
 * positioned before every streamed record.
 *
 * It never leaves a slot nothing knows about: the progress file names the slot
 * before the slot exists, a failure before anything was relayed drops the slot
 * again, and `run` refuses to stream a slot whose snapshot is unfinished
 * (incompleteSnapshot).
 */
export async function runSnapshot(given: RelayConfig, request: SnapshotRequest, stop: StopSignal): Promise<number> {
  // The slot's exported snapshot is read on other connections: all of them on one server.
  const config = { ...given, databaseUrl: await resolvePgUrl(given.databaseUrl) };
  const { progressFile: file } = request;
  const previous = readReplayState(file);
  const [columns, slot] = await withPgClient(
    config.databaseUrl,
    async (client) =>
      [
        await replayColumns(client, config),
        await inspectSlot(client, { slot: config.slot, publication: config.publication, outbox: config.outbox }),
      ] as const,
  );
  const exists = slot.status !== 'missing';
  const ours = previous?.kind === 'snapshot' && previous.slot === config.slot ? previous : undefined;
  // Saved before CREATE_REPLICATION_SLOT by a run that died before the slot existed: nothing happened.
  const stillborn = !!ours && !ours.finishedAt && !ours.consistentPoint && !exists;

  if (request.resume && !stillborn) {
    if (!ours) {
      throw new UsageError(
        `--resume: ${file} holds no snapshot of slot ${config.slot}${exists ? `; if a snapshot created the slot and its progress file is lost, give it up with walnut-relay slot drop --slot ${config.slot}, then run snapshot again` : ''}`,
      );
    }
    if (ours.finishedAt) return ours.rowsDone;
    if (!exists) {
      throw new UsageError(
        `--resume: slot ${config.slot} no longer exists; start the snapshot afresh (delete ${file})`,
      );
    }
    const state = ours.consistentPoint ? ours : await adoptSlot(config.databaseUrl, ours, file);
    const pages = await OutboxPages.open({
      databaseUrl: config.databaseUrl,
      table: config.outbox,
      selection: {},
      columns,
      order: state.order,
    });
    try {
      return await relaySnapshot(config, state, request, pages, stop, { resumed: true });
    } catch (error) {
      throw withWayOut(error, config.slot, file);
    }
  }
  if (previous && !previous.finishedAt && !stillborn) {
    throw new UsageError(
      ours && exists
        ? `${file} holds unfinished snapshot ${ours.replayId}: continue it with walnut-relay snapshot --resume, or give it up with walnut-relay slot drop --slot ${config.slot} and delete ${file}`
        : `${file} holds unfinished ${previous.kind} ${previous.replayId}: continue it with --resume, or delete the file`,
    );
  }
  if (exists) {
    throw new UsageError(
      `slot ${config.slot} already exists, so rows committed before it were never streamed and never will be: snapshot creates the slot, once. Re-publish older rows with walnut-relay replay, or --resume an interrupted snapshot; if an interrupted snapshot created the slot and its progress file is lost, drop the slot (walnut-relay slot drop --slot ${config.slot}) and run snapshot again`,
    );
  }

  const slotFailover = failoverWanted(config.slotFailover, slot.serverVersionNum);
  if (config.slotFailover && !slotFailover) console.error(noFailoverSlotsNote(slot.serverVersionNum));
  const pending = newState('snapshot', `snapshot.${config.slot}`, {
    selection: {},
    order: pageOrder({}, columns),
    slot: config.slot,
  });
  // Before the slot exists: from the moment it does, a state names it.
  writeReplayState(file, pending);
  let created: Awaited<ReturnType<typeof createSlotWithSnapshot>>;
  try {
    created = await createSlotWithSnapshot(config.databaseUrl, config.slot, {
      failover: slotFailover,
      serverVersionNum: slot.serverVersionNum,
    });
  } catch (error) {
    // Postgres persists a slot only once CREATE_REPLICATION_SLOT completes: there is none.
    rmSync(file, { force: true });
    throw error;
  }
  let state: ReplayState;
  let pages: OutboxPages;
  try {
    await request.afterSlotCreated?.();
    state = { ...pending, replayId: `snapshot.${config.slot}.${created.consistentPoint}` };
    state.consistentPoint = created.consistentPoint;
    writeReplayState(file, state);
    pages = await OutboxPages.open({
      databaseUrl: config.databaseUrl,
      table: config.outbox,
      selection: {},
      columns,
      order: pending.order,
      snapshotName: created.snapshotName,
    });
  } catch (error) {
    await created.release();
    throw await giveUp(config.databaseUrl, config.slot, file, error);
  }
  // Imported: the reader's transaction holds the snapshot now.
  await created.release();
  try {
    return await relaySnapshot(config, state, request, pages, stop, { resumed: false, slotFailover });
  } catch (error) {
    // Nothing committed to Kafka yet: the slot is worth nothing, and would pin WAL for ever.
    if (state.rowsDone === 0) throw await giveUp(config.databaseUrl, config.slot, file, error);
    throw withWayOut(error, config.slot, file);
  }
}

async function relaySnapshot(
  config: RelayConfig,
  state: ReplayState,
  request: SnapshotRequest,
  pages: OutboxPages,
  stop: StopSignal,
  fields: { resumed: boolean; slotFailover?: boolean },
): Promise<number> {
  try {
    const remaining = await pages.count(state.cursor);
    const before = parseLsn(state.consistentPoint ?? '0/1') - 1n;
    return await publishPages(
      config,
      state,
      request,
      pages,
      remaining,
      stop,
      snapshotPosition(state.replayId, before),
      { kind: 'snapshot', slot: config.slot, consistentPoint: state.consistentPoint, ...fields },
    );
  } finally {
    await pages.close();
  }
}

/**
 * A `run` of a slot whose snapshot is unfinished would stream from the
 * consistent point and never relay the rows committed before it: refused.
 */
export function incompleteSnapshot(file: string, slot: string): RelayError | undefined {
  const state = readReplayState(file);
  if (state?.kind !== 'snapshot' || state.slot !== slot || state.finishedAt) return undefined;
  return new RelayError(
    'SNAPSHOT_INCOMPLETE',
    `${file} holds an unfinished snapshot of slot ${slot} (${state.rowsDone} rows relayed): streaming the slot now would never relay the rows committed before it. Finish the snapshot with walnut-relay snapshot --resume --progress-file ${file} (it streams on once done), or give it up with walnut-relay slot drop --slot ${slot} and delete ${file}`,
    { retryable: false },
  );
}

/**
 * The state of a run that died after creating the slot and before saving its
 * consistent point. Postgres returns a new slot's confirmed_flush_lsn as its
 * consistent point, and nothing has streamed from the slot since: `run`
 * refuses while this state is unfinished.
 */
async function adoptSlot(databaseUrl: string, pending: ReplayState, file: string): Promise<ReplayState> {
  const r = await withPgClient(databaseUrl, (client) =>
    client.query<{ lsn: string | null }>(
      'SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1',
      [pending.slot],
    ),
  );
  const consistentPoint = r.rows[0]?.lsn;
  if (!consistentPoint) throw new UsageError(`--resume: slot ${pending.slot} no longer exists; run snapshot again`);
  const state = { ...pending, replayId: `snapshot.${pending.slot}.${consistentPoint}`, consistentPoint };
  writeReplayState(file, state);
  return state;
}

/**
 * After a failure before anything was relayed: drops the slot this run made
 * (once its walsender has let go of it) and the progress file, so that a
 * second `snapshot` starts clean. When the drop fails too, says how.
 */
async function giveUp(databaseUrl: string, slot: string, file: string, error: unknown): Promise<RelayError> {
  const failure = asRelayError(error);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await withPgClient(databaseUrl, (client) => dropSlot(client, slot));
        break;
      } catch (dropError) {
        // 55006: the walsender that created it has not exited yet.
        if ((dropError as { code?: unknown }).code !== '55006' || attempt >= 100) throw dropError;
        await sleep(100);
      }
    }
    rmSync(file, { force: true });
    const what = failure.code === 'REPLAY_INTERRUPTED' ? 'stopped before any row was relayed' : failure.message;
    return new RelayError(
      failure.code,
      `${what}. Nothing was relayed, so the snapshot dropped slot ${slot} again and nothing pins WAL: fix that, then run walnut-relay snapshot again`,
      { retryable: false, cause: error },
    );
  } catch (dropError) {
    return new RelayError(
      failure.code,
      `${failure.message}. Slot ${slot} could not be dropped (${(dropError as Error).message}) and pins WAL until you continue with walnut-relay snapshot --resume --progress-file ${file}, or give up with walnut-relay slot drop --slot ${slot} and delete ${file}`,
      { retryable: false, cause: error },
    );
  }
}

/** A failure after rows were relayed: the slot and the progress file stay, and the message says what next. */
function withWayOut(error: unknown, slot: string, file: string): unknown {
  if (error instanceof UsageError) return error;
  const failure = asRelayError(error);
  return new RelayError(
    failure.code,
    `${failure.message}. The snapshot so far is saved in ${file}: continue it with walnut-relay snapshot --resume --progress-file ${file}, or give it up with walnut-relay slot drop --slot ${slot} and delete ${file}`,
    { retryable: failure.retryable, cause: error },
  );
}

function asRelayError(error: unknown): RelayError {
  if (error instanceof RelayError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  // A privilege or a login Postgres refused: toRelayError says which.
  if (code === '42501' || code === '28P01' || code === '28000') return toRelayError(error);
  return new RelayError('SNAPSHOT_INCOMPLETE', error instanceof Error ? error.message : String(error), {
    retryable: false,
    cause: error,
  });
}
