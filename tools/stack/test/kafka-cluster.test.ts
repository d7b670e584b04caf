/**
 * The 3-node cluster harness itself: the controls the cluster fault suite
 * relies on do what they say (a leader moves, a frozen broker is fenced, a
 * restarted one comes back in sync), and no JVM outlives stop().
 *   node --import tsx node_modules/uvu/bin.js tools/stack/test
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type KafkaCluster, startKafkaCluster } from '../src/kafka-cluster.ts';
import { clusterNodeProperties, quorumVoters } from '../src/kafka-config.ts';
import { waitFor } from '../src/wait-for.ts';

const properties = suite('cluster server.properties');

properties('every node shares the voter set and keeps acked writes on two replicas', () => {
  const voters = quorumVoters(
    new Map([
      [1, 9001],
      [2, 9002],
      [3, 9003],
    ]),
  );
  assert.is(voters, '1@127.0.0.1:9001,2@127.0.0.1:9002,3@127.0.0.1:9003');
  const lines = clusterNodeProperties({ nodeId: 2, dataDir: '/d', brokerPort: 8002, controllerPort: 9002, voters })
    .trim()
    .split('\n');
  for (const line of [
    'node.id=2',
    `controller.quorum.voters=${voters}`,
    'default.replication.factor=3',
    'min.insync.replicas=2',
    'unclean.leader.election.enable=false',
    'offsets.topic.replication.factor=3',
    'transaction.state.log.min.isr=2',
  ]) {
    assert.ok(lines.includes(line), line);
  }
});

properties.run();

interface Ctx {
  dir: string;
  cluster: KafkaCluster;
}

const harness = suite<Ctx>('3-node cluster harness');
/** The readiness probe's topic: replicated on all three nodes, one partition each leads by preference. */
const topic = 'walnut-stack.ready';

harness.before(async (ctx) => {
  ctx.dir = await mkdtemp(path.join(tmpdir(), 'walnut-cluster-harness-'));
  ctx.cluster = await startKafkaCluster({ dir: ctx.dir, nodes: 3 });
});

harness.after(async (ctx) => {
  await ctx.cluster?.stop();
  await rm(ctx.dir, { recursive: true, force: true });
});

harness('leaders move, a frozen broker is fenced, a restarted one is back in sync', async ({ cluster }) => {
  assert.is(cluster.brokers.length, 3);
  await cluster.reassignPartition(topic, 0, [1, 2, 3]);
  await cluster.electPreferredLeaders();
  await waitFor('node 1 to lead', async () => (await cluster.leaderOf(topic, 0)) === 1);

  // Reassignment without the leader moves it; with it again as a follower, it stays moved.
  await cluster.reassignPartition(topic, 0, [2, 3]);
  assert.is(await cluster.leaderOf(topic, 0), 2);
  await cluster.reassignPartition(topic, 0, [2, 3, 1]);

  // A frozen leader is fenced within seconds; thawed, it rejoins the ISR.
  cluster.node(2).freeze();
  assert.ok(cluster.node(2).frozen);
  await waitFor('leadership to leave the frozen node', async () => ![2, -1].includes(await cluster.leaderOf(topic, 0)));
  cluster.node(2).thaw();
  await cluster.waitInSync(topic);

  // SIGKILL and restart: same ports, back in the ISR when start() resolves.
  const pid = cluster.node(3).pid;
  await cluster.node(3).kill();
  assert.not.ok(cluster.node(3).running);
  await cluster.node(3).start();
  assert.is.not(cluster.node(3).pid, pid);
  const states = await cluster.partitions(topic);
  assert.ok(states.every((p) => p.isr.includes(3)));
  assert.ok(isAlive(cluster.node(3).pid as number));
});

harness('stop() leaves no JVM behind', async ({ cluster }) => {
  const pids = cluster.nodes.map((n) => n.pid);
  await cluster.stop();
  assert.ok(cluster.nodes.every((n) => !n.running));
  for (const pid of pids) assert.not.ok(isAlive(pid as number), `pid ${pid} is gone`);
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

harness.run();
