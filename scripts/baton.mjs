#!/usr/bin/env node
// The `baton` command: runs the TypeScript CLI through tsx, so no build step is needed. The benchmarks
// live in scripts/ (src/ never imports scripts/): the bin adds their command to the CLI's own.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/tools/cli/main.ts');
const { bench } = await import('./bench/command.ts');
main(process.argv.slice(2), { extraCommands: { bench } });
