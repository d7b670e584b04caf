import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { StackError } from './errors.ts';
import { findExecutable, run } from './exec.ts';

const projectDir = fileURLToPath(new URL('../../../infra/kafka/', import.meta.url));
const pomFile = path.join(projectDir, 'pom.xml');
const targetDir = path.join(projectDir, 'target');
const jarDir = path.join(targetDir, 'jars');
const stampFile = path.join(targetDir, 'jars.stamp');

/** Log4j 2 configuration for the broker: INFO to <kafka.logs.dir>/server.log, WARN+ to the console. */
export const kafkaLog4jConfig = path.join(projectDir, 'log4j2.xml');

/**
 * Kafka's jars (absolute directory, for `-cp '<dir>/*'`), resolved from Maven
 * Central by infra/kafka/pom.xml. Maven runs only when the jars are missing or
 * the pom changed since they were fetched (target/jars.stamp holds its hash).
 */
export async function ensureKafkaJars(opts: { log?: (line: string) => void } = {}): Promise<string> {
  const log = opts.log ?? (() => {});
  const stamp = createHash('sha256')
    .update(await readFile(pomFile))
    .digest('hex');
  if (jarsMatch(stamp)) return jarDir;

  const mvn = findExecutable('mvn');
  if (!mvn) {
    throw new StackError(
      'TOOL_MISSING',
      "mvn is not on PATH: Kafka's jars come from Maven Central through infra/kafka/pom.xml " +
        '(Debian: apt-get install maven), or set KAFKA_BROKERS to use a running Kafka',
    );
  }
  await findJava(); // Maven needs it too; fail with the clearer message.
  log(`fetching Kafka's jars from Maven Central (mvn dependency:copy-dependencies in ${projectDir})`);
  const startedAt = Date.now();
  // Fetch beside the target and swap it in, so a concurrent harness never sees half a directory.
  const staging = path.join(targetDir, `jars.tmp-${process.pid}`);
  await mkdir(targetDir, { recursive: true });
  await rm(staging, { recursive: true, force: true });
  try {
    await run(
      mvn,
      ['-q', '-B', 'dependency:copy-dependencies', '-DincludeScope=runtime', `-DoutputDirectory=${staging}`],
      { code: 'JARS_FAILED', cwd: projectDir },
    );
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw new StackError('JARS_FAILED', `Maven could not fetch Kafka's jars: ${(error as Error).message}`, {
      cause: error,
    });
  }
  await rm(jarDir, { recursive: true, force: true });
  await rename(staging, jarDir).catch(async () => {
    // Another harness swapped its identical copy in first.
    await rm(staging, { recursive: true, force: true });
  });
  await writeFile(stampFile, `${stamp}\n`);
  log(`fetched ${readdirSync(jarDir).length} jars in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
  return jarDir;
}

function jarsMatch(stamp: string): boolean {
  try {
    return (
      readFileSync(stampFile, 'utf8').trim() === stamp && readdirSync(jarDir).some((f) => f.startsWith('kafka_2.13-'))
    );
  } catch {
    return false;
  }
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
