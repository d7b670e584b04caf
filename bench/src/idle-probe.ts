/**
 * `pnpm --filter @walnut/bench idle-probe [--rounds N] [--idle S] VARIANT…`: where an idle
 * sidecar's memory goes, one relay build or setting against another.
 *
 * A variant is a relay bundle's path (a dist/main.js with the rest of its dist/), then
 * comma-separated node flags (`--flag`), environment (`KEY=value`) and environment to
 * leave out (`-KEY`). Each is started as the image starts the relay (RELAY_NODE_ARGS,
 * RELAY_PROCESS_ENV), next to a database where nothing happens, with a slot of its own;
 * S seconds after its "streaming" line, /proc/<pid>/smaps is read. The variants take
 * turns, in reverse order every other round, on one stack, so the machine's drift falls
 * on all of them. `pnpm bench` measures the sidecar once; this is for telling two apart.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  freePort,
  RELAY_NODE_ARGS,
  RELAY_PROCESS_ENV,
  startNodeScript,
  startStack,
  walnutFixture,
} from '@walnut/stack';
import { cpuSeconds } from './proc-stats.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { rounds: { type: 'string', default: '4' }, idle: { type: 'string', default: '15' } },
});
const rounds = Number(values.rounds);
const idleSeconds = Number(values.idle);
if (positionals.length === 0 || !Number.isInteger(rounds) || rounds < 1 || !(idleSeconds > 0)) {
  console.error('usage: idle-probe [--rounds N] [--idle seconds] bundle[,--flag][,KEY=value][,-KEY]…');
  process.exit(2);
}

interface Variant {
  label: string;
  bundle: string;
  nodeArgs: string[];
  env: Record<string, string>;
  unset: string[];
}

function variant(spec: string): Variant {
  const [bundle = '', ...parts] = spec.split(',');
  const variant: Variant = { label: spec, bundle: path.resolve(bundle), nodeArgs: [], env: {}, unset: [] };
  for (const part of parts) {
    if (part.startsWith('--')) variant.nodeArgs.push(part);
    else if (part.startsWith('-')) variant.unset.push(part.slice(1));
    else {
      const at = part.indexOf('=');
      variant.env[part.slice(0, at)] = part.slice(at + 1);
    }
  }
  return variant;
}

/** KiB figures of one process: all resident, anonymous, malloc's [heap], node's own binary. */
interface Resident {
  rss: number;
  anonymous: number;
  mallocHeap: number;
  nodeBinary: number;
}

/** One idle start: its memory, and the CPU it used while idle. */
interface IdleStart {
  resident: Resident;
  idleCpuSeconds: number;
}

async function resident(pid: number): Promise<Resident> {
  const figures: Resident = { rss: 0, anonymous: 0, mallocHeap: 0, nodeBinary: 0 };
  let mapping = '';
  for (const line of (await readFile(`/proc/${pid}/smaps`, 'utf8')).split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      mapping = head[1] ?? '';
      continue;
    }
    const field = /^(Rss|Anonymous):\s+(\d+) kB/.exec(line);
    if (!field) continue;
    const kib = Number(field[2]);
    if (field[1] === 'Anonymous') figures.anonymous += kib;
    else {
      figures.rss += kib;
      if (mapping === '[heap]') figures.mallocHeap += kib;
      if (mapping === process.execPath || mapping.endsWith('/node')) figures.nodeBinary += kib;
    }
  }
  return figures;
}

const mib = (kib: number): string => (kib / 1024).toFixed(1);
const variants = positionals.map(variant);
const dir = await mkdtemp(path.join(os.tmpdir(), 'walnut-idle-'));
const stack = await startStack({ dir, env: {}, log: () => {} });
const walnut = await walnutFixture('idle', { databaseUrl: stack.databaseUrl, brokers: stack.kafkaBrokers });
const measured = new Map<Variant, IdleStart[]>(variants.map((v) => [v, []]));
let starts = 0;
try {
  for (let round = 0; round < rounds; round++) {
    for (const v of round % 2 === 0 ? variants : [...variants].reverse()) {
      const slot = `idle_probe_${starts++}`;
      const env: Record<string, string> = {
        ...RELAY_PROCESS_ENV,
        ...walnut.env,
        RELAY_SLOT: slot,
        RELAY_HTTP_PORT: String(await freePort()),
        ...v.env,
      };
      for (const name of v.unset) delete env[name];
      const relay = startNodeScript(v.label, v.bundle, ['run'], env, [...RELAY_NODE_ARGS, ...v.nodeArgs]);
      try {
        await relay.waitForLine(/"state":"streaming"/);
        const cpuAtStreaming = cpuSeconds(relay.pid) ?? 0;
        await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000));
        const figures = await resident(relay.pid as number);
        const idleCpuSeconds = (cpuSeconds(relay.pid) ?? 0) - cpuAtStreaming;
        measured.get(v)?.push({ resident: figures, idleCpuSeconds });
        console.log(
          `${v.label}: RSS ${mib(figures.rss)} MiB (anonymous ${mib(figures.anonymous)}, malloc [heap] ${mib(figures.mallocHeap)}, node binary ${mib(figures.nodeBinary)}); idle CPU ${((idleCpuSeconds / idleSeconds) * 100).toFixed(2)}% of a core`,
        );
      } finally {
        await relay.stop('SIGTERM');
        await walnut.pool.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => {});
      }
    }
  }
} finally {
  for (const [v, list] of measured) {
    const rss = list.map((start) => mib(start.resident.rss));
    const cpu = list.map((start) => ((start.idleCpuSeconds / idleSeconds) * 100).toFixed(2));
    console.log(`${v.label}: RSS MiB ${rss.join(' ')}; idle CPU % of a core ${cpu.join(' ')}`);
  }
  await walnut.close();
  await stack.stop();
}
