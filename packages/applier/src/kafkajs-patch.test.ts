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

test.run();
