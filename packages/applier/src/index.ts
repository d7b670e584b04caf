export { Applier, type ApplierOptions } from './applier.ts';
export { applyBatch } from './apply-batch.ts';
export { decodeKvMessage, newestPerKey } from './kv-message.ts';
