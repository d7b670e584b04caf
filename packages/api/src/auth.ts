import { createHash, timingSafeEqual } from 'node:crypto';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from './app-env.ts';
import { DOCS_ASSETS_PATH } from './docs-routes.ts';
import { ApiError } from './errors.ts';

/** Paths that stay open with auth on: probes, metrics and the docs. */
export const OPEN_PATHS = new Set(['/health', '/ready', '/metrics', '/openapi.json', '/docs']);
/** Swagger UI's script and stylesheet, which /docs loads from the API itself. */
const OPEN_PREFIX = `${DOCS_ASSETS_PATH}/`;

const sha256 = (text: string) => createHash('sha256').update(text).digest();

/**
 * API keys from `Authorization: Bearer <key>` or `X-API-Key`. Both sides are
 * hashed to 32 bytes before timingSafeEqual, so neither the comparison's time
 * nor a length check tells how much of a guess was right; every configured key
 * is compared, so the time does not tell which one matched either. With no keys
 * configured, auth is off.
 */
export function apiKeyAuth(keys: readonly string[]): MiddlewareHandler<AppEnv> {
  const digests = keys.map(sha256);
  return async (c, next) => {
    if (digests.length === 0 || OPEN_PATHS.has(c.req.path) || c.req.path.startsWith(OPEN_PREFIX)) {
      c.set('principal', '');
      return next();
    }
    const bearer = /^Bearer\s+(.+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
    const presented = bearer ?? c.req.header('x-api-key');
    if (presented === undefined) {
      c.header('WWW-Authenticate', 'Bearer');
      throw new ApiError(401, 'UNAUTHENTICATED', 'send an API key as `Authorization: Bearer <key>` or `X-API-Key`');
    }
    const digest = sha256(presented.trim());
    let match = false;
    for (const known of digests) match = timingSafeEqual(digest, known) || match;
    if (!match) {
      c.header('WWW-Authenticate', 'Bearer error="invalid_token"');
      throw new ApiError(401, 'UNAUTHENTICATED', 'unknown API key');
    }
    // Idempotency-Key records are scoped per caller; the digest names the caller
    // without storing the key itself.
    c.set('principal', digest.toString('hex').slice(0, 32));
    return next();
  };
}

/** Either scheme authenticates a protected route in the OpenAPI document. */
export const SECURED = [{ bearer: [] }, { apiKey: [] }];

export function registerSecuritySchemes(app: OpenAPIHono<AppEnv>): void {
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'One of API_KEYS (when set)',
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'apiKey', {
    type: 'apiKey',
    in: 'header',
    name: 'X-API-Key',
    description: 'One of API_KEYS (when set)',
  });
}
