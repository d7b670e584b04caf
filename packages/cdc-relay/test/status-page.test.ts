/**
 * The relay's status page in a real browser (Debian's chromium driven by
 * playwright-core): it loads from the relay alone (nothing from elsewhere),
 * shows the slot streaming, and its numbers move as rows are written, without
 * a reload. Skipped, saying so, where chromium is not installed (`./walnut
 * install` installs it as root on Debian).
 */
import { existsSync } from 'node:fs';
import { httpUrl, pause, type WalnutFixture, waitFor, walnutFixture } from '@walnut/stack';
import { type Browser, chromium } from 'playwright-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const CHROMIUM = '/usr/bin/chromium';
const page = suite<{ walnut: WalnutFixture; browser: Browser | null }>('status page');

page.before(async (ctx) => {
  ctx.walnut = await walnutFixture('status_page');
  ctx.browser = existsSync(CHROMIUM)
    ? await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'] })
    : null;
});

page.after(async ({ walnut, browser }) => {
  await browser?.close();
  await walnut?.close();
});

page('shows the slot streaming, and its figures move as rows arrive', async ({ walnut, browser }) => {
  if (!browser) {
    console.log(`  status page: SKIPPED, no ${CHROMIUM} (apt-get install chromium)`);
    return;
  }
  const relay = await walnut.startRelay();
  const base = await httpUrl(relay);
  const tab = await browser.newPage();
  const outside: string[] = [];
  tab.on('request', (request) => {
    if (!request.url().startsWith(`${base}/`)) outside.push(request.url());
  });
  await tab.goto(`${base}/`);
  const text = async (id: string) => (await tab.locator(`#${id}`).textContent()) ?? '';
  // The page's own poll must change what it shows: read it until it does, never reload.
  const until = (what: string, id: string, ok: (shown: string) => boolean, timeoutMs = 30_000) =>
    waitFor(what, async () => ok(await text(id)), { timeoutMs, intervalMs: 200 });
  await until('the page to show streaming', 'state', (shown) => shown === 'streaming');
  assert.is(await text('slot'), walnut.slot);
  assert.match(await text('confirmed-lsn'), /^[0-9A-F]+\/[0-9A-F]+$/);
  const before = Number((await text('events-total')).replaceAll(',', ''));

  await walnut.pool.query(
    `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
     SELECT gen_random_uuid(), 'kv', 'k' || g, 'kv.set', '{}' FROM generate_series(1, 250) g`,
  );
  // The same page, not reloaded: its poll picks the new figures up.
  await until('the event count to move', 'events-total', (shown) => Number(shown.replaceAll(',', '')) >= before + 250);
  await until('the chart to show them', 'chart-peak', (shown) => Number(shown) >= 1, 10_000);
  const points = await tab.locator('#chart-line').getAttribute('points');
  assert.ok(points && points.split(' ').length >= 100, 'the chart has a point per second');
  assert.match(await text('ack-latency'), /ms \/ .* ms/);
  assert.match(await text('retained-wal'), /B/);
  assert.equal(outside, [], 'the page loads nothing from elsewhere');
  // STATUS_PAGE_SCREENSHOT=docs/status-page.png refreshes the README's picture of the page.
  const screenshot = process.env.STATUS_PAGE_SCREENSHOT;
  if (screenshot) {
    // A minute of steady writes, so the chart shows a rate rather than one spike.
    for (let second = 0; second < 60; second++) {
      await walnut.pool.query(
        `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
         SELECT gen_random_uuid(), 'kv', 'k' || g, 'kv.set', '{}' FROM generate_series(1, $1::int) g`,
        [200 + 100 * Math.round(Math.sin(second / 8) + 1)],
      );
      await pause(1000);
    }
    await tab.setViewportSize({ width: 1100, height: 640 });
    await tab.screenshot({ path: screenshot, fullPage: true });
  }
  await relay.stop('SIGTERM');
});

page.run();
