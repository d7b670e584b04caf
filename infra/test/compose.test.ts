/**
 * The compose files say what the code reads. Every variable set on a runnable's
 * service is a key of that runnable's zod schema and the set parses; every published
 * and healthcheck port, and Prometheus's scrape target, is the port that env configures
 * (on an address reachable from outside the container); every published port binds
 * 127.0.0.1 only; every command names a script, file or relay subcommand that exists;
 * every file mounted from the repo exists. Docker
 * Compose itself accepts both files (`docker-compose config -q`, Debian's v1, which needs
 * no engine; skipped with a printed reason without it).
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { apiEnv, apiSecrets } from '@walnut/api';
import { applierEnv, applierSecrets } from '@walnut/applier';
import { relayEnv, secretSettings } from '@walnut/cdc-relay';
import { APPLIER_ROLE, migrateEnv, RELAY_ROLE } from '@walnut/schema';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { z } from 'zod';
import { readYaml, repoPath, which } from './repo.ts';

const exec = promisify(execFile);

interface Service {
  image?: string;
  build?: string | { context: string; dockerfile?: string };
  command?: string[];
  environment?: Record<string, string | number | boolean>;
  ports?: string[];
  healthcheck?: { test: string[] };
  volumes?: string[];
}

interface Runnable {
  schema: z.ZodType;
  /** The schema's keys: the variables the runnable reads. */
  keys: string[];
  /** Settings it also reads from the file `<NAME>_FILE` names. */
  secrets: readonly string[];
  /** Where it listens, from the parsed env; absent for one-shot jobs. */
  http?: (env: Record<string, unknown>) => { host: string; port: number };
}

/** The object inside a schema that may be wrapped in a transform. */
function keysOf(schema: z.ZodType): string[] {
  const def = (schema as unknown as { def: { type: string; in?: z.ZodType; shape?: Record<string, unknown> } }).def;
  if (def.type === 'object') return Object.keys(def.shape ?? {});
  if (def.type === 'pipe' && def.in) return keysOf(def.in);
  throw new Error(`cannot list the keys of a ${def.type} schema`);
}

const runnable = (schema: z.ZodType, secrets: readonly string[], http?: Runnable['http']): Runnable => ({
  schema,
  keys: keysOf(schema),
  secrets,
  ...(http ? { http } : {}),
});

/** Compose service name → the runnable it starts. */
const runnables: Record<string, Runnable> = {
  api: runnable(apiEnv, apiSecrets, (env) => ({ host: String(env.API_HOST), port: Number(env.API_PORT) })),
  relay: runnable(relayEnv, secretSettings, (env) => ({
    host: String(env.RELAY_HTTP_HOST),
    port: Number(env.RELAY_HTTP_PORT),
  })),
  applier: runnable(applierEnv, applierSecrets, (env) => ({
    host: String(env.APPLIER_HTTP_HOST),
    port: Number(env.APPLIER_HTTP_PORT),
  })),
  migrate: runnable(migrateEnv, []),
  'outbox-relay': runnable(relayEnv, secretSettings, (env) => ({
    host: String(env.RELAY_HTTP_HOST),
    port: Number(env.RELAY_HTTP_PORT),
  })),
};

const composeFiles = ['compose.yaml', 'docs/sidecar-compose.yaml'];

/**
 * A service's environment as the runnable sees it. A runnable also reads each secret from
 * the file `<NAME>_FILE` names (runnable-startup.ts); a stand-in value takes that file's place here.
 */
function serviceEnv(name: string, service: Service): Record<string, string> {
  const secrets = runnables[name]?.secrets ?? [];
  const env: Record<string, string> = {};
  for (const [variable, raw] of Object.entries(service.environment ?? {})) {
    const value = interpolate(String(raw));
    const secret = secrets.find((s) => variable === `${s}_FILE`);
    env[secret ?? variable] = secret ? secretStandIn(secret, value) : value;
  }
  return env;
}

/** Compose's `${NAME:-default}` as it is when NAME is unset, which is how the test reads it. */
function interpolate(value: string): string {
  return value.replace(/\$\{\w+(?::?-([^}]*))?\}/g, (_, fallback: string | undefined) => fallback ?? '');
}

/** What a secret file would hold: a URL where the setting must parse as one (DATABASE_URL). */
function secretStandIn(setting: string, file: string): string {
  return setting === 'DATABASE_URL'
    ? `postgres://relay@db/app?from=${encodeURIComponent(file)}`
    : `<contents of ${file}>`;
}

/** The container port of a `ports` entry: "host:container", "ip:host:container" or "container". */
function containerPort(entry: string): number {
  return Number(entry.split('/')[0]?.split(':').at(-1));
}

/** The image's ENTRYPOINT of a service built from a Dockerfile of the repo, exec form. */
function entrypoint(service: Service): string[] | undefined {
  if (typeof service.build !== 'object' || !service.build.dockerfile) return undefined;
  const dockerfile = readFileSync(repoPath(service.build.context, service.build.dockerfile), 'utf8');
  const line = dockerfile.split('\n').findLast((l) => l.startsWith('ENTRYPOINT '));
  return line ? (JSON.parse(line.slice('ENTRYPOINT '.length)) as string[]) : undefined;
}

/** Subcommands of the relay's CLI, from the relay itself: `<command> --help` prints its own usage. */
async function relayHasCommand(bin: string, command: string): Promise<boolean> {
  const { stdout } = await exec(process.execPath, [repoPath(bin), command, '--help'], { cwd: repoPath() });
  return stdout.startsWith(`Usage: walnut-relay ${command} `);
}

const compose = suite('compose files match the code');

for (const file of composeFiles) {
  const services = readYaml(file).services as Record<string, Service>;
  const started = Object.entries(services).filter(([name]) => runnables[name]);

  compose(`${file}: each runnable's env is keys of its config schema and parses`, () => {
    assert.ok(started.length > 0, `no runnable in ${file}`);
    for (const [name, service] of started) {
      const { schema, keys } = runnables[name] as Runnable;
      const env = serviceEnv(name, service);
      const unknown = Object.keys(env).filter((key) => !keys.includes(key));
      assert.equal(unknown, [], `${file} ${name}: variables its schema does not read`);
      const parsed = schema.safeParse(env);
      assert.ok(parsed.success, `${file} ${name}: ${parsed.error?.message}`);
    }
  });

  compose(`${file}: published and healthcheck ports are the ports the env configures`, () => {
    for (const [name, service] of started) {
      const { schema, http } = runnables[name] as Runnable;
      const published = (service.ports ?? []).map(containerPort);
      const probed = [...(service.healthcheck?.test ?? []).join(' ').matchAll(/127\.0\.0\.1:(\d+)/g)].map((m) =>
        Number(m[1]),
      );
      if (!http) {
        assert.equal([...published, ...probed], [], `${file} ${name} listens on nothing`);
        continue;
      }
      const listen = http(schema.parse(serviceEnv(name, service)) as Record<string, unknown>);
      for (const port of [...published, ...probed]) assert.is(port, listen.port, `${file} ${name}`);
      if (published.length > 0) assert.is(listen.host, '0.0.0.0', `${file} ${name}: published but listens on`);
    }
  });

  compose(`${file}: every published port binds 127.0.0.1 only`, () => {
    // Postgres, Adminer, Kafka UI, Grafana and the relays' pages answer anyone who reaches
    // them; a port published without an address is published on every interface of the host.
    for (const [name, service] of Object.entries(services)) {
      for (const entry of service.ports ?? []) {
        assert.ok(String(entry).startsWith('127.0.0.1:'), `${file} ${name}: "${entry}" binds every interface`);
      }
    }
  });

  compose(`${file}: commands name scripts, files and relay subcommands that exist`, async () => {
    const scripts = (JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as { scripts: Record<string, string> })
      .scripts;
    for (const [name, service] of started) {
      const command = service.command ?? [];
      const where = `${file} ${name}: ${JSON.stringify(command)}`;
      const image = entrypoint(service);
      if (command[0] === 'pnpm' && command[1] === 'run') {
        assert.ok(scripts[command[2] ?? ''], `${where}: no such root package.json script`);
      } else if (command[0] === 'node') {
        const script = command.find((arg) => /\.[cm]?[jt]s$/.test(arg));
        assert.ok(script && existsSync(repoPath(script)), `${where}: no such file`);
      } else if (image?.[0] === 'node' || name === 'outbox-relay') {
        // The relay's image: `node [flags] <bin>` is the ENTRYPOINT, the command its subcommand.
        const bin =
          image?.find((arg) => /\.[cm]?js$/.test(arg))?.replace(/^\/app\//, '') ??
          'packages/cdc-relay/bin/walnut-relay.js';
        assert.ok(existsSync(repoPath(bin)), `${where}: entrypoint ${bin} missing`);
        assert.ok(await relayHasCommand(bin, command[0] ?? ''), `${where}: walnut-relay has no such subcommand`);
      } else {
        assert.unreachable(`${where}: a command this test does not know how to check`);
      }
    }
  });

  compose(`${file}: files mounted from the repo exist`, () => {
    for (const [name, service] of Object.entries(services)) {
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0] ?? '';
        if (source.startsWith('.')) assert.ok(existsSync(repoPath(source)), `${file} ${name}: ${source} missing`);
      }
    }
  });
}

compose('compose.yaml: the relay and the applier connect as the roles migrate makes, not the superuser', () => {
  const services = readYaml('compose.yaml').services as Record<string, Service>;
  const migrate = migrateEnv.parse(serviceEnv('migrate', services.migrate as Service));
  const superuser = new URL(migrate.DATABASE_URL).username;
  const roles = {
    relay: [RELAY_ROLE, migrate.RELAY_ROLE_PASSWORD],
    applier: [APPLIER_ROLE, migrate.APPLIER_ROLE_PASSWORD],
  };
  for (const [name, [role, password]] of Object.entries(roles)) {
    const url = new URL(serviceEnv(name, services[name] as Service).DATABASE_URL ?? '');
    assert.is.not(url.username, superuser, `compose.yaml ${name} connects as ${superuser}`);
    assert.is(url.username, role, `compose.yaml ${name}`);
    assert.ok(password, `compose.yaml migrate sets no password for ${role}`);
    assert.is(
      decodeURIComponent(url.password),
      password,
      `compose.yaml ${name}: not the password migrate gives ${role}`,
    );
  }
  const relay = relayEnv.parse(serviceEnv('relay', services.relay as Service)) as { RELAY_PUBLICATION: string };
  assert.is(relay.RELAY_PUBLICATION, migrate.RELAY_PUBLICATION, 'the relay streams the publication migrate makes');
});

compose("Prometheus scrapes each runnable's service at the port its env configures", () => {
  const services = readYaml('compose.yaml').services as Record<string, Service>;
  const config = readYaml('infra/prometheus/prometheus.yml') as {
    scrape_configs: Array<{
      job_name: string;
      static_configs?: Array<{ targets: string[] }>;
      dns_sd_configs?: Array<{ names: string[]; port: number }>;
    }>;
  };
  assert.ok(services.prometheus, 'compose.yaml has no prometheus service');
  for (const job of config.scrape_configs) {
    const service = services[job.job_name];
    const target = runnables[job.job_name];
    assert.ok(service && target?.http, `job ${job.job_name} is not a compose service that listens`);
    const { port } = target.http(target.schema.parse(serviceEnv(job.job_name, service)) as Record<string, unknown>);
    const scraped = [
      ...(job.static_configs ?? []).flatMap((c) => c.targets),
      ...(job.dns_sd_configs ?? []).flatMap((c) => c.names.map((name) => `${name}:${c.port}`)),
    ];
    assert.equal(scraped, [`${job.job_name}:${port}`]);
  }
});

const dockerCompose = which('docker-compose');
if (!dockerCompose) {
  console.log(
    '  compose.test.ts: docker-compose config skipped: no docker-compose (Debian: apt-get install docker-compose)',
  );
} else {
  compose('docker-compose config -q accepts every compose file', async () => {
    for (const file of composeFiles) {
      await exec(dockerCompose, ['-f', file, 'config', '-q'], { cwd: repoPath() }).catch((error) => {
        throw new Error(`docker-compose -f ${file} config -q: ${error.stderr}`);
      });
    }
  });
}

compose.run();
