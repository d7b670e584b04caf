/**
 * The relay's image and docs/relay.md say the same about where its HTTP server
 * listens: the default host and port are the config's, and the host the image sets
 * (so that a published port reaches the process) is the one the doc names.
 */
import { readFileSync } from 'node:fs';
import { relayEnv } from '@walnut/cdc-relay';
import { RELAY_NODE_ARGS, RELAY_PROCESS_ENV } from '@walnut/stack';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { repoPath } from './repo.ts';

const image = suite('relay image and docs/relay.md');

const dockerfile = readFileSync(repoPath('packages/cdc-relay/Dockerfile'), 'utf8');
const doc = readFileSync(repoPath('docs/relay.md'), 'utf8');

/** NAME=value pairs of the Dockerfile's ENV lines (`ENV A=1 B=2`). */
function imageEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of dockerfile.split('\n').filter((l) => l.startsWith('ENV '))) {
    for (const pair of line.slice('ENV '.length).trim().split(/\s+/)) {
      const [name, value] = pair.split('=');
      if (name && value !== undefined) env[name] = value;
    }
  }
  return env;
}

const defaults = relayEnv.parse({ DATABASE_URL: 'postgres://relay@db/app', KAFKA_BROKERS: 'kafka:9092' }) as {
  RELAY_HTTP_HOST: string;
  RELAY_HTTP_PORT: number;
};

image("the doc's default address is the config's", () => {
  const address = `${defaults.RELAY_HTTP_HOST}:${defaults.RELAY_HTTP_PORT}`;
  assert.ok(
    doc.includes(`The relay serves \`RELAY_HTTP_HOST:RELAY_HTTP_PORT\` (default \`${address}\``),
    `docs/relay.md does not give the default ${address}`,
  );
});

image('the host the image sets is the one the doc names, and its port is the one it exposes and probes', () => {
  const host = imageEnv().RELAY_HTTP_HOST;
  assert.ok(host, 'the Dockerfile sets no RELAY_HTTP_HOST: inside a container 127.0.0.1 is unreachable from outside');
  assert.ok(
    doc.includes(`The image (\`packages/cdc-relay/Dockerfile\`) sets \`RELAY_HTTP_HOST=${host}\``),
    `docs/relay.md does not say the image sets RELAY_HTTP_HOST=${host}`,
  );
  const port = imageEnv().RELAY_HTTP_PORT ?? String(defaults.RELAY_HTTP_PORT);
  assert.match(dockerfile, new RegExp(`^EXPOSE ${port}$`, 'm'));
  assert.match(dockerfile, new RegExp(`^HEALTHCHECK .*127\\.0\\.0\\.1:${port}/health`, 'm'));
});

// The tests and the bench start the relay with RELAY_NODE_ARGS and RELAY_PROCESS_ENV so that
// what they measure is what ships: the image, the package's start script and the doc must agree.
image('the image, the start script and docs/relay.md run node as the tests and the bench do', () => {
  const env = imageEnv();
  const entrypoint = /^ENTRYPOINT \[(.*)\]$/m.exec(dockerfile)?.[1] ?? '';
  const start = (
    JSON.parse(readFileSync(repoPath('packages/cdc-relay/package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    }
  ).scripts.start;
  for (const [name, value] of Object.entries(RELAY_PROCESS_ENV)) {
    assert.is(env[name], value, `the Dockerfile's ENV ${name}`);
    assert.ok(start?.includes(`${name}=${value}`), `the start script sets ${name}=${value}`);
    assert.ok(doc.includes(`${name}=${value}`), `docs/relay.md names ${name}=${value}`);
  }
  for (const arg of RELAY_NODE_ARGS) {
    assert.ok(entrypoint.includes(`"${arg}"`), `the ENTRYPOINT passes ${arg}`);
    assert.ok(start?.includes(arg), `the start script passes ${arg}`);
    assert.ok(doc.includes(arg), `docs/relay.md names ${arg}`);
  }
});

image.run();
