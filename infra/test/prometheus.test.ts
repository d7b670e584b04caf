/**
 * Prometheus for real. Debian's `prometheus` scrapes a running Walnut (api, relay and
 * applier on the test stack's Postgres and Kafka) with infra/prometheus/prometheus.yml,
 * only the targets' addresses and the intervals rewritten, and evaluates
 * infra/prometheus/alerts.yml itself. Every alert's query, and so every dashboard panel's,
 * returns series; every rule evaluates cleanly and none fires on a healthy system; the
 * WAL-limit rule returns series with and without max_slot_wal_keep_size. promtool checks
 * the real files and runs the rules' unit tests (alerts.test.yml).
 *
 * Needs `prometheus` and `promtool` (Debian: apt-get install prometheus, which
 * `./walnut install` does as root); skipped with a printed reason without prometheus.
 * The dashboard-equals-alerts check needs neither and always runs.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, type WalnutFixture, waitFor, walnutFixture } from '@walnut/stack';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { stringify } from 'yaml';
import { alertRules, dashboardPanels } from './alert-queries.ts';
import { readYaml, repoPath, which } from './repo.ts';

const exec = promisify(execFile);

const files = suite('alerts and dashboard');

files('the dashboard plots exactly the alert queries, each with its alert threshold', () => {
  const rules = alertRules();
  const panels = dashboardPanels();
  const alertQueries = new Set(rules.map((rule) => rule.query));
  const panelQueries = new Set(panels.flatMap((panel) => panel.queries));
  assert.equal([...panelQueries].sort(), [...alertQueries].sort());
  assert.is(rules.length, alertQueries.size, 'two rules with one query');
  for (const rule of rules) {
    const panel = panels.find((p) => p.queries.includes(rule.query));
    assert.is(panel?.threshold, rule.threshold, `${rule.alert}: threshold line of panel "${panel?.title}"`);
  }
});

files.run();

interface Ctx {
  walnut: WalnutFixture;
  api: string;
  dir: string;
  prometheus: ChildProcess;
  prometheusOutput: string[];
  url: string;
}

const prom = suite<Ctx>('prometheus');

/** One instant query through Prometheus's HTTP API. */
async function query(base: string, promql: string): Promise<Array<{ metric: Record<string, string>; value: number }>> {
  const res = await fetch(`${base}/api/v1/query?${new URLSearchParams({ query: promql })}`);
  const body = (await res.json()) as {
    status: string;
    error?: string;
    data?: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
  };
  if (body.status !== 'success') throw new Error(`${promql}: ${body.error}`);
  return (body.data?.result ?? []).map((r) => ({ metric: r.metric, value: sampleValue(r.value[1]) }));
}

/** Prometheus writes infinities as `+Inf` / `-Inf`, which Number() does not read. */
function sampleValue(text: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  return Number(text);
}

async function writeKeys(api: string, count: number): Promise<void> {
  let last = '';
  for (let i = 0; i < count; i++) {
    const res = await fetch(`${api}/kv`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: `prometheus-${i}`, value: { i } }),
    });
    assert.is(res.status, 202);
    last = ((await res.json()) as { request_id: string }).request_id;
  }
  await waitFor(
    'the last write applied',
    async () => ((await (await fetch(`${api}/status/${last}`)).json()) as { status: string }).status === 'applied',
    { timeoutMs: 60_000 },
  );
}

if (!which('prometheus')) {
  console.log('  prometheus.test.ts skipped: no prometheus binary (Debian: apt-get install prometheus)');
} else {
  prom.before(async (ctx) => {
    const ports = { relay: await freePort(), applier: await freePort() };
    ctx.walnut = await walnutFixture('prometheus', {
      env: { RELAY_HTTP_PORT: String(ports.relay), APPLIER_HTTP_PORT: String(ports.applier) },
    });
    ctx.api = (await ctx.walnut.startApi()).url;
    await ctx.walnut.startRelay();
    await ctx.walnut.startApplier();
    const targets: Record<string, string> = {
      api: new URL(ctx.api).host,
      relay: `127.0.0.1:${ports.relay}`,
      applier: `127.0.0.1:${ports.applier}`,
    };

    // The compose config with local targets; scraping every 2 s instead of 15 s only
    // makes the test faster. The rule files are the real ones, by absolute path.
    const config = readYaml('infra/prometheus/prometheus.yml');
    config.global = { ...config.global, scrape_interval: '2s', scrape_timeout: '2s', evaluation_interval: '2s' };
    config.rule_files = (config.rule_files as string[]).map((file) => repoPath('infra/prometheus', file));
    for (const job of config.scrape_configs as Array<{
      job_name: string;
      static_configs: unknown;
      dns_sd_configs?: unknown;
    }>) {
      const target = targets[job.job_name];
      if (!target) throw new Error(`prometheus.yml scrapes job ${job.job_name}, which this test does not start`);
      // Compose's service names (DNS discovery for the relay's replicas) become local addresses.
      delete job.dns_sd_configs;
      job.static_configs = [{ targets: [target] }];
    }
    ctx.dir = mkdtempSync(path.join(tmpdir(), 'walnut-prometheus-'));
    writeFileSync(path.join(ctx.dir, 'prometheus.yml'), stringify(config));
    const port = await freePort();
    ctx.url = `http://127.0.0.1:${port}`;
    ctx.prometheusOutput = [];
    ctx.prometheus = spawn(
      'prometheus',
      [
        `--config.file=${path.join(ctx.dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(ctx.dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    ctx.prometheus.stderr?.on('data', (chunk: Buffer) => ctx.prometheusOutput.push(chunk.toString('utf8')));
    await waitFor('prometheus ready', async () => (await fetch(`${ctx.url}/-/ready`).catch(() => null))?.ok, {
      timeoutMs: 30_000,
    }).catch((error: Error) => {
      throw new Error(`${error.message}\n${ctx.prometheusOutput.join('')}`);
    });
    await waitFor(
      'every target scraped and up',
      async () => {
        const up = await query(ctx.url, 'up');
        return up.length === Object.keys(targets).length && up.every((s) => s.value === 1);
      },
      { timeoutMs: 30_000 },
    );
  });

  prom.after(async (ctx) => {
    if (ctx.prometheus && ctx.prometheus.exitCode === null) {
      ctx.prometheus.kill('SIGTERM');
      await once(ctx.prometheus, 'exit');
    }
    if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
    await ctx.walnut?.close();
  });

  prom('promtool accepts prometheus.yml and alerts.yml, and the rules pass their unit tests', async () => {
    const dir = repoPath('infra/prometheus');
    await exec('promtool', ['check', 'config', 'prometheus.yml'], { cwd: dir });
    await exec('promtool', ['check', 'rules', 'alerts.yml'], { cwd: dir });
    await exec('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: dir }).catch((error) => {
      throw new Error(`promtool test rules alerts.test.yml failed:\n${error.stdout}${error.stderr}`);
    });
  });

  prom('every alert query and every dashboard query returns series from the running system', async (ctx) => {
    await writeKeys(ctx.api, 20);
    const queries = new Set([...alertRules().map((r) => r.query), ...dashboardPanels().flatMap((p) => p.queries)]);
    for (const promql of queries) {
      // Rates and increases need two scrapes since the writes; 30 s is many.
      const series = await waitFor(
        promql,
        async () => {
          const result = await query(ctx.url, promql);
          return result.length > 0 ? result : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 500 },
      );
      console.log(`  ${promql}: ${series.map((s) => s.value).join(', ')}`);
    }
  });

  prom('Prometheus loaded every rule; each evaluates cleanly and none fires on a healthy system', async (ctx) => {
    const started = Date.now();
    interface Rule {
      name: string;
      health: string;
      lastError?: string;
      state: string;
      lastEvaluation: string;
    }
    const rules = await waitFor('two evaluations of every rule', async () => {
      const res = (await (await fetch(`${ctx.url}/api/v1/rules?type=alert`)).json()) as {
        data: { groups: Array<{ rules: Rule[] }> };
      };
      const all = res.data.groups.flatMap((g) => g.rules);
      return all.length > 0 && all.every((r) => Date.parse(r.lastEvaluation) > started) ? all : undefined;
    });
    assert.equal(
      rules.map((r) => r.name).sort(),
      alertRules()
        .map((r) => r.alert)
        .sort(),
    );
    for (const rule of rules) {
      assert.is(rule.health, 'ok', `${rule.name}: ${rule.lastError}`);
      assert.is(rule.state, 'inactive', `${rule.name} is ${rule.state} on a healthy system`);
    }
  });

  prom('the WAL-limit query returns series with and without max_slot_wal_keep_size', async (ctx) => {
    const pool = ctx.walnut.pool;
    const ratio = alertRules().find((r) => r.alert === 'WalnutSlotWalNearLimit')?.query ?? '';
    const limit = 'walnut_relay_max_slot_wal_keep_size_bytes';
    const keep = (await pool.query(`SELECT pg_size_bytes(current_setting('max_slot_wal_keep_size'))::float8 AS b`))
      .rows[0].b as number;
    try {
      if (keep < 0) {
        // -1, Postgres's default: no limit, exported as +Inf, so the ratio is 0.
        assert.is((await query(ctx.url, limit))[0]?.value, Number.POSITIVE_INFINITY);
        assert.is((await query(ctx.url, ratio))[0]?.value, 0);
      }
      // max_slot_wal_keep_size is reloadable; 1 GB invalidates nothing a test writes.
      await pool.query(`ALTER SYSTEM SET max_slot_wal_keep_size = '1GB'`);
      await pool.query('SELECT pg_reload_conf()');
      await waitFor('the 1 GB limit scraped', async () => (await query(ctx.url, limit))[0]?.value === 1024 ** 3, {
        timeoutMs: 30_000,
        intervalMs: 500,
      });
      const [retained] = await query(ctx.url, ratio);
      assert.ok(retained && retained.value >= 0 && retained.value < 0.8, `ratio ${retained?.value}`);
    } finally {
      await pool.query('ALTER SYSTEM RESET max_slot_wal_keep_size');
      await pool.query('SELECT pg_reload_conf()');
    }
  });

  prom.run();
}
