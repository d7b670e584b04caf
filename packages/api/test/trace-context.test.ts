/**
 * W3C trace context end to end: the caller's traceparent → the API's span → the
 * outbox row → the relay's Kafka header → the applier's log line, on the real stack.
 */
import { parseTraceparent } from '@walnut/schema';
import { readTopic, type WalnutFixture, type WalnutProcess, walnutFixture } from '@walnut/stack';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const trace = suite<{ walnut: WalnutFixture; api: string; applier: WalnutProcess }>('trace context');

trace.before(async (ctx) => {
  // Debug: the applier logs one span line per applied event only at debug.
  ctx.walnut = await walnutFixture('trace', { env: { LOG_LEVEL: 'debug' } });
  await ctx.walnut.startRelay();
  ctx.api = (await ctx.walnut.startApi()).url;
  ctx.applier = await ctx.walnut.startApplier();
});

trace.after(async ({ walnut }) => {
  await walnut.close();
});

async function put(api: string, key: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${api}/kv`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ key, value: 1 }),
  });
  const body = (await res.json()) as { request_id: string };
  assert.is(res.status, 202, JSON.stringify(body));
  const apiSpan = parseTraceparent(res.headers.get('traceresponse'));
  assert.ok(apiSpan, `traceresponse header: ${res.headers.get('traceresponse')}`);
  return { requestId: body.request_id, apiSpan };
}

interface SpanLine {
  msg: string;
  trace_id: string;
  span_id: string;
  parent_span_id?: string;
  request_id: string;
}

async function appliedSpan(applier: WalnutProcess, requestId: string): Promise<SpanLine> {
  const line = await applier.waitForLine(new RegExp(`"request_id":"${requestId}".*"msg":"event applied"`), 60_000);
  return JSON.parse(line) as SpanLine;
}

trace(
  'a caller’s trace id reaches the Kafka header and the applier’s log, each hop a child of the last',
  async (ctx) => {
    const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    const { requestId, apiSpan } = await put(ctx.api, 'traced', { traceparent: `00-${callerTrace}-${callerSpan}-01` });
    assert.is(apiSpan.traceId, callerTrace, 'the API joins the caller’s trace');
    assert.is.not(apiSpan.spanId, callerSpan, 'with a span of its own');

    const records = await readTopic(ctx.walnut.kafka, ctx.walnut.topic, (seen) =>
      seen.some((r) => r.value?.includes(requestId)),
    );
    const relayed = records.find((r) => r.value?.includes(requestId));
    assert.is(relayed?.headers.traceparent, `00-${callerTrace}-${apiSpan.spanId}-01`, 'the relay carries the API span');

    const span = await appliedSpan(ctx.applier, requestId);
    assert.is(span.trace_id, callerTrace);
    assert.is(span.parent_span_id, apiSpan.spanId, 'the applier’s span is a child of the API’s');
    assert.match(span.span_id, /^[0-9a-f]{16}$/);
    assert.is.not(span.span_id, apiSpan.spanId);
  },
);

trace('a request without traceparent (or a malformed one) starts a trace the applier logs', async (ctx) => {
  for (const headers of [{}, { traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01' }]) {
    const { requestId, apiSpan } = await put(ctx.api, 'untraced', headers);
    assert.is.not(apiSpan.traceId, '00000000000000000000000000000000');
    const span = await appliedSpan(ctx.applier, requestId);
    assert.is(span.trace_id, apiSpan.traceId);
    assert.is(span.parent_span_id, apiSpan.spanId);
  }
});

trace('an outbox row written without a traceparent is applied, with a root span', async (ctx) => {
  const requestId = crypto.randomUUID();
  await ctx.walnut.pool.query(
    `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
     VALUES ($1, 'kv', 'legacy', 'kv.set', $2)`,
    [requestId, JSON.stringify({ op: 'set', key: 'legacy', value: 2, request_id: requestId })],
  );
  const span = await appliedSpan(ctx.applier, requestId);
  assert.match(span.trace_id, /^[0-9a-f]{32}$/);
  assert.is(span.parent_span_id, undefined);
});

trace.run();
