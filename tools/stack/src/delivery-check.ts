/**
 * What a topic owes the outbox, checked against an independent witness of
 * the commits (a test_decoding slot): every committed row is there, and per
 * key the records follow commit order, both where each row first appears and
 * where it last appears. Pure: no I/O.
 *
 * First occurrences out of order: a row that overtook an older one.
 * Last occurrences out of order: an old row sent again after newer ones, e.g.
 * by a producer the relay gave up on that kept retrying (a zombie send); a
 * consumer that keeps the last value per key then ends on the old one.
 * Duplicates alone are allowed (at-least-once), and counted.
 */

/**
 * The plain count, for tests that know which ids must arrive but not their
 * commit order: how often each id was read, which expected ids never were,
 * and how many records repeat an id read before.
 */
export interface DeliveryCount {
  /** Times each id was read; ids nobody expected included. */
  counts: Map<string, number>;
  /** Expected ids never read, in the order given. */
  missing: string[];
  /** Records beyond the first of their id: records read minus distinct ids read. */
  duplicates: number;
  /** Distinct ids read that were not expected (a record without an id counts as one). */
  unexpected: number;
}

/** `read` is each record's id as read, in any order; undefined for a record without one. */
export function countDelivery(expected: Iterable<string>, read: readonly (string | undefined)[]): DeliveryCount {
  const counts = new Map<string, number>();
  let withoutId = 0;
  for (const id of read) {
    if (id === undefined) withoutId++;
    else counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  const wanted = new Set(expected);
  const missing = [...wanted].filter((id) => !counts.has(id));
  const distinct = counts.size + (withoutId > 0 ? 1 : 0);
  const unexpected = [...counts.keys()].filter((id) => !wanted.has(id)).length + (withoutId > 0 ? 1 : 0);
  return { counts, missing, duplicates: read.length - distinct, unexpected };
}

/** One committed outbox row, in commit order. */
export interface WitnessRow {
  id: string;
  key: string;
  /** End LSN of its transaction's commit record. */
  commitLsn: bigint;
}

/** A fault phase: rows whose transaction committed after `startLsn` belong to it, until the next phase. */
export interface Phase {
  name: string;
  startLsn: bigint;
}

export interface TopicRow {
  id: string | undefined;
  key: string | null;
  partition: number;
  offset: string;
}

export interface PhaseFigures {
  phase: string;
  committed: number;
  missing: number;
  firstOrderViolations: number;
  lastOrderViolations: number;
  duplicates: number;
}

export interface DeliveryReport {
  phases: PhaseFigures[];
  total: PhaseFigures;
  /** Some missing rows, described, for the failure message. */
  missingSample: string[];
  /** Some order violations, described. */
  orderSample: string[];
  /** Records whose id the witness never saw committed. */
  foreign: number;
}

export function checkDelivery(
  witness: readonly WitnessRow[],
  phases: readonly Phase[],
  records: readonly TopicRow[],
): DeliveryReport {
  const figures = phases.map((p) => ({
    phase: p.name,
    committed: 0,
    missing: 0,
    firstOrderViolations: 0,
    lastOrderViolations: 0,
    duplicates: 0,
  }));
  const position = new Map<string, number>();
  const phaseOf = new Map<string, PhaseFigures>();
  let phase = -1;
  for (const [i, row] of witness.entries()) {
    // Commit order is LSN order, so the phase index only moves forward.
    while (phase + 1 < phases.length && (phases[phase + 1] as Phase).startLsn < row.commitLsn) phase++;
    const of = figures[Math.max(phase, 0)] as PhaseFigures;
    of.committed++;
    position.set(row.id, i);
    phaseOf.set(row.id, of);
  }

  const seen = new Map<string, number>();
  let foreign = 0;
  const byPartitionKey = new Map<string, TopicRow[]>();
  for (const r of records) {
    if (r.id === undefined || !position.has(r.id)) {
      foreign++;
      continue;
    }
    seen.set(r.id, (seen.get(r.id) ?? 0) + 1);
    const group = `${r.partition}/${r.key}`;
    const list = byPartitionKey.get(group) ?? [];
    if (list.length === 0) byPartitionKey.set(group, list);
    list.push(r);
  }

  // A key's partition, as its delivered rows show it: to say where the missing ones were headed.
  const partitionOfKey = new Map<string, number>();
  for (const r of records) if (r.key !== null) partitionOfKey.set(r.key, r.partition);
  const missingSample: string[] = [];
  for (const [i, row] of witness.entries()) {
    const count = seen.get(row.id) ?? 0;
    const of = phaseOf.get(row.id) as PhaseFigures;
    if (count === 0) {
      of.missing++;
      if (missingSample.length < 10) {
        missingSample.push(
          `${row.id} (commit #${i}, ${of.phase}, key ${row.key} -> partition ${partitionOfKey.get(row.key) ?? '?'})`,
        );
      }
    } else {
      of.duplicates += count - 1;
    }
  }

  const orderSample: string[] = [];
  for (const list of byPartitionKey.values()) {
    list.sort((a, b) => (BigInt(a.offset) < BigInt(b.offset) ? -1 : 1));
    const firstIndex = new Map<string, number>();
    const lastIndex = new Map<string, number>();
    for (const [i, r] of list.entries()) {
      if (!firstIndex.has(r.id as string)) firstIndex.set(r.id as string, i);
      lastIndex.set(r.id as string, i);
    }
    const firsts = list.filter((r, i) => firstIndex.get(r.id as string) === i);
    const lasts = list.filter((r, i) => lastIndex.get(r.id as string) === i);
    for (const [kind, occurrences] of [
      ['first', firsts],
      ['last', lasts],
    ] as const) {
      for (const { row, after } of outOfOrder(occurrences, position)) {
        const of = phaseOf.get(row.id as string) as PhaseFigures;
        if (kind === 'first') of.firstOrderViolations++;
        else of.lastOrderViolations++;
        if (orderSample.length < 10) {
          orderSample.push(
            `${kind} occurrence of ${row.id} (commit #${position.get(row.id as string)}, ${of.phase}) at ` +
              `${row.partition}@${row.offset}, after ${after.id} (commit #${position.get(after.id as string)}) at ${after.partition}@${after.offset}`,
          );
        }
      }
    }
  }

  const total: PhaseFigures = {
    phase: 'total',
    committed: 0,
    missing: 0,
    firstOrderViolations: 0,
    lastOrderViolations: 0,
    duplicates: 0,
  };
  for (const f of figures) {
    total.committed += f.committed;
    total.missing += f.missing;
    total.firstOrderViolations += f.firstOrderViolations;
    total.lastOrderViolations += f.lastOrderViolations;
    total.duplicates += f.duplicates;
  }
  return { phases: figures, total, missingSample, orderSample, foreign };
}

/** Records that come after a row committed later than them, each with the newest such row before it. */
function outOfOrder(
  records: readonly TopicRow[],
  position: ReadonlyMap<string, number>,
): Array<{ row: TopicRow; after: TopicRow }> {
  const late: Array<{ row: TopicRow; after: TopicRow }> = [];
  let newest: TopicRow | undefined;
  for (const row of records) {
    if (newest && (position.get(row.id as string) as number) < (position.get(newest.id as string) as number)) {
      late.push({ row, after: newest });
    } else {
      newest = row;
    }
  }
  return late;
}

export function formatReport(report: DeliveryReport): string {
  const header = ['phase', 'committed', 'missing', 'first-order', 'last-order', 'duplicates'];
  const rows = [...report.phases, report.total].map((f) => [
    f.phase,
    String(f.committed),
    String(f.missing),
    String(f.firstOrderViolations),
    String(f.lastOrderViolations),
    String(f.duplicates),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}
