export { type AppOptions, createApp } from './app.ts';
export { AppliedWaiters } from './applied-waiters.ts';
export { type ApiEnv, apiEnv, apiSecrets } from './config.ts';
export { ApiError, type ErrorBody } from './errors.ts';
export { ApiMetrics } from './metrics.ts';
