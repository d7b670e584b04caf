/**
 * Last-resort cleanup: whatever the harness started must not outlive it.
 *
 * Hooks are synchronous and run last-registered-first (like `defer`), so a
 * temporary directory registered before the stack is removed after the
 * services in it have stopped. They run on process exit and on SIGINT,
 * SIGTERM and SIGHUP, because Node's default action for those signals ends
 * the process without emitting 'exit'. When someone else also listens for a
 * signal (the CLI, a test runner), that listener owns shutdown and the
 * fallback here stays out of its way.
 */
const hooks: Array<() => void> = [];
const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
let installed = false;

export function onHarnessExit(hook: () => void): () => void {
  install();
  hooks.push(hook);
  return () => {
    const index = hooks.indexOf(hook);
    if (index >= 0) hooks.splice(index, 1);
  };
}

function runHooks(): void {
  for (let hook = hooks.pop(); hook; hook = hooks.pop()) {
    try {
      hook();
    } catch {
      // Best effort: one failing hook must not stop the others.
    }
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  process.once('exit', runHooks);
  for (const signal of signals) {
    const fallback = () => {
      if (process.listenerCount(signal) > 1) return;
      runHooks();
      // Die of the same signal, as the process would have without us (exit status 128+n).
      process.off(signal, fallback);
      process.kill(process.pid, signal);
    };
    process.on(signal, fallback);
  }
}
