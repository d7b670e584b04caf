import { randomFillSync } from 'node:crypto';

/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/), the part Walnut
 * carries: a trace id shared by every hop, the id of the span that is the
 * parent of the next hop's span, and the sampled flag. Each hop (API request,
 * applier apply) opens its own span as a child of what it received, so a trace
 * reads HTTP → outbox → Kafka → applier whatever tracer the reader uses.
 */
export interface TraceContext {
  /** 32 lowercase hex digits, not all zero. */
  traceId: string;
  /** 16 lowercase hex digits, not all zero: the span that produced this context. */
  spanId: string;
  /** 2 hex digits; bit 0 is "sampled". */
  flags: string;
}

/** The header, outbox column and Kafka header name. */
export const TRACEPARENT = 'traceparent';

// Version 00's layout. A higher version may append fields after a dash; the
// spec says to read the first four and ignore the rest. Version ff is invalid.
const TRACEPARENT_PATTERN = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** The context in a traceparent value, or undefined when it is malformed (the spec says to start a new trace then). */
export function parseTraceparent(value: string | null | undefined): TraceContext | undefined {
  if (!value) return undefined;
  const match = TRACEPARENT_PATTERN.exec(value.trim());
  if (!match) return undefined;
  const [, version, traceId, spanId, flags, rest] = match as unknown as [
    string,
    string,
    string,
    string,
    string,
    string?,
  ];
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  return { traceId, spanId, flags };
}

export function formatTraceparent(context: TraceContext): string {
  return `00-${context.traceId}-${context.spanId}-${context.flags}`;
}

// Ids come from a pool filled 4 KiB at a time: one randomBytes() call per id was
// a system call per API request, and the API's profile showed it (issue 26 item 4).
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

function randomHex(bytes: number): string {
  if (poolOffset + bytes > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const hex = pool.toString('hex', poolOffset, poolOffset + bytes);
  poolOffset += bytes;
  return hex;
}

/** A new span of the trace in `parent`, or the root span of a new (sampled) trace. */
export function childSpan(parent: TraceContext | undefined): TraceContext & { parentSpanId?: string } {
  const spanId = randomHex(8);
  if (!parent) return { traceId: randomHex(16), spanId, flags: '01' };
  return { traceId: parent.traceId, spanId, flags: parent.flags, parentSpanId: parent.spanId };
}
