import { createRequire } from 'node:module';
import kafkajs from 'kafkajs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

type Chained = Error & { cause?: Chained; retriable?: boolean };
type ErrorClass = new (e: Error | string, o?: { cause: Error }) => Chained;
// CommonJS: the error classes are spread into module.exports, which ESM named imports miss.
const { KafkaJSGroupCoordinatorNotFound, KafkaJSNonRetriableError } = kafkajs as unknown as Record<string, ErrorClass>;

test('no broker answering for the group coordinator is retriable, so kafkajs restarts the consumer (pnpm patch)', () => {
  // The chain a chaos run's applier died of: Kafka stopped while the group rejoined.
  const notFound = new (KafkaJSGroupCoordinatorNotFound as ErrorClass)('Failed to find group coordinator');
  const crash = new (KafkaJSNonRetriableError as ErrorClass)(notFound, { cause: notFound });
  // kafkajs's consumer restarts after a crash whose deepest cause is retriable (consumer/index.js onCrash).
  let deepest: Chained = crash;
  while (deepest.cause) deepest = deepest.cause;
  assert.is(deepest.name, 'KafkaJSGroupCoordinatorNotFound');
  assert.is(deepest.retriable, true);
});

interface RequestQueue {
  push(request: unknown): void;
  fulfillRequest(response: { correlationId: number; payload: Buffer | null; size: number }): void;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  pending: unknown[];
  destroy(): void;
}
const RequestQueueClass = createRequire(import.meta.url)('kafkajs/src/network/requestQueue/index.js') as new (
  options: Record<string, unknown>,
) => RequestQueue;

test('an idle broker connection arms no timer once its requests are answered (pnpm patch, kafkajs#1556)', async () => {
  const quiet = () => {};
  const queue = new RequestQueueClass({
    maxInFlightRequests: 1,
    requestTimeout: 30_000,
    enforceRequestTimeout: false,
    clientId: 'patch-test',
    broker: 'localhost:9092',
    logger: { debug: quiet, info: quiet, warn: quiet, error: quiet },
  });
  const answered: number[] = [];
  const request = (correlationId: number) => ({
    entry: {
      correlationId,
      apiKey: 3,
      apiName: 'Metadata',
      apiVersion: 6,
      resolve: () => answered.push(correlationId),
      reject: quiet,
    },
    expectResponse: true,
    sendRequest: quiet,
  });
  queue.push(request(1));
  // Over maxInFlightRequests: the second waits, and a check is scheduled for it.
  queue.push(request(2));
  assert.is(queue.pending.length, 1);
  queue.fulfillRequest({ correlationId: 1, payload: Buffer.alloc(0), size: 0 });
  queue.fulfillRequest({ correlationId: 2, payload: Buffer.alloc(0), size: 0 });
  assert.equal(answered, [1, 2]);
  // The check scheduled while the second waited (10 ms) runs once more and finds nothing pending.
  // Upstream re-armed a 1 ms timer then (the throttle delay, negative), and again at every check, forever.
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.is(queue.throttleCheckTimeoutId, null, 'a check timer is still armed with nothing pending');
  queue.destroy();
});

test.run();
