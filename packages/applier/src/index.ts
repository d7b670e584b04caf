export { Applier, type ApplierOptions } from './applier.ts';
export { applyBatch, type BatchResult } from './apply-batch.ts';
export { type ApplierEnv, applierEnv, applierSecrets } from './config.ts';
export { decodeKvMessage, newestPerKey } from './kv-message.ts';
export { ApplierMetrics } from './metrics.ts';
export { type RetentionOptions, RetentionSweeper } from './retention.ts';
