import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { swaggerUI } from '@hono/swagger-ui';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from './app-env.ts';
import { ApiError } from './errors.ts';

/**
 * Swagger UI's script and stylesheet come from this API, not from a CDN: /docs
 * then works offline and behind an egress firewall, and a visit to it tells no
 * third party. Auth leaves this prefix open, like /docs itself (see auth.ts).
 */
export const DOCS_ASSETS_PATH = '/docs/assets';

const require = createRequire(import.meta.url);
// swagger-ui-dist's main module loads the 1.7 MB bundle into Node; its files are all we need.
const distDir = dirname(require.resolve('swagger-ui-dist/package.json'));
const distVersion = (require('swagger-ui-dist/package.json') as { version: string }).version;

/** The files /docs references (@hono/swagger-ui's page: one stylesheet, one script). */
const ASSET_TYPES: Readonly<Record<string, string>> = {
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui.css': 'text/css; charset=utf-8',
};

const cache = new Map<string, Promise<Uint8Array<ArrayBuffer>>>();

/** Each file is read once, on its first request; they are static for the process's life. */
function asset(file: string): Promise<Uint8Array<ArrayBuffer>> {
  let body = cache.get(file);
  if (!body) {
    // Copied once into a plain Uint8Array: Hono's body type does not take a Buffer.
    body = readFile(join(distDir, file)).then((bytes) => new Uint8Array(bytes));
    body.catch(() => cache.delete(file));
    cache.set(file, body);
  }
  return body;
}

export function registerDocs(app: OpenAPIHono<AppEnv>, openApiPath: string): void {
  // @hono/swagger-ui treats baseUrl as a mirror of the CDN's layout, `<base>/swagger-ui-dist@<version>/<file>`.
  // The version in the URL is the installed one, so an upgrade changes every URL and
  // the assets can be cached for good. validatorUrl 'none': no badge calling swagger.io.
  app.get(
    '/docs',
    swaggerUI({ url: openApiPath, baseUrl: DOCS_ASSETS_PATH, version: distVersion, validatorUrl: 'none' }),
  );
  // A parameter, not a literal: Hono's router matches no route whose literal segment holds an '@'.
  app.get(`${DOCS_ASSETS_PATH}/:dist/:file`, async (c) => {
    const file = c.req.param('file');
    const type = ASSET_TYPES[file];
    if (c.req.param('dist') !== `swagger-ui-dist@${distVersion}` || !type) {
      throw new ApiError(404, 'NOT_FOUND', 'no such docs asset');
    }
    c.header('Content-Type', type);
    c.header('Cache-Control', 'public, max-age=31536000, immutable');
    return c.body(await asset(file));
  });
}
