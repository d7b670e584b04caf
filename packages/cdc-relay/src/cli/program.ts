import { Command } from 'commander';
import { allowOptimization } from '../deferred-optimization.ts';
import { addAdminCommands } from './admin-commands.ts';
import { addReplayCommand, addSnapshotCommand } from './replay-commands.ts';
import { addRunCommand } from './run-command.ts';

/**
 * The relay's command line: which subcommand runs. Each subcommand's wiring
 * is in its own module; every one starts from its settings as the other
 * runnables do (settings.ts, runnable-startup.ts in @walnut/runtime).
 */
const program = new Command('walnut-relay')
  .description(
    'Streams outbox inserts from a Postgres pgoutput slot to Kafka (or Redis Streams, or NATS JetStream), confirming only what the sink acked.',
  )
  .showHelpAfterError()
  .addHelpText(
    'after',
    '\nEvery option also reads the environment variable shown. DATABASE_URL, KAFKA_SASL_PASSWORD, REDIS_URL, NATS_PASSWORD\nand NATS_TOKEN come only from the environment or from a file named by <NAME>_FILE (DATABASE_URL_FILE, …).',
  );

// `run` turns V8's compilers on at its first WAL message; every other command has work from the start.
program.hook('preAction', (_program, command) => {
  if (command.name() !== 'run') allowOptimization();
});

addRunCommand(program);
addAdminCommands(program);
addReplayCommand(program);
addSnapshotCommand(program);

await program.parseAsync(process.argv);
