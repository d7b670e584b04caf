import type { TraceContext } from '@walnut/schema';
import type { Logger } from 'pino';

/** Hono context variables every route may read. */
export interface AppEnv {
  Variables: {
    /** X-Request-Id, taken from the request or generated. */
    requestId: string;
    /** Scope of Idempotency-Key records: a hash of the caller's API key, '' with auth off. */
    principal: string;
    /** The process logger bound to this request's id and span. */
    log: Logger;
    /** This request's span: a child of the caller's traceparent, or the root of a new trace. */
    trace: TraceContext;
  };
}
