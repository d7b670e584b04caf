import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { StackError } from './errors.ts';
import { run } from './exec.ts';

const projectDir = fileURLToPath(new URL('../../../infra/kafka/', import.meta.url));
const jarDir = `${projectDir}target/jars`;
const stampFile = `${projectDir}target/jars.stamp`;

/**
 * Kafka's jars, resolved from Maven Central by infra/kafka/pom.xml. Maven runs
 * only when the jars are missing or the pom changed since they were fetched.
 */
export async function ensureKafkaJars(log: (line: string) => void = () => {}): Promise<string> {
  const pom = await readFile(`${projectDir}pom.xml`);
  const stamp = createHash('sha256').update(pom).digest('hex');
  if (existsSync(stampFile) && (await readFile(stampFile, 'utf8')) === stamp) return jarDir;
  log('fetching Kafka jars from Maven Central (mvn dependency:copy-dependencies)');
  await rm(jarDir, { recursive: true, force: true });
  try {
    await run(
      'mvn',
      ['-q', '-B', 'dependency:copy-dependencies', '-DoutputDirectory=target/jars', '-DincludeScope=runtime'],
      { code: 'TOOL_MISSING', cwd: projectDir },
    );
  } catch (error) {
    throw new StackError(
      'TOOL_MISSING',
      `could not fetch Kafka's jars with Maven (needs mvn and Java 17 on PATH, or set KAFKA_BROKERS): ${(error as Error).message}`,
      { cause: error },
    );
  }
  await writeFile(stampFile, stamp);
  return jarDir;
}
