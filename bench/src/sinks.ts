/**
 * The sinks the relay drains to beside Kafka, for the same rows in the same run: each one a
 * target for drainWalnut (what the relay's env needs, what must exist before it starts) and a
 * measurement of the sink's own limit. Adding a sink is one BenchSink and one line in main.ts.
 */
import type { DrainResult } from './drain.ts';

/** What drainWalnut needs to point the relay at a sink. */
export interface DrainTarget {
  /** Names the sink in log lines and the report, e.g. "Redis Streams". */
  name: string;
  /** The relay's settings for it: RELAY_SINK and its address. */
  relayEnv: Record<string, string>;
  /** Makes `topic` (the stream, subject, …) ready before the relay starts; a no-op where writes create it. */
  prepare(topic: string): Promise<void>;
  /** Drops what the drain wrote there once it is measured, so the sink stays small for the next drain. */
  forget(topic: string): Promise<void>;
}

/** The sink's own client at full speed: the figure the relay's drain to it is held to. */
export interface SinkLimit {
  /** The tool and its settings, as the report shows them. */
  tool: string;
  recordsPerSecond: number;
  /** The tool's own summary line. */
  line: string;
}

export interface BenchSink extends DrainTarget {
  /** The server, its version and durability settings as it ran (e.g. appendfsync), for the report. */
  server: string;
  /** For the report: how the relay writes to it and how the limit's tool does, where they differ. */
  about: string;
  /** The setting that says when a write is acked as durable (e.g. "appendfsync always"), beside each figure. */
  durability: string;
  /**
   * Runs the sink's benchmark tool: `records` writes of `recordBytes` each. The first figure is
   * the limit the relay is held to (settings like the relay's); any others are shown beside it.
   */
  limit(records: number, recordBytes: number): Promise<SinkLimit[]>;
  stop(): Promise<void>;
}

/** One sink's drains and limit, measured in this run. */
export interface SinkRun {
  name: string;
  server: string;
  about: string;
  durability: string;
  drains: DrainResult[];
  /** BenchSink.limit's figures, measured before the drains and again after them. */
  limitRuns: LimitRun[];
  /** Why a drain did not finish, if one did not; the drains before it still count. */
  failed?: string;
}

/** One run of a sink's limit tool, or why it failed. */
export type LimitRun = { when: string; limits: SinkLimit[] } | { when: string; failed: string };

/**
 * The limit a sink's drains are held to: the higher of its runs' first figures. The machine is
 * shared and a sink bound by fsync latency (Redis with appendfsync always) swings with the disk's
 * other users, so one run alone may catch a slow moment; the tool's best in this run is its limit.
 */
export function heldTo(run: SinkRun): SinkLimit | undefined {
  let best: SinkLimit | undefined;
  for (const r of run.limitRuns) {
    const first = 'limits' in r ? r.limits[0] : undefined;
    if (first && (!best || first.recordsPerSecond > best.recordsPerSecond)) best = first;
  }
  return best;
}
