/**
 * The command table: one line per command, each implemented in its own file.
 * Every command applies `.exitOverride()` through the program it is added to.
 */
import type { Command } from 'commander';
import { registerCensus } from './census.js';
import { registerDoctor } from './doctor.js';
import { registerTrace } from './trace.js';
import { registerSandbox } from './sandbox.js';

export function registerCommands(program: Command): void {
  registerCensus(program);
  registerDoctor(program);
  registerTrace(program);
  registerSandbox(program);
  // Commands register here, e.g. registerSandbox(program);
}
