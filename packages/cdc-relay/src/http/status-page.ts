/**
 * The relay's status page: one self-contained HTML document (no scripts or
 * styles from elsewhere, so it works offline and under a strict CSP) that polls
 * /status.json every second and redraws its figures and a chart of events/s.
 */
export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>walnut relay</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; max-width: 60rem; }
  h1 { font-size: 1.3rem; margin: 0 0 1rem; }
  .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(13rem, 1fr)); gap: .75rem; }
  .cell { border: 1px solid #ddd; border-radius: 6px; padding: .6rem .8rem; }
  .label { color: #666; font-size: .8rem; }
  .value { font-size: 1.2rem; font-variant-numeric: tabular-nums; }
  .state-streaming { color: #1a7f37; } .state-backoff, .state-blocked, .state-stopped { color: #b42318; }
  #last-error { white-space: pre-wrap; }
  #last-error.error { color: #b42318; }
  svg { width: 100%; height: 140px; border: 1px solid #ddd; border-radius: 6px; margin-top: 1rem; }
  .stale { opacity: .5; }
</style>
</head>
<body>
<h1>walnut relay · slot <span id="slot">…</span></h1>
<div class="grid" id="figures">
  <div class="cell"><div class="label">state</div><div class="value" id="state">…</div></div>
  <div class="cell"><div class="label">confirmed LSN</div><div class="value" id="confirmed-lsn">…</div></div>
  <div class="cell"><div class="label">slot lag</div><div class="value" id="lag-bytes">…</div></div>
  <div class="cell"><div class="label">confirmation lag (flush_lag)</div><div class="value" id="lag-seconds">…</div></div>
  <div class="cell"><div class="label">WAL retained by the slot</div><div class="value" id="retained-wal">…</div></div>
  <div class="cell"><div class="label">failover slot (17+)</div><div class="value" id="failover">…</div></div>
  <div class="cell"><div class="label">events relayed (this process)</div><div class="value" id="events-total">…</div></div>
  <div class="cell"><div class="label">events/s (last 10 s)</div><div class="value" id="events-rate">…</div></div>
  <div class="cell"><div class="label">in flight</div><div class="value" id="inflight">…</div></div>
  <div class="cell"><div class="label"><span id="sink">sink</span> ack p50 / p99</div><div class="value" id="ack-latency">…</div></div>
</div>
<svg id="chart" viewBox="0 0 300 100" preserveAspectRatio="none" aria-label="events per second, last 5 minutes">
  <polyline id="chart-line" fill="none" stroke="#2563eb" stroke-width="1" points=""></polyline>
</svg>
<div class="label">events/s over the last 5 minutes (peak <span id="chart-peak">0</span>)</div>
<h2 class="label">last error</h2>
<div id="last-error">none</div>
<script>
const $ = (id) => document.getElementById(id);
const bytes = (n) => n == null ? 'n/a' : n < 1024 ? n + ' B' : n < 1048576 ? (n / 1024).toFixed(1) + ' KiB' : (n / 1048576).toFixed(1) + ' MiB';
const ms = (n) => n == null ? 'n/a' : n.toFixed(1) + ' ms';
async function refresh() {
  try {
    const s = await (await fetch('status.json', { cache: 'no-store' })).json();
    document.body.classList.remove('stale');
    $('slot').textContent = s.slot;
    $('sink').textContent = { redis: 'Redis', nats: 'NATS JetStream' }[s.sink] || 'Kafka';
    $('state').textContent = s.state;
    $('state').className = 'value state-' + s.state;
    const pg = s.postgres || {};
    $('confirmed-lsn').textContent = pg.confirmedLsn ?? 'n/a';
    $('lag-bytes').textContent = bytes(pg.lagBytes);
    $('lag-seconds').textContent = pg.lagSeconds == null ? 'n/a' : (pg.lagSeconds * 1000).toFixed(0) + ' ms';
    $('retained-wal').textContent = bytes(pg.retainedWalBytes) + (pg.maxSlotWalKeepSize && pg.maxSlotWalKeepSize !== '-1' ? ' of ' + pg.maxSlotWalKeepSize : '');
    $('failover').textContent = pg.failover == null ? 'n/a' : (pg.failover ? 'yes' : 'no') + (pg.synced ? ' (synced copy)' : '');
    $('events-total').textContent = s.eventsTotal.toLocaleString('en-US');
    const last = s.eventsPerSecond.slice(-11, -1);
    $('events-rate').textContent = (last.reduce((a, b) => a + b, 0) / last.length).toFixed(1);
    $('inflight').textContent = s.inflight.records + ' records, ' + bytes(s.inflight.bytes);
    $('ack-latency').textContent = ms(s.ackLatencyMs.p50) + ' / ' + ms(s.ackLatencyMs.p99);
    $('last-error').textContent = s.lastError ? s.lastError.at + ' ' + s.lastError.code + ': ' + s.lastError.message : 'none';
    $('last-error').className = s.lastError ? 'error' : '';
    const series = s.eventsPerSecond;
    const peak = Math.max(1, ...series);
    $('chart-peak').textContent = String(peak);
    $('chart-line').setAttribute('points', series.map((v, i) => i + ',' + (100 - (v / peak) * 95).toFixed(1)).join(' '));
  } catch {
    document.body.classList.add('stale');
  }
}
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
`;
