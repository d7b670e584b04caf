import { spawn } from 'node:child_process';
import type { Socket } from 'node:net';

/**
 * Runs `command` once this process is gone, however it goes, SIGKILL
 * included, which no exit hook survives.
 *
 * The watchdog is a detached `sh` that blocks reading a pipe whose only
 * writer is this process. The kernel closes that pipe when we die, `cat`
 * sees end-of-file and the command runs. Detached (its own session) so a
 * Ctrl-C in the terminal does not kill it before it is needed. No polling.
 *
 * `disarm()` kills the watchdog without running the command: call it when the
 * thing it guards has been stopped the normal way.
 */
export function deadMansSwitch(command: string, args: readonly string[]): { disarm(): void } {
  const child = spawn('sh', ['-c', 'cat >/dev/null; exec "$@"', 'walnut-stack-watchdog', command, ...args], {
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  child.on('error', () => {
    // No sh: the exit hooks remain; a SIGKILLed harness may then leave this one behind.
  });
  child.unref();
  // The pipe must not keep the event loop (and so the harness) alive.
  (child.stdin as Socket | null)?.unref();
  return {
    disarm() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
