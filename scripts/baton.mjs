#!/usr/bin/env node
// The `baton` command: runs the TypeScript CLI through tsx, so no build step is needed.
import { register } from 'tsx/esm/api';

register();
await import('../src/tools/cli.ts');
