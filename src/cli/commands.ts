/**
 * The command table: one line per command, each implemented in its own file.
 * Every command applies `.exitOverride()` through the program it is added to.
 */
import type { Command } from 'commander';
import { registerCensus } from './census.js';
import { registerDoctor } from './doctor.js';
import { registerSandbox } from './sandbox.js';
import { registerServe } from './serve.js';
import { registerChurn } from './churn.js';
import { registerTrace } from './trace.js';
import { registerPredict } from './predict.js';
import { registerLab } from './lab.js';
import { registerExporter } from './exporter.js';

export function registerCommands(program: Command): void {
  registerCensus(program);
  registerDoctor(program);
  registerSandbox(program);
  registerServe(program);
  registerChurn(program);
  registerTrace(program);
  registerPredict(program);
  registerLab(program);
  registerExporter(program);
  // Commands register here, e.g. registerSandbox(program);
}
