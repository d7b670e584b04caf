import { collectDefaultMetrics, type Registry } from 'prom-client';

/**
 * prom-client's process and Node.js metrics under `prefix`. The event-loop-lag
 * histogram samples on a timer, at prom-client's default every 10 ms: a hundred
 * wake-ups a second that were most of an idle relay's CPU, and under load a
 * cost in every process on shared cores. Every 100 ms still shows a stalled loop.
 */
export function collectProcessMetrics(registry: Registry, prefix: string): void {
  collectDefaultMetrics({ register: registry, prefix, eventLoopMonitoringPrecision: 100 });
}
