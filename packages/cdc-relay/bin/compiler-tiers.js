// V8's optimizing tiers, for turning them off until the relay has work
// (src/deferred-optimization.ts) and off before this bin's staleness walk. Plain JS next to
// the bin: the bin runs before any TypeScript loader or bundle, and the bundle imports this
// file too, so the rule lives in one place.

/** Flags a user or image chose for V8's tiers: when given, the relay leaves the tiers alone. */
const TIER_FLAG = /--(no-)?(jitless|turbofan|opt|sparkplug|maglev|max-opt|always-sparkplug|lite-mode)\b/;

/** Maglev ships on by default from V8 12 (node 22); on node 20 it is an experiment, left off. */
const TIERS =
  Number(process.versions.v8.split('.')[0]) >= 12 ? ['sparkplug', 'maglev', 'turbofan'] : ['sparkplug', 'turbofan'];

/** True when node's own flags or NODE_OPTIONS already choose a tier. */
export function tiersChosen(execArgv, nodeOptions) {
  return TIER_FLAG.test(execArgv.join(' ')) || TIER_FLAG.test(nodeOptions);
}

/** The V8 flags that turn the tiers on or off. */
export function tierFlags(on) {
  return TIERS.map((name) => `--${on ? '' : 'no-'}${name}`);
}
