import { setFlagsFromString } from 'node:v8';
// Plain JS beside the bin, which applies the same rule before its staleness walk.
import { tierFlags, tiersChosen } from '../bin/compiler-tiers.js';

/**
 * V8's compilers stay off until the relay has work. Start-up (settings, schemas, the
 * Kafka client's validators) runs loops hot enough for V8 to compile some of its
 * functions with Sparkplug and TurboFan, and the first use of each compiler maps its
 * code from node's binary: about 5 MiB of an idle sidecar's resident memory, for
 * code that runs once (docs/decisions/relay-memory.md). The interpreter runs start-up,
 * keepalives, metrics scrapes and standby polls; the first WAL message, or any command
 * but `run`, turns the compilers back on, and from then V8 optimizes what gets hot.
 */
let deferred = false;

/** Turns the compilers off for start-up, unless the process was given its own tier flags. */
export function deferOptimization(execArgv = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): void {
  if (deferred || tiersChosen(execArgv, nodeOptions)) return;
  for (const flag of tierFlags(false)) setFlagsFromString(flag);
  deferred = true;
}

/** Turns them back on; once, and only after deferOptimization() turned them off. */
export function allowOptimization(): void {
  if (!deferred) return;
  deferred = false;
  for (const flag of tierFlags(true)) setFlagsFromString(flag);
}

export function optimizationDeferred(): boolean {
  return deferred;
}
