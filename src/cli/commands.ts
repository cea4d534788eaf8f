/**
 * The command table: one line per command, each implemented in its own file.
 * Every command applies `.exitOverride()` through the program it is added to.
 */
import type { Command } from 'commander';

export function registerCommands(_program: Command): void {
  // Commands register here, e.g. registerSandbox(program);
}
