import { spawn } from 'node:child_process';
import { StackError, type StackErrorCode } from './errors.ts';

export const isRoot = process.getuid?.() === 0;

/**
 * Runs a command to completion and returns its output; fails with the output
 * in the message. As root, `asPostgres` runs it as the postgres OS user,
 * because initdb and postgres refuse to run as root.
 */
export function run(
  command: string,
  args: readonly string[],
  opts: { code: StackErrorCode; asPostgres?: boolean; env?: NodeJS.ProcessEnv; cwd?: string },
): Promise<string> {
  const [file, argv] =
    opts.asPostgres && isRoot ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, [...args]];
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    child.once('error', (error) =>
      reject(new StackError(opts.code, `could not run ${command}: ${error.message}`, { cause: error })),
    );
    child.once('exit', (code) => {
      if (code === 0) resolve(output);
      else reject(new StackError(opts.code, `${command} ${args.join(' ')} exited ${code}:\n${output.trim()}`));
    });
  });
}
