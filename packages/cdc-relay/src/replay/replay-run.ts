import type pg from 'pg';
import type { RelayConfig } from '../config.ts';
import { RelayError } from '../errors.ts';
import { withPgClient } from '../pg-client.ts';
import { replaySink } from '../publish/kafka-sink-options.ts';
import { OutboxPages, tableShape } from './outbox-pages.ts';
import { ProgressReport, type ReplayState, readReplayState, replayState, writeReplayState } from './replay-progress.ts';
import { isEmptySelection, pageOrder, type ReplayColumns, type ReplaySelection } from './replay-selection.ts';
import { type PageEnd, replayPosition, republish } from './republish.ts';

export interface ReplayRequest {
  selection: ReplaySelection;
  /** Say so to replay the whole outbox: an empty selection is otherwise refused. */
  all: boolean;
  toTopic: string | undefined;
  pageSize: number;
  progressFile: string;
  resume: boolean;
  replayId: string | undefined;
  dryRun: boolean;
}

/** A refusal the user can fix from the command line: exit 2, no stack trace. */
export class UsageError extends Error {}

/** Set by SIGINT/SIGTERM: the run stops after the pages in flight are acked and saved. */
export interface StopSignal {
  stopped: boolean;
}

/**
 * `walnut-relay replay`: re-publishes the selected outbox rows under one
 * snapshot, ack-then-advance, resumable. Returns how many rows were acked (in
 * all runs), or null for a dry run.
 */
export async function runReplay(config: RelayConfig, request: ReplayRequest, stop: StopSignal): Promise<number | null> {
  const previous = readReplayState(request.progressFile);
  let resumed: ReplayState | undefined;
  if (request.resume) {
    if (!previous) throw new UsageError(`--resume: ${request.progressFile} holds no replay to resume`);
    if (previous.kind !== 'replay') {
      throw new UsageError(
        `--resume: ${request.progressFile} holds a snapshot; resume it with walnut-relay snapshot --resume`,
      );
    }
    if (!isEmptySelection(request.selection) || request.toTopic || request.all) {
      throw new UsageError('--resume takes the selection and --to-topic from the progress file: give neither');
    }
    if (previous.finishedAt) {
      console.error(`replay ${previous.replayId} finished at ${previous.finishedAt}: nothing to resume`);
      return previous.rowsDone;
    }
    resumed = previous;
  } else {
    if (previous && !previous.finishedAt && !request.dryRun) {
      throw new UsageError(
        `${request.progressFile} holds unfinished ${previous.kind} ${previous.replayId} (${previous.rowsDone} rows acked): continue it with --resume, or delete the file (or pass another --progress-file) to start afresh`,
      );
    }
    if (isEmptySelection(request.selection) && !request.all) {
      throw new UsageError(
        'select rows with --from-id/--to-id, --since/--until, --aggregate-type or --aggregate-id (or --all for the whole outbox)',
      );
    }
  }
  const selection = resumed?.selection ?? request.selection;

  const columns = await withPgClient(config.databaseUrl, (client) => replayColumns(client, config));
  if ((selection.since || selection.until) && !columns.createdAt) {
    throw new UsageError(
      `--since/--until need a creation time column: ${config.outbox.schema}.${config.outbox.table} has no ${config.replayColumns.createdAt} (RELAY_COLUMN_CREATED_AT)`,
    );
  }
  if (selection.aggregateType && !columns.aggregateType) {
    throw new UsageError(
      `--aggregate-type needs column ${config.replayColumns.aggregateType} (RELAY_COLUMN_AGGREGATE_TYPE), which ${config.outbox.schema}.${config.outbox.table} lacks`,
    );
  }
  const state =
    resumed ??
    newState('replay', request.replayId ?? defaultReplayId(), {
      selection,
      ...(request.toTopic ? { toTopic: request.toTopic } : {}),
      order: pageOrder(selection, columns),
    });

  const pages = await OutboxPages.open({
    databaseUrl: config.databaseUrl,
    table: config.outbox,
    selection: state.selection,
    columns,
    order: state.order,
  });
  try {
    const remaining = await pages.count(state.cursor).catch((error: unknown) => {
      // Class 22, data exception: a bound that is not a time, or not of the id column's type.
      const code = (error as { code?: unknown }).code;
      if (typeof code === 'string' && code.startsWith('22')) {
        throw new UsageError(`the selection does not fit the outbox's columns: ${(error as Error).message}`);
      }
      throw error;
    });
    if (request.dryRun) {
      console.log(JSON.stringify({ event: 'replay.dry-run', rows: remaining, order: state.order }));
      return null;
    }
    const snapshotLsn = await pages.walPosition();
    writeReplayState(request.progressFile, state);
    return await publishPages(config, state, request, pages, remaining, stop, replayPosition(state.replayId), {
      kind: 'replay',
      snapshotLsn,
      toTopic: state.toTopic ?? null,
      resumed: request.resume,
    });
  } finally {
    await pages.close();
  }
}

export async function publishPages(
  config: RelayConfig,
  state: ReplayState,
  request: { pageSize: number; progressFile: string },
  pages: OutboxPages,
  remaining: number,
  stop: StopSignal,
  position: Parameters<typeof republish>[0]['position'],
  startFields: Record<string, unknown>,
): Promise<number> {
  const report = new ProgressReport(state.replayId, state.rowsDone, state.rowsDone + remaining, !!process.stdout.isTTY);
  report.start({ ...startFields, order: state.order, rowsDone: state.rowsDone });
  // Fenced by the replay's own id: a resumed run stops a killed or frozen run of it (REPLAY_FENCED).
  const sink = replaySink<PageEnd | null>(config, state.replayId);
  try {
    const rows = await republish({
      pages,
      openSink: sink.open,
      mapping: config.outbox,
      toTopic: state.toTopic,
      pageSize: request.pageSize,
      position,
      state,
      save: (s) => writeReplayState(request.progressFile, s),
      report,
      stopping: () => stop.stopped,
    });
    if (stop.stopped) {
      throw new RelayError(
        'REPLAY_INTERRUPTED',
        `stopped after ${rows} acked rows (saved in ${request.progressFile}); continue with --resume`,
        { retryable: true },
      );
    }
    state.finishedAt = new Date().toISOString();
    writeReplayState(request.progressFile, state);
    report.done(rows);
    return rows;
  } finally {
    await sink.release();
  }
}

export function newState(
  kind: ReplayState['kind'],
  replayId: string,
  fields: Pick<ReplayState, 'selection' | 'order'> & Partial<Pick<ReplayState, 'toTopic' | 'slot' | 'consistentPoint'>>,
): ReplayState {
  return replayState.parse({
    version: 1,
    kind,
    replayId,
    ...fields,
    cursor: null,
    rowsDone: 0,
    startedAt: new Date().toISOString(),
    finishedAt: null,
  });
}

function defaultReplayId(): string {
  return `replay-${new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}`;
}

export async function replayColumns(client: pg.Client, config: RelayConfig): Promise<ReplayColumns> {
  const shape = await tableShape(client, config.outbox.schema, config.outbox.table);
  if (shape.columns.size === 0) {
    throw new RelayError(
      'OUTBOX_TABLE_MISSING',
      `outbox table ${config.outbox.schema}.${config.outbox.table} does not exist`,
      { retryable: false },
    );
  }
  const { createdAt, aggregateType } = config.replayColumns;
  const { id, key } = config.outbox.columns;
  return {
    id,
    key,
    createdAt: shape.columns.has(createdAt) ? createdAt : undefined,
    createdAtIndexed: shape.indexes.some((columns) => columns[0] === createdAt && columns[1] === id),
    aggregateType: shape.columns.has(aggregateType) ? aggregateType : undefined,
  };
}
