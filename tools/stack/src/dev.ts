import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runMigrations } from '@walnut/schema';
import { exportLines, run, runForeground } from './exec.ts';
import { type KafkaNodes, publishStackEnv, startStack } from './stack.ts';

/**
 * `turbo run dev` starts every package's dev task at once, so the stack is a
 * task too: `walnut-stack dev` starts Postgres and Kafka (only those not given
 * by DATABASE_URL / KAFKA_BROKERS), migrates the database, then writes
 * `<dir>/dev.env`; each runnable's dev task waits for that file under
 * `walnut-stack env` and starts with its settings. The file names the stack's
 * pid, so one left by an earlier run that died is never taken for this one.
 */
const DEV_ENV = 'dev.env';
const relayBin = fileURLToPath(new URL('../../../packages/cdc-relay/bin/walnut-relay.js', import.meta.url));

export async function devStack(
  dir: string,
  kafkaNodes: KafkaNodes,
  log: (line: string) => void,
  stopRequested: Promise<NodeJS.Signals>,
): Promise<number> {
  await mkdir(dir, { recursive: true });
  await rm(path.join(dir, DEV_ENV), { force: true });
  const stack = await startStack({ dir, kafkaNodes, log });
  try {
    await runMigrations(stack.databaseUrl);
    // stack.env for shells (`source`); dev.env, written last, tells the dev tasks it is ready.
    const env = await publishStackEnv(stack, dir);
    // On its own database the publication and the slot exist before the API takes its first
    // write: a row committed before the slot would never be relayed, and the runnables wait
    // for this task. With DATABASE_URL given they start at once, and the relay creates its
    // slot on its first start.
    if (stack.postgres.owned) {
      for (const args of [['publication', 'sync'], ['slot', 'create']]) {
        const output = await run(process.execPath, [relayBin, ...args], {
          code: 'POSTGRES_FAILED',
          env: { ...process.env, ...env },
        });
        log(`walnut-relay ${args.join(' ')}: ${output.trim()}`);
      }
    }
    const lines = exportLines(env);
    await writeFile(path.join(dir, DEV_ENV), `${lines.join('\n')}\nexport WALNUT_DEV_PID=${process.pid}\n`);
    log('ready; from another shell:');
    for (const line of lines) log(`  ${line}`);
    log('  psql "$DATABASE_URL"    (or ./walnut psql)');
    // With both services given nothing else keeps the process up until Ctrl-C.
    const keepAlive = setInterval(() => {}, 60_000);
    log(`got ${await stopRequested}, stopping`);
    clearInterval(keepAlive);
  } finally {
    await rm(path.join(dir, DEV_ENV), { force: true });
    await stack.stop();
  }
  return 0;
}

/** The settings of a running dev stack, or undefined while there is none. */
async function readDevEnv(dir: string): Promise<Record<string, string> | undefined> {
  const file = path.join(dir, DEV_ENV);
  if (!existsSync(file)) return undefined;
  const env: Record<string, string> = {};
  for (const line of (await readFile(file, 'utf8')).split('\n')) {
    const match = /^export ([A-Z_]+)='?(.*?)'?$/.exec(line);
    if (match) env[match[1] as string] = (match[2] as string).replaceAll(`'\\''`, "'");
  }
  const pid = Number(env.WALNUT_DEV_PID);
  if (!Number.isInteger(pid)) return undefined;
  try {
    process.kill(pid, 0);
  } catch {
    return undefined; // left by a stack that is gone
  }
  return env;
}

/**
 * Runs `argv` with the dev stack's settings: at once when DATABASE_URL and
 * KAFKA_BROKERS are set, else once `walnut-stack dev` has written them.
 */
export async function withDevEnv(
  dir: string,
  argv: string[],
  log: (line: string) => void,
  timeoutMs = 600_000,
): Promise<number> {
  const [command, ...args] = argv;
  if (command === undefined) return 2;
  let env: Record<string, string> = {};
  if (!process.env.DATABASE_URL || !process.env.KAFKA_BROKERS) {
    const deadline = Date.now() + timeoutMs;
    let waiting = false;
    for (;;) {
      const found = await readDevEnv(dir);
      if (found) {
        env = found;
        break;
      }
      if (Date.now() > deadline) {
        log(`no dev stack in ${dir} after ${timeoutMs / 1000} s (is the stack's dev task running?)`);
        return 1;
      }
      if (!waiting) log(`waiting for the dev stack (${path.join(dir, DEV_ENV)})`);
      waiting = true;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  // A variable set by the caller wins over the stack's (one of the two services may be given).
  return runForeground(command, args, { ...env, ...process.env }, log);
}
