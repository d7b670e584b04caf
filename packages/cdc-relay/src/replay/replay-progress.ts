import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import * as z from 'zod';

/**
 * What a replay or snapshot has had acked so far, saved after every acked page:
 * `--resume` continues after `cursor`, so nothing before it is sent again and
 * nothing after it is skipped. Written to a temporary file and renamed, so a
 * crash leaves the previous state or the new one, never half of one.
 */
export const replayState = z.object({
  version: z.literal(1),
  kind: z.enum(['replay', 'snapshot']),
  /** The value of every record's walnut-replay header. */
  replayId: z.string().min(1),
  selection: z.object({
    fromId: z.string().optional(),
    toId: z.string().optional(),
    since: z.string().optional(),
    until: z.string().optional(),
    aggregateType: z.string().optional(),
    aggregateId: z.string().optional(),
  }),
  toTopic: z.string().optional(),
  order: z.array(z.string()).min(1),
  /** The order columns of the last acked row; null before the first page is acked. */
  cursor: z.array(z.string()).nullable(),
  rowsDone: z.number().int().nonnegative(),
  /**
   * Snapshot: the slot's consistent point, what its records are positioned
   * just before. Absent while the slot is being created: the state is saved
   * before CREATE_REPLICATION_SLOT, so no moment exists when the slot does
   * and no state names it.
   */
  consistentPoint: z.string().optional(),
  slot: z.string().optional(),
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
});
export type ReplayState = z.infer<typeof replayState>;

export function readReplayState(file: string): ReplayState | undefined {
  if (!existsSync(file)) return undefined;
  const parsed = replayState.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) throw new Error(`${file} is not a replay progress file: ${parsed.error.message}`);
  return parsed.data;
}

export function writeReplayState(file: string, state: ReplayState): void {
  // Per process: a fenced run still saving must not write into the file its successor renames.
  const temporary = `${file}.${process.pid}.tmp`;
  const fd = openSync(temporary, 'w');
  try {
    writeSync(fd, `${JSON.stringify(state, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, file);
}

export interface ProgressFigures {
  rows: number;
  total: number;
  rowsPerSecond: number;
  etaSeconds: number | null;
}

/**
 * Progress for people and for machines: on a terminal one line redrawn in place
 * (rows, rows/s, ETA); otherwise a JSON line per acked page on stdout, each one
 * a point `--resume` would continue from.
 */
export class ProgressReport {
  private readonly started = performance.now();
  private lastDrawn = 0;

  constructor(
    private readonly replayId: string,
    private readonly rowsAtStart: number,
    private readonly total: number,
    private readonly tty: boolean,
    private readonly out: (line: string) => void = (line) => process.stdout.write(line),
  ) {}

  start(extra: Record<string, unknown>): void {
    if (this.tty) {
      this.out(`replay ${this.replayId}: ${this.total.toLocaleString('en')} rows to go\n`);
      return;
    }
    this.json({ event: 'replay.start', replay: this.replayId, total: this.total, ...extra });
  }

  figures(rows: number): ProgressFigures {
    const seconds = (performance.now() - this.started) / 1000;
    const sent = rows - this.rowsAtStart;
    const rowsPerSecond = seconds > 0 ? Math.round(sent / seconds) : 0;
    const left = Math.max(0, this.total - rows);
    return {
      rows,
      total: this.total,
      rowsPerSecond,
      etaSeconds: rowsPerSecond > 0 ? Math.ceil(left / rowsPerSecond) : null,
    };
  }

  /** After a page is acked and saved. */
  acked(rows: number, cursor: readonly string[] | null): void {
    const figures = this.figures(rows);
    if (!this.tty) {
      this.json({ event: 'replay.progress', replay: this.replayId, ...figures, cursor });
      return;
    }
    const now = performance.now();
    if (now - this.lastDrawn < 200) return;
    this.lastDrawn = now;
    const share = figures.total ? ` (${Math.floor((100 * rows) / figures.total)}%)` : '';
    const eta = figures.etaSeconds === null ? '' : ` · ETA ${formatSeconds(figures.etaSeconds)}`;
    this.out(
      `\r\x1b[K${rows.toLocaleString('en')}/${figures.total.toLocaleString('en')} rows${share} · ${figures.rowsPerSecond.toLocaleString('en')} rows/s${eta}`,
    );
  }

  done(rows: number): void {
    const seconds = (performance.now() - this.started) / 1000;
    const rowsPerSecond = seconds > 0 ? Math.round((rows - this.rowsAtStart) / seconds) : 0;
    if (this.tty) {
      this.out(
        `\r\x1b[Kreplay ${this.replayId}: ${rows.toLocaleString('en')} rows acked in ${seconds.toFixed(1)} s (${rowsPerSecond.toLocaleString('en')} rows/s)\n`,
      );
      return;
    }
    this.json({
      event: 'replay.done',
      replay: this.replayId,
      rows,
      seconds: Number(seconds.toFixed(3)),
      rowsPerSecond,
    });
  }

  private json(fields: Record<string, unknown>): void {
    this.out(`${JSON.stringify(fields)}\n`);
  }
}

function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}
