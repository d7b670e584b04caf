/** The repo's ops files as data, shared by the infra tests. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export function repoPath(...parts: string[]): string {
  return path.join(repoRoot, ...parts);
}

/**
 * A YAML file of the repo. Merge keys (`<<: *anchor`) are a YAML 1.1 feature that
 * compose files rely on and the `yaml` package leaves off by default.
 */
// biome-ignore lint/suspicious/noExplicitAny: the files' shapes are checked by the tests that read them.
export function readYaml(file: string): any {
  return parse(readFileSync(repoPath(file), 'utf8'), { merge: true });
}

/** The absolute path of an executable on PATH, or undefined. */
export function which(name: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}
