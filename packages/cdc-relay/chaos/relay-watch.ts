import type { WalnutProcess } from '@walnut/stack';

/** What the relay's log says happened, counted per fault phase: for the figures, not for the verdict. */
const signs = {
  /** A session ended and the relay backs off before a new one (with a new producer). */
  'session restarts': /"state":"backoff"/,
  /** Of which: a Kafka transaction did not commit within RELAY_KAFKA_SEND_TIMEOUT_MS (kafkajs relay: no ack). */
  'send timeouts': /not committed within|no ack within/,
  /** Of which: the producer gave up on a broker that was not (or no longer) the partition's leader. */
  'not-leader failures': /not the leader|NOT_LEADER/i,
} as const;

type Sign = keyof typeof signs;

export class RelayWatch {
  exits = 0;
  private phase = 'warm-up';
  private readonly counts = new Map<string, Record<Sign, number>>();
  private readonly retired = new WeakSet<WalnutProcess>();

  constructor(relay: WalnutProcess) {
    this.follow(relay, this.phase);
  }

  /** Lines from now on count for `phase`. */
  mark(phase: string): void {
    this.phase = phase;
  }

  /** A replacement relay process (after an exit) is watched too. */
  follow(relay: WalnutProcess, phase: string): void {
    this.phase = phase;
    relay.listen((line) => this.onLine(line));
    relay.child.once('exit', () => {
      if (!this.retired.has(relay)) this.exits++;
    });
  }

  /** An exit the suite itself causes (a planned restart) is not counted. */
  retire(relay: WalnutProcess): void {
    this.retired.add(relay);
  }

  summary(phase: string): string {
    const counts = this.counts.get(phase);
    return Object.keys(signs)
      .map((sign) => `${counts?.[sign as Sign] ?? 0} ${sign}`)
      .join(', ');
  }

  private onLine(line: string): void {
    for (const [sign, pattern] of Object.entries(signs) as Array<[Sign, RegExp]>) {
      if (!pattern.test(line)) continue;
      const counts = this.counts.get(this.phase) ?? {
        'session restarts': 0,
        'send timeouts': 0,
        'not-leader failures': 0,
      };
      this.counts.set(this.phase, counts);
      counts[sign]++;
    }
  }
}
