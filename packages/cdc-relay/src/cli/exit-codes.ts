import { BAD_SETTINGS_EXIT_CODE } from '@walnut/runtime';
import { RelayError } from '../errors.ts';
import { UsageError } from '../replay/replay-run.ts';

/**
 * How a relay command ends on an error (docs/relay.md): 1 for a failure
 * (whatever progress was acked is saved), 2 for a refused command line, as for
 * a bad setting. One line on stderr, with the error's code.
 */
export function exitWith(error: unknown): never {
  if (error instanceof UsageError) {
    console.error(`walnut-relay: ${error.message}`);
    process.exit(BAD_SETTINGS_EXIT_CODE);
  }
  const code = error instanceof RelayError ? error.code : 'UNEXPECTED';
  console.error(`walnut-relay: ${code}: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
