/**
 * What every command shares: how a failure becomes one line and an exit code, and how a
 * commander option parser reports a bad value. Commands stay thin: they parse, call a library
 * function, and print.
 */
import { writeSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { RunError, UsageError, messageOf } from '../common/errors.js';
import { interruptedBy } from '../common/exit.js';

/** Exit codes of the command contract. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/**
 * Wrap a parser from common/parse for commander: our UsageError becomes commander's
 * InvalidArgumentError, so commander prints it as one line and we exit 2.
 */
export function option<T>(parse: (text: string) => T): (text: string) => T {
  return (text: string) => {
    try {
      return parse(text);
    } catch (err) {
      if (err instanceof UsageError) throw new InvalidArgumentError(err.message);
      throw err;
    }
  };
}

/** Collects a repeatable option (`--sysctl a=1 --sysctl b=2`). */
export function repeatable<T>(parse: (text: string) => T): (text: string, previous: T[] | undefined) => T[] {
  const one = option(parse);
  return (text, previous) => [...(previous ?? []), one(text)];
}

/** Print a one-line error and set the exit code; never a stack trace unless TWLAB_DEBUG is set. */
export function reportError(err: unknown): number {
  const code = err instanceof UsageError ? EXIT_USAGE : EXIT_FAILED;
  const prefix = err instanceof UsageError || err instanceof RunError ? 'twlab: ' : 'twlab: internal error: ';
  process.stderr.write(`${prefix}${messageOf(err).split('\n')[0]}\n`);
  if (process.env['TWLAB_DEBUG'] && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  return code;
}

/**
 * Run a command's body. Its resolved value is the exit code (default 0); errors are reported by
 * reportError. process.exitCode is set rather than calling exit(), so stdout drains. After a
 * signal the exit code is 128+n whatever the body says (common/exit.ts), and a failure caused by
 * the interruption is not reported again: "twlab: interrupted" said it.
 */
export function action<A extends unknown[]>(
  body: (...args: A) => Promise<number | void> | number | void,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      const code = await body(...args);
      process.exitCode = code ?? EXIT_OK;
    } catch (err) {
      if (interruptedBy() && !process.env['TWLAB_DEBUG']) return;
      process.exitCode = reportError(err);
    }
  };
}

/** Print one JSON document on stdout (the `--json` contract: nothing else goes there). */
export function printJson(value: unknown): void {
  writeOut(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Write text to stdout now, through fd 1: creating process.stdout for a pipe costs 3-5 ms of
 * start-up (a net.Socket), which `census --json`, timed against ss, pays on every run. Where
 * fd 1 is non-blocking and full, the rest goes through process.stdout; a reader that went away
 * (EPIPE) gets nothing more, as with any Unix tool.
 */
export function writeOut(text: string): void {
  const bytes = Buffer.from(text);
  let done = 0;
  try {
    while (done < bytes.length) done += writeSync(1, bytes, done);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EAGAIN') process.stdout.write(bytes.subarray(done));
    else if (code !== 'EPIPE') throw err;
  }
}
