import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StackError } from './errors.ts';
import { run, tailFile } from './exec.ts';
import { onHarnessExit } from './exit-hooks.ts';
import { kafkaLog4jConfig } from './kafka-jars.ts';
import { portIsFree } from './ports.ts';
import { waitFor } from './wait-for.ts';
import { deadMansSwitch } from './watchdog.ts';

const stopGraceMs = 30_000;

/** Where one Kafka node (broker+controller JVM) keeps its files. */
export interface KafkaNodeFiles {
  /** server.properties, kafka.pid, ports, and Kafka's own server.log. */
  home: string;
  dataDir: string;
  propsFile: string;
  /** The JVM's stdout/stderr (WARN and above, and crashes). */
  outFile: string;
}

export function kafkaNodeFiles(home: string, outFile: string): KafkaNodeFiles {
  return {
    home,
    dataDir: path.join(home, 'data'),
    propsFile: path.join(home, 'server.properties'),
    outFile,
  };
}

/**
 * The JVM of one Kafka node: start (then wait on a caller's readiness
 * condition), controlled shutdown, crash, pause. Whatever happens to the
 * harness, the JVM does not outlive it: an exit hook and a dead man's switch
 * (which survives a SIGKILLed harness) kill it.
 */
export class KafkaProcess {
  private child: ChildProcess | undefined;
  private watchdog: { disarm(): void } | undefined;
  private exitReason: string | undefined;
  private frozen = false;
  private readonly expectedExits = new WeakSet<ChildProcess>();
  private readonly pidFile: string;

  constructor(
    readonly name: string,
    private readonly java: string,
    private readonly jars: string,
    readonly files: KafkaNodeFiles,
    private readonly log: (line: string) => void,
  ) {
    this.pidFile = path.join(files.home, 'kafka.pid');
    onHarnessExit(() => {
      this.child?.kill('SIGKILL');
      this.watchdog?.disarm();
    });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Started and not exited (a frozen JVM is running). */
  get running(): boolean {
    return this.child !== undefined;
  }

  get isFrozen(): boolean {
    return this.frozen && this.running;
  }

  /** java argv for a main class of the Kafka jars, with the node's logging set up. */
  jvmArgs(heap: string, main: string, args: readonly string[]): string[] {
    return [
      heap,
      '-Djava.awt.headless=true',
      `-Dlog4j2.configurationFile=${kafkaLog4jConfig}`,
      `-Dkafka.logs.dir=${this.files.home}`,
      '-cp',
      `${this.jars}/*`,
      main,
      ...args,
    ];
  }

  /** Whether the data directory has been formatted (holds meta.properties). */
  get formatted(): boolean {
    return existsSync(path.join(this.files.dataDir, 'meta.properties'));
  }

  /** Formats the data directory for `clusterId`, once. */
  async format(clusterId: string): Promise<void> {
    if (this.formatted) return;
    this.log(`formatting ${this.name} storage ${this.files.dataDir} (cluster ${clusterId})`);
    const args = ['format', '-t', clusterId, '-c', this.files.propsFile, '--ignore-formatted'];
    // A short-lived JVM: C1 only (-XX:TieredStopAtLevel=1) starts it faster.
    const jvm = this.jvmArgs('-Xmx256m', 'kafka.tools.StorageTool', args);
    await run(this.java, ['-XX:TieredStopAtLevel=1', ...jvm], { code: 'KAFKA_FAILED' });
  }

  /**
   * Spawns the JVM, then polls `ready` (a real request round trip, not a port
   * check) until it resolves true or the deadline passes; a JVM that exits
   * meanwhile fails at once, with the end of its output in the error.
   */
  async start(what: string, ready: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    if (this.child) return;
    const out = openSync(this.files.outFile, 'a');
    const proc = spawn(this.java, this.jvmArgs('-Xmx512m', 'kafka.Kafka', [this.files.propsFile]), {
      stdio: ['ignore', out, out],
    });
    closeSync(out);
    this.child = proc;
    this.frozen = false;
    this.exitReason = undefined;
    const onGone = (reason: string) => {
      if (this.child === proc) this.exitReason ??= reason;
      this.watchdog?.disarm();
      if (this.child !== proc) return;
      this.child = undefined;
      this.watchdog = undefined;
      void rm(this.pidFile, { force: true });
      if (!this.expectedExits.has(proc))
        this.log(`${this.name} exited unexpectedly (${reason}); see ${this.files.outFile}`);
    };
    proc.once('error', (error) => onGone(error.message));
    proc.once('exit', (code, signal) => onGone(`${signal ?? `code ${code}`}`));
    if (proc.pid === undefined) {
      // spawn failed synchronously (ENOENT is reported through 'error' next tick).
      await once(proc, 'error').catch(() => {});
    } else {
      this.watchdog = deadMansSwitch('kill', ['-KILL', String(proc.pid)]);
      await writeFile(this.pidFile, `${proc.pid}\n`);
    }
    try {
      await waitFor(
        what,
        async () => {
          if (this.child !== proc) {
            throw new StackError('KAFKA_FAILED', `${this.name} exited while starting (${this.exitReason})`);
          }
          return ready();
        },
        { timeoutMs, intervalMs: 250 },
      );
    } catch (error) {
      if (this.child === proc) await this.terminate('SIGKILL');
      const serverLog = path.join(this.files.home, 'server.log');
      throw new StackError(
        'KAFKA_FAILED',
        `${(error as Error).message}\n--- ${this.files.outFile}:\n${tailFile(this.files.outFile)}\n(INFO log: ${serverLog})`,
        { cause: error },
      );
    }
  }

  /** SIGTERM is Kafka's controlled shutdown (leaders move away first); SIGKILL a crash. Waits for the exit. */
  async terminate(signal: 'SIGTERM' | 'SIGKILL', graceMs = stopGraceMs): Promise<void> {
    const proc = this.child;
    if (!proc) return;
    this.expectedExits.add(proc);
    const exited = once(proc, 'exit');
    proc.kill(signal);
    // A stopped process only acts on SIGTERM once it runs again.
    if (this.frozen) proc.kill('SIGCONT');
    const escalate = signal === 'SIGTERM' ? setTimeout(() => proc.kill('SIGKILL'), graceMs) : undefined;
    await exited;
    clearTimeout(escalate);
  }

  /**
   * SIGSTOP: the JVM stays alive with its sockets open but answers nothing, like
   * a broker in a long GC pause or on a partitioned host; clients see timeouts,
   * not refused connections.
   */
  freeze(): void {
    if (!this.child || this.frozen) return;
    this.child.kill('SIGSTOP');
    this.frozen = true;
  }

  thaw(): void {
    if (!this.child || !this.frozen) return;
    this.child.kill('SIGCONT');
    this.frozen = false;
  }

  /**
   * A node that a SIGKILLed harness left on this directory holds its data lock
   * and ports; it is ours (same server.properties), so it goes.
   */
  async killLeftover(portsFile: string): Promise<void> {
    if (!existsSync(this.pidFile)) return;
    const pid = Number((await readFile(this.pidFile, 'utf8')).trim());
    const isOurs = () => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(this.files.propsFile);
      } catch {
        return false;
      }
    };
    if (Number.isInteger(pid) && pid > 0 && isOurs()) {
      this.log(`killing ${this.name} (pid ${pid}) left running on ${this.files.propsFile}`);
      process.kill(pid, 'SIGKILL');
      // Its ports, which clients of the last run still know, are free only once all its threads are
      // gone, which can be after /proc shows it as a zombie; so wait on the ports themselves.
      const ports = existsSync(portsFile) ? (await readFile(portsFile, 'utf8')).trim().split(/\s+/).map(Number) : [];
      await waitFor(`leftover ${this.name} pid ${pid} to exit`, async () => !isOurs(), { timeoutMs: 30_000 });
      await waitFor(
        `ports ${ports.join(', ')} to be released`,
        async () => (await Promise.all(ports.map(portIsFree))).every(Boolean),
        { timeoutMs: 5_000 },
      ).catch(() => this.log(`ports ${ports.join(', ')} stay taken; ${this.name} gets new ones`));
    }
    await rm(this.pidFile, { force: true });
  }
}
