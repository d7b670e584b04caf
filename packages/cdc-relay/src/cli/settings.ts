import { readFileSync } from 'node:fs';
import { exitRefused, type StartedRunnable, startRunnable } from '@walnut/runtime';
import { type Command, Option } from 'commander';
import type { z } from 'zod';
import { type RelayConfig, type RelayEnv, relayConfig, relayEnv, secretSettings } from '../config.ts';

type SettingName = keyof typeof relayEnv.shape;

/** RELAY_SLOT → slot, KAFKA_BROKERS → kafka-brokers: the flag of a setting. */
export function flagOf(name: string): string {
  return name
    .replace(/^RELAY_/, '')
    .toLowerCase()
    .replaceAll('_', '-');
}

function isSecret(name: string): boolean {
  return (secretSettings as readonly string[]).includes(name);
}

/** Adds one `--flag <value>` per non-secret setting, falling back to its env var. */
export function addSettingOptions(command: Command, names: readonly SettingName[]): Command {
  for (const name of names) {
    if (isSecret(name)) continue;
    const schema = relayEnv.shape[name] as z.ZodType;
    command.addOption(new Option(`--${flagOf(name)} <value>`, schema.description ?? '').env(name));
  }
  return command;
}

/** The raw settings of a command that are not secrets: flags, or their env vars (via commander). */
function rawSettings(command: Command, names: readonly SettingName[]): Record<string, string | undefined> {
  const options = command.opts<Record<string, string | undefined>>();
  const raw: Record<string, string | undefined> = {};
  for (const name of names) if (!isSecret(name)) raw[name] = options[camel(flagOf(name))];
  return raw;
}

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/**
 * A relay command starts as every runnable does (runnable-startup.ts in
 * @walnut/runtime), from its flags: a bad value names the flag and the
 * variable, `--slot / RELAY_SLOT: …`, and exits 2. Settings a command does not
 * offer keep their defaults.
 */
export function startCommand<T extends z.ZodType<{ LOG_LEVEL: string }>>(
  command: Command,
  names: readonly SettingName[],
  schema: T,
): StartedRunnable<z.infer<T>> {
  return startRunnable({
    program: 'walnut-relay',
    schema,
    settings: rawSettings(command, names),
    secrets: secretSettings.filter((name) => names.includes(name)),
    label: (name) => `--${flagOf(name)} / ${name}`,
  });
}

/** A command's settings as the relay's configuration (reading the files they name), or exit 2. */
export function configOrExit(
  command: Command,
  names: readonly SettingName[],
): StartedRunnable<RelayEnv> & { config: RelayConfig } {
  const started = startCommand(command, names, relayEnv);
  try {
    return { ...started, config: relayConfig(started.env, (path) => readFileSync(path, 'utf8')) };
  } catch (error) {
    exitRefused([`walnut-relay: ${(error as Error).message}`]);
  }
}

/**
 * Replay and snapshot send rows whose place in the WAL is unknown (their
 * records stand at LSN 0/0, or just before the slot's consistent point), so a
 * Redis entry id derived from it would be refused as older than the stream's
 * top, and an automatic id (`*`, the time in ms) would put the stream's top
 * past every id the live stream derives from an LSN: its later entries would
 * be refused and counted as delivered, i.e. lost. On NATS, their message ids
 * (the same LSN-position) would collide, and JetStream would drop all but one
 * as duplicates. So they need Kafka, for now.
 */
export function kafkaOnlyOrExit(config: RelayConfig, what: 'replay' | 'snapshot'): void {
  if (config.sink.kind === 'kafka') return;
  exitRefused([
    `walnut-relay: --sink / RELAY_SINK: ${what} needs RELAY_SINK=kafka; with ${config.sink.kind} it could not give its messages ids that keep the live stream's (docs/relay.md, Redis Streams and NATS JetStream)`,
  ]);
}

export const allSettings = Object.keys(relayEnv.shape) as SettingName[];
export const adminSettings = [
  'DATABASE_URL',
  'RELAY_SLOT',
  'RELAY_SLOT_FAILOVER',
  'RELAY_PUBLICATION',
  'RELAY_OUTBOX_TABLE',
  'LOG_LEVEL',
] as const satisfies readonly SettingName[];

/** What replay reads: the outbox and its mapping, Kafka, and the sink's limits and dead-letter topic (the stream's). */
export const replaySettings = [
  'DATABASE_URL',
  'RELAY_SINK',
  'REDIS_URL',
  'NATS_SERVERS',
  'KAFKA_BROKERS',
  'KAFKA_CLIENT_ID',
  'KAFKA_SSL',
  'KAFKA_SSL_CA_FILE',
  'KAFKA_SASL_MECHANISM',
  'KAFKA_SASL_USERNAME',
  'KAFKA_SASL_PASSWORD',
  'RELAY_OUTBOX_TABLE',
  'RELAY_COLUMN_ID',
  'RELAY_COLUMN_KEY',
  'RELAY_COLUMN_PAYLOAD',
  'RELAY_COLUMN_CREATED_AT',
  'RELAY_COLUMN_AGGREGATE_TYPE',
  'RELAY_TOPIC_TEMPLATE',
  'RELAY_HEADER_COLUMNS',
  'RELAY_MAX_BATCH_RECORDS',
  'RELAY_MAX_BATCH_BYTES',
  'RELAY_MAX_RECORD_BYTES',
  'RELAY_MAX_REQUESTS_IN_FLIGHT',
  'RELAY_MAX_INFLIGHT_RECORDS',
  'RELAY_MAX_INFLIGHT_BYTES',
  'RELAY_LINGER_MS',
  'RELAY_DEAD_LETTER_TOPIC',
  'RELAY_KAFKA_SEND_TIMEOUT_MS',
  'LOG_LEVEL',
] as const satisfies readonly SettingName[];
