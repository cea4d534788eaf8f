/**
 * The command table: one entry per command, each implemented in its own file.
 *
 * Commands are loaded on demand: `twlab census` loads the census code and nothing else, so a
 * command's start-up cost (the census benchmark is timed against `ss`, start-up included) does not
 * grow with every layer twlab has. Only help, an unknown command or no command loads them all.
 * Commands are created with `program.command(...)`, so they inherit exitOverride and output.
 */
import type { Command } from 'commander';

type Register = (program: Command) => void;

const COMMANDS: Record<string, () => Promise<Register>> = {
  lab: async () => (await import('./lab.js')).registerLab,
  serve: async () => (await import('./serve.js')).registerServe,
  churn: async () => (await import('./churn.js')).registerChurn,
  sandbox: async () => (await import('./sandbox.js')).registerSandbox,
  census: async () => (await import('./census.js')).registerCensus,
  doctor: async () => (await import('./doctor.js')).registerDoctor,
  trace: async () => (await import('./trace.js')).registerTrace,
  top: async () => (await import('./top.js')).registerTop,
  predict: async () => (await import('./predict.js')).registerPredict,
  exporter: async () => (await import('./exporter.js')).registerExporter,
  ui: async () => (await import('./ui.js')).registerUi,
};

/** Register the command named in argv, or every command when argv names none of them. */
export async function registerCommands(program: Command, argv: readonly string[]): Promise<void> {
  const named = argv[2];
  const only = named !== undefined && Object.hasOwn(COMMANDS, named) ? [named] : Object.keys(COMMANDS);
  const registers = await Promise.all(only.map((name) => COMMANDS[name]!()));
  for (const register of registers) register(program);
}
