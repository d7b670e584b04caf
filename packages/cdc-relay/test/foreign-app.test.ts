/**
 * The relay next to an app it was not written for: its own schema, a
 * differently named outbox, plain SQL writes, configuration only. The relay
 * runs as a least-privilege role (REPLICATION + SELECT on the outbox); the app
 * owner creates the publication, as docs/relay.md documents.
 */
import { readTopic, walnutSuite } from '@walnut/stack';
import * as assert from 'uvu/assert';

const foreign = walnutSuite('foreign app', 'foreign');

foreign('relays a differently shaped outbox by configuration alone, as a least-privilege role', async ({ walnut }) => {
  const role = `relay_${walnut.slot}`.slice(0, 60);
  const publication = `shop_events_${walnut.slot}`.slice(0, 60);
  await walnut.pool.query(`
    CREATE SCHEMA shop;
    CREATE TABLE shop.events (
      event_id    uuid PRIMARY KEY,
      stream      text NOT NULL,
      entity_id   text NOT NULL,
      kind        text NOT NULL,
      tenant      text,
      body        jsonb NOT NULL,
      raw         text,
      occurred_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE shop.orders (id int PRIMARY KEY, total numeric);
    CREATE PUBLICATION ${publication} FOR TABLE shop.events WITH (publish = 'insert');
    CREATE ROLE ${role} LOGIN REPLICATION;
    GRANT USAGE ON SCHEMA shop TO ${role};
    GRANT SELECT ON shop.events TO ${role};
  `);
  const relayUrl = new URL(walnut.databaseUrl);
  relayUrl.username = role;
  const topicPrefix = `shop_${walnut.slot}`;
  const relay = await walnut.startRelay({
    DATABASE_URL: relayUrl.toString(),
    RELAY_PUBLICATION: publication,
    RELAY_OUTBOX_TABLE: 'shop.events',
    RELAY_COLUMN_ID: 'event_id',
    RELAY_COLUMN_KEY: 'entity_id',
    RELAY_COLUMN_PAYLOAD: 'body',
    RELAY_TOPIC_TEMPLATE: `${topicPrefix}.{stream}`,
    RELAY_HEADER_COLUMNS: 'kind,tenant',
  });

  // The app writes in its own transactions, with other tables in the same transaction.
  const events = [
    {
      id: '00000000-0000-4000-8000-000000000001',
      stream: 'orders',
      entity: 'o-1',
      kind: 'created',
      body: '{"total": 10.50, "items": [1, 2]}',
    },
    {
      id: '00000000-0000-4000-8000-000000000002',
      stream: 'orders',
      entity: 'o-1',
      kind: 'paid',
      body: '{"via": "card"}',
    },
    {
      id: '00000000-0000-4000-8000-000000000003',
      stream: 'customers',
      entity: 'c-9',
      kind: 'renamed',
      body: '{"name": "Zoë \\"Z\\" Ünal"}',
    },
  ];
  for (const e of events) {
    await walnut.pool.query(
      `BEGIN;
       INSERT INTO shop.orders VALUES (${events.indexOf(e)}, 1);
       INSERT INTO shop.events (event_id, stream, entity_id, kind, tenant, body) VALUES ('${e.id}', '${e.stream}', '${e.entity}', '${e.kind}', 'acme', '${e.body.replaceAll("'", "''")}');
       COMMIT;`,
    );
  }

  const orders = await readTopic(walnut.kafka, `${topicPrefix}.orders`, (r) => r.length >= 2);
  const customers = await readTopic(walnut.kafka, `${topicPrefix}.customers`, (r) => r.length >= 1);
  assert.equal(
    orders.map((r) => [r.key, r.headers.id, r.headers.kind, r.headers.tenant]),
    [
      ['o-1', events[0]?.id, 'created', 'acme'],
      ['o-1', events[1]?.id, 'paid', 'acme'],
    ],
  );
  // jsonb leaves as Postgres prints it: the text a consumer would get from the app's own SELECT.
  const printed = await walnut.pool.query<{ body: string }>(
    `SELECT body::text AS body FROM shop.events ORDER BY event_id`,
  );
  assert.equal(
    [...orders, ...customers].map((r) => r.value),
    printed.rows.map((r) => r.body),
  );
  assert.is(customers[0]?.key, 'c-9');
  assert.match(customers[0]?.value ?? '', /Zoë \\"Z\\" Ünal/);
  await relay.stop('SIGTERM');
});

foreign.run();
