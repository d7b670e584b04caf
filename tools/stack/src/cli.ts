import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { StackError } from './errors.ts';
import { runForeground } from './exec.ts';
import { onHarnessExit } from './exit-hooks.ts';
import { ensureKafkaJars } from './kafka-jars.ts';
import { type KafkaNodes, publishStackEnv, type Stack, startStack } from './stack.ts';
import { devStack, withDevEnv } from './dev.ts';

/**
 * The default of `dev` and `env`, which turbo runs from each package's directory: the repo's
 * .walnut, or WALNUT_DEV_DIR (tests, which must not touch a developer's stack).
 */
const repoWalnutDir = process.env.WALNUT_DEV_DIR || fileURLToPath(new URL('../../../.walnut', import.meta.url));

const usage = `usage:
  walnut-stack up   [--dir .walnut]             start Postgres + Kafka, print their env, run until Ctrl-C
  walnut-stack run  [--dir DIR] -- CMD [ARGS…]  start them, run CMD with DATABASE_URL, KAFKA_BROKERS and
                                                WALNUT_STACK_DIR set, stop them, exit with CMD's status
                                                (default DIR: a temporary directory, removed afterwards)
  walnut-stack dev  [--dir REPO/.walnut]        the stack as a turbo dev task: start, migrate, write
                                                DIR/dev.env, run until Ctrl-C
  walnut-stack env  [--dir REPO/.walnut] -- CMD run CMD with the dev stack's settings (waits for dev.env;
                                                at once when DATABASE_URL and KAFKA_BROKERS are set)
  walnut-stack jars                             fetch Kafka's jars from Maven Central (infra/kafka/pom.xml)
Options of up and run:
  --kafka-nodes 1|3   one Kafka broker (default), or a 3-node KRaft cluster (replication factor 3,
                      min.insync.replicas 2); default from WALNUT_KAFKA_NODES
With DATABASE_URL / KAFKA_BROKERS already set, that service is used and not started.`;

const log = (line: string) => process.stderr.write(`[stack] ${line}\n`);

function signalled(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
}

async function up(dir: string, kafkaNodes: KafkaNodes): Promise<number> {
  await mkdir(dir, { recursive: true });
  const stack = await startStack({ dir, kafkaNodes, log });
  const stopRequested = signalled();
  const env = await publishStackEnv(stack, dir);
  for (const [k, v] of Object.entries(env)) process.stdout.write(`${k}=${v}\n`);
  log(`ready (env in ${path.join(dir, 'stack.env')}); Ctrl-C stops it`);
  log(`got ${await stopRequested}, stopping`);
  await stack.stop();
  return 0;
}

async function runWith(dir: string | undefined, kafkaNodes: KafkaNodes, argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (command === undefined) {
    process.stderr.write(`${usage}\n`);
    return 2;
  }
  const workDir = dir ?? (await mkdtemp(path.join(tmpdir(), 'walnut-stack-')));
  await mkdir(workDir, { recursive: true });
  // Registered before the stack's own hooks, so it runs after them (LIFO) if we die early.
  const forgetTemp = dir ? () => {} : onHarnessExit(() => rmSync(workDir, { recursive: true, force: true }));
  let stack: Stack | undefined;
  try {
    stack = await startStack({ dir: workDir, kafkaNodes, log });
    const env = { ...(await publishStackEnv(stack, workDir)), WALNUT_STACK_DIR: workDir };
    return await runForeground(command, args, { ...process.env, ...env }, log);
  } finally {
    await stack?.stop().catch((error: unknown) => log(`stop failed: ${(error as Error).message}`));
    if (!dir) {
      await rm(workDir, { recursive: true, force: true });
      forgetTemp();
    }
  }
}

async function main(): Promise<number> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      dir: { type: 'string' },
      'kafka-nodes': { type: 'string', default: process.env.WALNUT_KAFKA_NODES || '1' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const kafkaNodes = Number(values['kafka-nodes']);
  if (kafkaNodes !== 1 && kafkaNodes !== 3) {
    throw new StackError(
      'BAD_ENV',
      `--kafka-nodes (or WALNUT_KAFKA_NODES) must be 1 or 3, got "${values['kafka-nodes']}"`,
    );
  }
  switch (command) {
    case 'up':
      return up(path.resolve(values.dir ?? '.walnut'), kafkaNodes);
    case 'run':
      return runWith(values.dir === undefined ? undefined : path.resolve(values.dir), kafkaNodes, rest);
    case 'dev':
      return devStack(values.dir ? path.resolve(values.dir) : repoWalnutDir, kafkaNodes, log, signalled());
    case 'env':
      return withDevEnv(values.dir ? path.resolve(values.dir) : repoWalnutDir, rest, log);
    case 'jars':
      log(`Kafka jars in ${await ensureKafkaJars({ log })}`);
      return 0;
    default:
      process.stderr.write(`${usage}\n`);
      return 2;
  }
}

try {
  process.exitCode = await main();
} catch (error) {
  const code = error instanceof StackError ? `${error.code}: ` : '';
  log(`${code}${(error as Error).message}`);
  process.exitCode = 1;
}
