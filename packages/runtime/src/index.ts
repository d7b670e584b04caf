export { csv, flag, int, logLevel } from './env.ts';
export { CodedError } from './errors.ts';
export { GroupCommit, type GroupCommitOptions } from './group-commit.ts';
export { createLogger, kafkajsLogCreator } from './logger.ts';
export { listeningPort, type OpsProbes, opsApp, serveHttp } from './ops-server.ts';
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
