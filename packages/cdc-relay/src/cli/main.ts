import { deferOptimization } from '../deferred-optimization.ts';

// Before any other module of the relay is evaluated: the commands load from here, with
// V8's compilers off until there is work (deferred-optimization.ts).
deferOptimization();
await import('./program.ts');
