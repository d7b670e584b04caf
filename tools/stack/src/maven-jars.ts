import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StackError } from './errors.ts';
import { findExecutable, run } from './exec.ts';

/**
 * A Maven project's runtime jars (absolute directory, for `-cp '<dir>/*'`): its
 * pom's dependencies, copied from Maven Central into <projectDir>/target/jars.
 * Maven runs only when the jars are missing or the pom changed since they were
 * fetched (target/jars.stamp holds its hash). `marker` is the file name prefix
 * of a jar that must be there, so an emptied directory is fetched again.
 */
export async function ensureMavenJars(opts: {
  projectDir: string;
  /** What the jars are, for messages: "Kafka's jars". */
  what: string;
  marker: string;
  /** The way around a missing mvn, for its message. */
  orElse?: string;
  /** Runs before Maven does, e.g. a check of Java with a clearer message than Maven's. */
  beforeFetch?: () => Promise<unknown>;
  log?: (line: string) => void;
}): Promise<string> {
  const { projectDir, what } = opts;
  const log = opts.log ?? (() => {});
  const targetDir = path.join(projectDir, 'target');
  const jarDir = path.join(targetDir, 'jars');
  const stampFile = path.join(targetDir, 'jars.stamp');
  const pomFile = path.join(projectDir, 'pom.xml');
  const stamp = createHash('sha256')
    .update(await readFile(pomFile))
    .digest('hex');
  if (jarsMatch(stampFile, jarDir, stamp, opts.marker)) return jarDir;

  const mvn = findExecutable('mvn');
  if (!mvn) {
    throw new StackError(
      'TOOL_MISSING',
      `mvn is not on PATH: ${what} come from Maven Central through ${pomFile} (Debian: apt-get install maven)${opts.orElse ? `, ${opts.orElse}` : ''}`,
    );
  }
  await opts.beforeFetch?.();
  log(`fetching ${what} from Maven Central (mvn dependency:copy-dependencies in ${projectDir})`);
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
    throw new StackError('JARS_FAILED', `Maven could not fetch ${what}: ${(error as Error).message}`, {
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

function jarsMatch(stampFile: string, jarDir: string, stamp: string, marker: string): boolean {
  try {
    return readFileSync(stampFile, 'utf8').trim() === stamp && readdirSync(jarDir).some((f) => f.startsWith(marker));
  } catch {
    return false;
  }
}
