import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ensureKafkaJars } from './kafka-jars.ts';
import { type Stack, startStack } from './stack.ts';

const usage = `usage:
  walnut-stack up  [--dir .walnut]            start Postgres + Kafka, print their env, run until Ctrl-C
  walnut-stack run [--dir DIR] -- CMD [ARGS]  start them, run CMD with DATABASE_URL/KAFKA_BROKERS, stop them
  walnut-stack jars                           fetch Kafka's jars from Maven Central
DATABASE_URL / KAFKA_BROKERS already set: that service is used, not started.`;

const log = (line: string) => process.stderr.write(`[stack] ${line}\n`);

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { dir: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
});
const [command, ...rest] = positionals;

async function stackEnv(stack: Stack, dir: string): Promise<Record<string, string>> {
  const env = { DATABASE_URL: stack.databaseUrl, KAFKA_BROKERS: stack.kafkaBrokers.join(','), WALNUT_STACK_DIR: dir };
  await writeFile(
    path.join(dir, 'stack.env'),
    Object.entries(env)
      .map(([k, v]) => `export ${k}='${v}'\n`)
      .join(''),
  );
  return env;
}

async function up(dir: string): Promise<number> {
  const stack = await startStack({ dir, log });
  const env = await stackEnv(stack, dir);
  for (const [k, v] of Object.entries(env)) console.log(`${k}=${v}`);
  log('ready; Ctrl-C stops it');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await stack.stop();
  return 0;
}

async function runWith(dir: string | undefined, argv: string[]): Promise<number> {
  if (argv.length === 0) {
    console.error(usage);
    return 2;
  }
  const workDir = dir ?? (await mkdtemp(path.join(tmpdir(), 'walnut-stack-')));
  let stack: Stack | undefined;
  try {
    stack = await startStack({ dir: workDir, log });
    const env = await stackEnv(stack, workDir);
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: 'inherit', env: { ...process.env, ...env } });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
    return code ?? (signal === 'SIGINT' ? 130 : 1);
  } finally {
    await stack?.stop().catch((error) => log(`stop failed: ${(error as Error).message}`));
    if (!dir) await rm(workDir, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  if (values.help || !command) {
    console.error(usage);
    return command ? 0 : 2;
  }
  switch (command) {
    case 'up':
      return up(path.resolve(values.dir ?? '.walnut'));
    case 'run':
      return runWith(values.dir ? path.resolve(values.dir) : undefined, rest);
    case 'jars':
      await ensureKafkaJars(log);
      return 0;
    default:
      console.error(usage);
      return 2;
  }
}

try {
  process.exitCode = await main();
} catch (error) {
  log(`${(error as Error).message}`);
  process.exitCode = 1;
}
