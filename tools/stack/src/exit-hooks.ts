/**
 * Last-resort cleanup: whatever the harness started must not outlive it, even
 * when the process dies on an uncaught error. Hooks run synchronously on exit.
 */
const hooks = new Set<() => void>();
let installed = false;

export function onHarnessExit(hook: () => void): () => void {
  if (!installed) {
    installed = true;
    process.once('exit', () => {
      for (const h of hooks) {
        try {
          h();
        } catch {
          // Best effort: one failing hook must not stop the others.
        }
      }
    });
  }
  hooks.add(hook);
  return () => hooks.delete(hook);
}
