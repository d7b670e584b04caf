export { csv, flag, int, logLevel } from './env.ts';
export { CodedError, type ErrorEnvelope, errorEnvelope } from './errors.ts';
export { GroupCommit, type GroupCommitOptions } from './group-commit.ts';
export { createLogger, kafkajsLogCreator } from './logger.ts';
export {
  htmlResponse,
  jsonResponse,
  listeningPort,
  type OpsProbes,
  type OpsResponse,
  type OpsRoute,
  serveOps,
} from './ops-server.ts';
export { collectProcessMetrics } from './process-metrics.ts';
export {
  BAD_SETTINGS_EXIT_CODE,
  exitRefused,
  type PgPoolOptions,
  type RunnableSpec,
  readSettings,
  type SettingsResult,
  type StartedRunnable,
  settingsOrExit,
  startRunnable,
} from './runnable-startup.ts';
