import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { RelayState } from '../relay-reporting.ts';

/**
 * One compacting garbage collection some seconds after the relay first streams, as a
 * state handler for the Relay. Start-up (settings, schemas, the Kafka client's
 * metadata, the slot's checks) leaves about 8 MiB of dead objects spread over the
 * old generation's pages, and young-generation pages grown to 8 MiB, and an idle
 * sidecar allocates too little for V8 to collect them on its own. V8's memory
 * reducer does so only sometimes: idle RSS was 68 MiB in some starts and 83 MiB in
 * others, on the same bundle (docs/decisions/relay-memory.md).
 *
 * The settle time matters: V8 shrinks the young generation after a collection only
 * when the last seconds allocated little, which the first second of streaming does
 * not. A plain full collection frees objects but moves none, so the pages they
 * were spread over stay; compacting them all once is what returns those pages. A
 * heap this small compacts in a few milliseconds, once per process.
 */
export function startupGarbageCollection(settleMs = 8_000): (state: RelayState) => void {
  let scheduled = false;
  return (state) => {
    if (state !== 'streaming' || scheduled) return;
    scheduled = true;
    setTimeout(compactingGarbageCollection, settleMs).unref();
  };
}

/**
 * A full collection that moves every live object of the old generation together, so
 * its emptied pages go back to the system. V8's flag is read at the collection, so it
 * is set around this one only; collections during a drain keep V8's own choice.
 */
export function compactingGarbageCollection(): void {
  const gc = fullGarbageCollection();
  if (!gc) return;
  setFlagsFromString('--compact-on-every-full-gc');
  try {
    gc();
  } finally {
    setFlagsFromString('--no-compact-on-every-full-gc');
  }
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
