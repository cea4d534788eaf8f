#!/usr/bin/env node
/**
 * The `twlab` command. Each command lives in its own file and registers itself here; this file
 * only assembles them and turns commander's own usage errors into exit code 2.
 */
import { Command, CommanderError } from 'commander';
import { exitOnSignals } from '../common/exit.js';
import { EXIT_USAGE, reportError } from './command.js';
import { registerCommands } from './commands.js';

const program = new Command();
program
  .name('twlab')
  .description('Make TCP connection teardown on Linux visible, testable and fixable.')
  .version(process.env['npm_package_version'] ?? '0.1.0')
  .showSuggestionAfterError(true)
  .exitOverride()
  .configureOutput({
    // One line with our prefix: commander quotes a bad value as typed (newlines too) and puts its
    // suggestion on a line of its own.
    outputError: (text, write) =>
      write(
        `twlab: ${text
          .replace(/^error: /, '')
          .trimEnd()
          .replace(/\n\(Did you mean/, ' (Did you mean')
          .replace(/\r/g, '\\r')
          .replace(/\n/g, '\\n')}\n`,
      ),
  });

// SIGINT/SIGTERM/SIGHUP end every command the same way: released, "interrupted", 128+n.
exitOnSignals();

try {
  await registerCommands(program, process.argv);
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and version "errors" exit 0; everything else commander rejects is bad usage.
    process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
  } else {
    process.exitCode = reportError(err);
  }
}
