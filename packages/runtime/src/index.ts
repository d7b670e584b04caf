export { CodedError } from './errors.ts';
export { csv, type EnvResult, flag, int, logLevel, parseEnv } from './env.ts';
export { createLogger, kafkajsLogCreator } from './logger.ts';
export { listeningPort, type OpsProbes, opsApp, serveHttp } from './ops-server.ts';
