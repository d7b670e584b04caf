import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { StackError } from './errors.ts';
import { findExecutable, run } from './exec.ts';
import { ensureMavenJars } from './maven-jars.ts';

const projectDir = fileURLToPath(new URL('../../../infra/kafka/', import.meta.url));

/** Log4j 2 configuration for the broker: INFO to <kafka.logs.dir>/server.log, WARN+ to the console. */
export const kafkaLog4jConfig = path.join(projectDir, 'log4j2.xml');

/**
 * Kafka's jars (absolute directory, for `-cp '<dir>/*'`), resolved from Maven
 * Central by infra/kafka/pom.xml, fetched again only when the pom changed.
 */
export function ensureKafkaJars(opts: { log?: (line: string) => void } = {}): Promise<string> {
  return ensureMavenJars({
    projectDir,
    what: "Kafka's jars",
    marker: 'kafka_2.13-',
    orElse: 'or set KAFKA_BROKERS to use a running Kafka',
    // Maven needs Java too; fail with the clearer message.
    beforeFetch: findJava,
    ...opts,
  });
}

let javaChecked: Promise<string> | undefined;

/**
 * The java to run Kafka with: `JAVA`, else `java` on PATH. Kafka 4 brokers
 * need Java 17 or newer, which is checked once per process.
 */
export function findJava(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  javaChecked ??= (async () => {
    const java = findExecutable(env.JAVA ?? 'java');
    if (!java) {
      throw new StackError(
        'TOOL_MISSING',
        `${env.JAVA ? `JAVA=${env.JAVA} is not executable` : 'java is not on PATH'}: Kafka needs Java 17+ ` +
          '(Debian: apt-get install openjdk-17-jre-headless), or set KAFKA_BROKERS to use a running Kafka',
      );
    }
    const banner = await run(java, ['-version'], { code: 'TOOL_MISSING' });
    // `openjdk version "17.0.15" 2025-04-15`, or "1.8.0_392" for Java 8.
    const version = /version "(?:1\.)?(\d+)/.exec(banner)?.[1];
    if (version && Number(version) < 17) {
      throw new StackError('TOOL_MISSING', `${java} is Java ${version}; Kafka 4 needs Java 17 or newer (set JAVA)`);
    }
    return java;
  })();
  return javaChecked;
}
