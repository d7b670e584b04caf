export * from './event-version.ts';
export * from './kv-event.ts';
export * from './lsn.ts';
export * from './migrate.ts';
export * from './pg-pool.ts';
export * from './tables.ts';
export * from './trace-context.ts';
