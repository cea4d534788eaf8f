#!/usr/bin/env node
/**
 * bench/census only: `twlab census` with nothing else registered. The real CLI (dist/cli/main.js)
 * imports every command's module graph at start-up (about 105 twlab modules); this entry shows
 * what `twlab census` would cost if commands were loaded on use. Same code path otherwise.
 */
/* global process */
import { Command } from 'commander';
import { registerCensus } from '../../dist/cli/census.js';

const program = new Command();
program.name('twlab').exitOverride();
registerCensus(program);
await program.parseAsync(process.argv);
