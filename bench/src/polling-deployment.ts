/**
 * The polling baseline deployed the way Walnut is, for end-to-end latency: the
 * same API and applier processes on a database of their own, with the polling
 * relay (its own process) in place of Walnut's. The API writes `outbox` as
 * usual; the relay polls that same table, so only the hop to Kafka differs.
 */
import { fileURLToPath } from 'node:url';
import { startNodeScript, type WalnutFixture } from '@walnut/stack';
import type { SystemUnderLoad } from './load-steps.ts';
import { addPollingColumns } from './polling-relay.ts';
import { processParts } from './walnut-deployment.ts';

const cli = fileURLToPath(new URL('./polling-relay-cli.ts', import.meta.url));

export async function startPollingDeployment(
  fixture: WalnutFixture,
): Promise<SystemUnderLoad & { stop(): Promise<void> }> {
  await addPollingColumns(fixture.pool, 'outbox');
  const applier = await fixture.startApplier();
  const relay = startNodeScript('polling relay', cli, ['--table', 'outbox', '--topic', fixture.topic], fixture.env);
  let api: Awaited<ReturnType<WalnutFixture['startApi']>>;
  try {
    await relay.waitForLine(/polling relay running/);
    api = await fixture.startApi();
  } catch (error) {
    await relay.stop('SIGKILL');
    throw error;
  }
  return {
    name: 'polling',
    apiUrl: api.url,
    pool: fixture.pool,
    processes: processParts([relay, applier, api.process], ['relay', 'applier', 'api']),
    assertRunning() {
      if (!relay.running) throw new Error(`polling relay exited:\n${relay.tail()}`);
      if (!applier.running) throw new Error(`applier exited:\n${applier.tail()}`);
      if (!api.process.running) throw new Error(`api exited:\n${api.process.tail()}`);
    },
    async stop() {
      await relay.stop('SIGTERM');
      // The fixture's close() stops the API and applier it started.
    },
  };
}
