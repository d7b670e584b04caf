/**
 * docs/benchmarks.md ends with a hand-written part (how to run the bench, the headline figures of
 * earlier runs, profiles) that no single run can produce. Each run rewrites the file above that
 * part and keeps it as it was, from its marker line on.
 */
export const KEPT_MARKER = '<!-- Kept by pnpm bench: everything from this line on is written by hand. -->';

/** The new report followed by the previous file's kept part, if it had one. */
export function withKeptPart(generated: string, previous: string): string {
  const at = previous.indexOf(KEPT_MARKER);
  if (at < 0) return generated;
  return `${generated.trimEnd()}\n\n${previous.slice(at)}`;
}
