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

/**
 * Every Walnut HTTP error body, the API's and the ops server's, so a client parses one
 * shape: `{"error":{"code","message","details"}}`.
 */
export interface ErrorEnvelope<Code extends string = string> {
  error: { code: Code; message: string; details?: unknown };
}

export function errorEnvelope<Code extends string>(
  code: Code,
  message: string,
  details?: unknown,
): ErrorEnvelope<Code> {
  return { error: { code, message, ...(details === undefined ? {} : { details }) } };
}
