/**
 * `pnpm bench:producers`: the relay's producer choice, measured side by side on
 * one private broker. Each variant runs in its own process, in alternating
 * order, several rounds: N records of 1 KB with a key and the relay's six
 * headers, acks=all, idempotent, one request in flight, the relay's batch size.
 * Prints records/s and CPU µs per record (user + system of the producing
 * process), and the median of each. Nothing passes or fails on a figure.
 *
 *   kafkajs        kafkajs 2.2.4 (with the repo's Encoder patch): sendBatch
 *   platformatic   @platformatic/kafka 1.35.0, idempotent: send
 *   transactional  @platformatic/kafka 1.35.0 as the relay uses it: Kafka
 *                  transactions of several requests, a checkpoint per request
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { compatibilityPartitioner, type MessageToProduce, Producer } from '@platformatic/kafka';
import { startKafka } from '@walnut/stack';
import { CompressionTypes, Kafka, logLevel, Partitioners } from 'kafkajs';

const VARIANTS = ['kafkajs', 'platformatic', 'transactional'] as const;
type Variant = (typeof VARIANTS)[number];

const { values } = parseArgs({
  options: {
    variant: { type: 'string' },
    brokers: { type: 'string' },
    records: { type: 'string', default: '200000' },
    batch: { type: 'string', default: '700' },
    rounds: { type: 'string', default: '3' },
  },
});
const records = Number(values.records);
const batch = Number(values.batch);

const headerNames = ['walnut-commit-lsn', 'walnut-xid', 'walnut-commit-time', 'walnut-seq', 'id', 'type'];
function headerValues(i: number): string[] {
  return ['0/16B3748', '7731', '2026-11-29T18:54:52.000Z', String(i % 100), crypto.randomUUID(), 'kv.set'];
}
const payload = Buffer.alloc(1024, 'x');

async function produce(variant: Variant, brokers: string[], topic: string): Promise<void> {
  if (variant === 'kafkajs') {
    const producer = new Kafka({ clientId: 'bench', brokers, logLevel: logLevel.NOTHING }).producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    for (let i = 0; i < records; i += batch) {
      const messages = [];
      for (let j = i; j < Math.min(records, i + batch); j++) {
        const values = headerValues(j);
        messages.push({
          key: `k${j % 500}`,
          value: payload,
          headers: Object.fromEntries(headerNames.map((n, h) => [n, values[h] as string])),
        });
      }
      await producer.sendBatch({
        topicMessages: [{ topic, messages }],
        acks: -1,
        compression: CompressionTypes.None,
      });
    }
    await producer.disconnect();
    return;
  }
  const transactional = variant === 'transactional';
  const producer = new Producer({
    clientId: 'bench',
    bootstrapBrokers: brokers,
    idempotent: true,
    partitioner: compatibilityPartitioner,
    ...(transactional ? { transactionalId: `bench-${topic}`, producerId: -1n, producerEpoch: -1 } : {}),
  });
  const names = headerNames.map((n) => Buffer.from(n));
  const checkpointTopic = `${topic}.checkpoints`;
  let transaction: Awaited<ReturnType<typeof producer.beginTransaction>> | undefined;
  let requests = 0;
  for (let i = 0; i < records; i += batch) {
    const messages: MessageToProduce[] = [];
    for (let j = i; j < Math.min(records, i + batch); j++) {
      const values = headerValues(j);
      messages.push({
        topic,
        key: Buffer.from(`k${j % 500}`),
        value: payload,
        headers: new Map(names.map((n, h) => [n, Buffer.from(values[h] as string)])),
      });
    }
    if (!transactional) {
      await producer.send({ messages });
      continue;
    }
    messages.push({ topic: checkpointTopic, key: Buffer.from('bench'), value: Buffer.from(`{"i":${i}}`) });
    transaction ??= await producer.beginTransaction();
    await transaction.send({ messages });
    // The relay commits when its buffer runs dry; a drain keeps it full, so commits come every few requests.
    if (++requests % 5 === 0) {
      await transaction.commit();
      transaction = undefined;
    }
  }
  await transaction?.commit();
  await producer.close();
}

async function child(variant: Variant, brokers: string[]): Promise<void> {
  const topic = `bench.producers.${variant}.${Date.now()}`;
  // The topic exists before timing starts; creating it is not the producer's cost.
  const admin = new Kafka({ clientId: 'bench-admin', brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  await admin.createTopics({
    topics: [{ topic, numPartitions: 3 }, { topic: `${topic}.checkpoints` }],
    waitForLeaders: true,
  });
  await admin.disconnect();
  const cpu = process.cpuUsage();
  const started = performance.now();
  await produce(variant, brokers, topic);
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  console.log(
    JSON.stringify({ variant, perSecond: records / seconds, cpuMicrosPerRecord: (used.user + used.system) / records }),
  );
}

interface Result {
  variant: Variant;
  perSecond: number;
  cpuMicrosPerRecord: number;
}

async function runChild(variant: Variant, brokers: string[]): Promise<Result> {
  const script = fileURLToPath(import.meta.url);
  const proc = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      script,
      '--variant',
      variant,
      '--brokers',
      brokers.join(','),
      '--records',
      String(records),
      '--batch',
      String(batch),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  const [code] = await once(proc, 'exit');
  if (code !== 0) throw new Error(`${variant} exited ${code}`);
  return JSON.parse(out.trim().split('\n').at(-1) as string) as Result;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

if (values.variant) {
  await child(values.variant as Variant, (values.brokers as string).split(','));
} else {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'walnut-bench-producers-'));
  const kafka = await startKafka({ dir });
  try {
    const results: Result[] = [];
    const rounds = Number(values.rounds);
    console.log(`producers: ${records} records of 1 KB, ${batch} per request, ${rounds} rounds, order alternating`);
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
      for (const variant of order) {
        const result = await runChild(variant, kafka.brokers);
        results.push(result);
        console.log(
          `  round ${round + 1} ${variant.padEnd(13)} ${Math.round(result.perSecond).toLocaleString('en-US').padStart(8)} records/s  ${result.cpuMicrosPerRecord.toFixed(1).padStart(5)} µs CPU/record`,
        );
      }
    }
    console.log('median:');
    for (const variant of VARIANTS) {
      const mine = results.filter((r) => r.variant === variant);
      console.log(
        `  ${variant.padEnd(13)} ${Math.round(median(mine.map((r) => r.perSecond)))
          .toLocaleString('en-US')
          .padStart(8)} records/s  ${median(mine.map((r) => r.cpuMicrosPerRecord))
          .toFixed(1)
          .padStart(5)} µs CPU/record`,
      );
    }
    console.log(
      `load average ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}, ${os.cpus().length} cores`,
    );
  } finally {
    await kafka.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
