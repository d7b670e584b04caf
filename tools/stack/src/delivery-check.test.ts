/** The tests' oracles (the chaos suites' and the plain count), on hand-made topics: a bug here would hide a loss. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { checkDelivery, countDelivery, type TopicRow, type WitnessRow } from './delivery-check.ts';

const check = suite('delivery check');

// Key k: a1 a2 a3 a4 in commit order; key m: b1. Commits at LSNs 10..50.
const witness: WitnessRow[] = [
  { id: 'a1', key: 'k', commitLsn: 10n },
  { id: 'b1', key: 'm', commitLsn: 20n },
  { id: 'a2', key: 'k', commitLsn: 30n },
  { id: 'a3', key: 'k', commitLsn: 40n },
  { id: 'a4', key: 'k', commitLsn: 50n },
];
const phases = [
  { name: 'warm-up', startLsn: 0n },
  { name: 'fault', startLsn: 25n },
];

function topic(ids: string[]): TopicRow[] {
  return ids.map((id, offset) => ({
    id,
    key: id.startsWith('a') ? 'k' : 'm',
    partition: id.startsWith('a') ? 0 : 1,
    offset: String(offset),
  }));
}

check('in order, once: nothing to report', () => {
  const report = checkDelivery(witness, phases, topic(['a1', 'b1', 'a2', 'a3', 'a4']));
  assert.equal(report.total, {
    phase: 'total',
    committed: 5,
    missing: 0,
    firstOrderViolations: 0,
    lastOrderViolations: 0,
    duplicates: 0,
  });
  assert.equal(
    report.phases.map((p) => p.committed),
    [2, 3],
  );
});

check('a replay of a suffix is duplicates, not disorder', () => {
  const report = checkDelivery(witness, phases, topic(['a1', 'a2', 'a3', 'a2', 'a3', 'a4', 'b1']));
  assert.is(report.total.duplicates, 2);
  assert.is(report.total.firstOrderViolations, 0);
  assert.is(report.total.lastOrderViolations, 0);
});

check('a missing row is counted in the phase it committed in', () => {
  const report = checkDelivery(witness, phases, topic(['a1', 'b1', 'a2', 'a4']));
  assert.is(report.phases[1]?.missing, 1);
  assert.is(report.phases[0]?.missing, 0);
  assert.equal(report.missingSample, ['a3 (commit #3, fault, key k -> partition 0)']);
});

check('an old row sent again after newer ones breaks last-occurrence order', () => {
  const report = checkDelivery(witness, phases, topic(['a1', 'a2', 'a3', 'a4', 'a2', 'b1']));
  assert.is(report.total.firstOrderViolations, 0);
  assert.is(report.total.lastOrderViolations, 1);
  assert.is(report.phases[1]?.lastOrderViolations, 1);
});

check('a row that overtakes an older one breaks first-occurrence order', () => {
  const report = checkDelivery(witness, phases, topic(['a1', 'a3', 'a2', 'a4', 'b1']));
  assert.is(report.total.firstOrderViolations, 1);
});

check('a record the witness never saw is foreign', () => {
  const report = checkDelivery(witness, phases, [...topic(['a1', 'b1', 'a2', 'a3', 'a4']), ...topic(['zz'])]);
  assert.is(report.foreign, 1);
});

check('the plain count: ids never read are missing, repeats are duplicates, strangers unexpected', () => {
  const count = countDelivery(['a', 'b', 'c'], ['a', 'c', 'a', 'z', undefined, 'a']);
  assert.equal(count.missing, ['b']);
  assert.is(count.duplicates, 2, 'two records repeat a');
  assert.is(count.unexpected, 2, 'z, and a record without an id');
  assert.equal(
    [...count.counts],
    [
      ['a', 3],
      ['c', 1],
      ['z', 1],
    ],
  );
});

check('the plain count of a complete, once-only topic', () => {
  const count = countDelivery(new Set(['a', 'b']), ['b', 'a']);
  assert.equal(count.missing, []);
  assert.is(count.duplicates, 0);
  assert.is(count.unexpected, 0);
});

check.run();
