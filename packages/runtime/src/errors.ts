/**
 * The shape every package's errors take (shared/STYLE.md: errors are values):
 * a stable `code` from the package's own union, a `cause`, and whether trying
 * again can help (a broker restart) or a human must act (wal_level).
 */
export class CodedError<Code extends string> extends Error {
  readonly code: Code;
  readonly retryable: boolean;

  constructor(code: Code, message: string, opts: { retryable: boolean; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.retryable = opts.retryable;
  }
}
