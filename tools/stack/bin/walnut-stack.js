#!/usr/bin/env node
// A JS shim so the bin runs TypeScript sources without a build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
