import type { LogEntry, logCreator } from 'kafkajs';
import { type Logger, pino } from 'pino';

/** JSON lines on stdout, one logger per process, named after the runnable. */
export function createLogger(name: string, level: string): Logger {
  return pino({ name, level });
}

/**
 * kafkajs logs through its own creator; this sends its lines to pino at warn
 * (the level the clients are built with), keeping its fields under `kafka`.
 */
export function kafkajsLogCreator(log: Logger): logCreator {
  return () => (entry: LogEntry) => {
    const { message, ...rest } = entry.log;
    log.warn({ kafka: rest, namespace: entry.namespace }, message);
  };
}
