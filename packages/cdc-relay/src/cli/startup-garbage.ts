import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { RelayState } from '../relay-reporting.ts';

/**
 * One full garbage collection once the relay first streams, as a state handler for
 * the Relay. Start-up (settings, schemas, the Kafka client's metadata, the slot's
 * checks) leaves some 7 MiB of dead objects in the old generation, and an idle
 * sidecar allocates too little for V8 ever to collect them: measured on the
 * bundle, idle RSS stayed at 88–95 MiB for as long as it was watched, and was
 * 67–68 MiB after this one collection (docs/decisions/relay-memory.md). One
 * collection of a heap this small takes a few milliseconds, once per process.
 */
export function startupGarbageCollection(settleMs = 1_000): (state: RelayState) => void {
  let scheduled = false;
  return (state) => {
    if (state !== 'streaming' || scheduled) return;
    scheduled = true;
    setTimeout(() => fullGarbageCollection()?.(), settleMs).unref();
  };
}

/** V8's gc(), also when node was started without --expose-gc: a new context gets it once the flag is set. */
export function fullGarbageCollection(): (() => void) | undefined {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
}
