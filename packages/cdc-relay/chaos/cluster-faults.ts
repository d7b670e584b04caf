import { type KafkaCluster, pause, waitFor } from '@walnut/stack';

/**
 * Faults aimed at one partition's leader (partition 0 of `topic`), each
 * ending with the cluster whole again: every broker up and in sync, and the
 * partition back on its preferred leader, so the next fault starts clean.
 */
export class LeaderFaults {
  constructor(
    private readonly cluster: KafkaCluster,
    private readonly topic: string,
    private readonly log: (line: string) => void,
  ) {}

  leader(): Promise<number> {
    return this.cluster.leaderOf(this.topic, 0);
  }

  /** SIGKILL (`kill`) or controlled shutdown (`stop`) of the leader; restart it; preferred election. */
  async crash(how: 'kill' | 'stop'): Promise<void> {
    const victim = await this.leader();
    await this.cluster.node(victim)[how]();
    await waitFor(
      `partition 0 led by a broker other than ${victim}`,
      async () => ![victim, -1].includes(await this.leader()),
      {
        timeoutMs: 30_000,
        intervalMs: 250,
      },
    );
    await pause(2_000);
    await this.cluster.node(victim).start({ inSyncOn: [this.topic] });
    await this.elect();
  }

  /** Every broker in turn: controlled shutdown, restart, back in sync; one election at the end. */
  async rollingRestart(): Promise<void> {
    for (const node of this.cluster.nodes) {
      await node.stop();
      await node.start({ inSyncOn: [this.topic] });
    }
    await this.elect();
  }

  /**
   * Moves the leader `moves` times by reassignment: it leaves the replica set
   * (another replica takes over at once), then comes back as a follower. No
   * JVM per move, unlike an election (the tool is a JVM), so more moves fit.
   */
  async move(moves: number): Promise<void> {
    for (let move = 1; move <= moves; move++) {
      const t0 = Date.now();
      const p0 = (await this.cluster.partitions(this.topic))[0];
      if (!p0) throw new Error(`${this.topic} has no partition 0`);
      const others = p0.replicas.filter((id) => id !== p0.leader);
      await this.cluster.reassignPartition(this.topic, 0, others);
      await this.cluster.reassignPartition(this.topic, 0, [...others, p0.leader]);
      this.log(`move ${move}: partition 0 led by ${p0.leader} -> ${await this.leader()} in ${Date.now() - t0} ms`);
      await pause(500);
    }
    await this.elect();
  }

  /** SIGSTOP the leader for `ms` (it is fenced and replaced meanwhile), SIGCONT, wait until in sync, elect. */
  async freeze(ms: number): Promise<void> {
    const victim = await this.leader();
    this.cluster.node(victim).freeze();
    await pause(ms);
    this.cluster.node(victim).thaw();
    await this.cluster.waitInSync(this.topic);
    await this.elect();
  }

  /** Preferred-leader election, then wait for partition 0 on its preferred replica. */
  private async elect(): Promise<void> {
    await this.cluster.electPreferredLeaders();
    const preferred = (await this.cluster.partitions(this.topic))[0]?.replicas[0];
    await waitFor('partition 0 on its preferred leader', async () => (await this.leader()) === preferred, {
      timeoutMs: 30_000,
      intervalMs: 250,
    });
  }
}
