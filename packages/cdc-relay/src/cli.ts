import pino from 'pino';
import { relayConfig, relayEnv } from './config.ts';
import { RelayError } from './errors.ts';
import { Relay } from './relay.ts';

const parsed = relayEnv.safeParse(process.env);
if (!parsed.success) {
  for (const issue of parsed.error.issues) {
    console.error(`walnut-relay: ${issue.path.join('.')}: ${issue.message}`);
  }
  process.exit(2);
}

const log = pino({ name: 'walnut-relay', level: parsed.data.LOG_LEVEL });
const relay = new Relay(relayConfig(parsed.data), log);

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    log.info({ signal }, 'stopping');
    void relay.stop();
  });
}

try {
  await relay.run();
  process.exit(0);
} catch (error) {
  const failure = error instanceof RelayError ? error : undefined;
  log.fatal({ code: failure?.code ?? 'UNEXPECTED', err: error }, failure?.message ?? String(error));
  process.exit(1);
}
