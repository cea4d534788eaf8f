/**
 * The two kinds of failure every command distinguishes (see the command contract in
 * docs/ARCHITECTURE.md): a mistake in what the user asked for (exit 2) and a run that could not
 * do its job (exit 1). Both carry a message that is shown as one line, without a stack trace.
 */

/** The user's input is wrong: a bad flag value, an unknown id. The CLI exits with 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * The run failed for a reason the user can act on (no permission, no namespace support, a port
 * taken). The CLI exits with 1 and prints the message alone.
 */
export class RunError extends Error {
  override name = 'RunError';
}

/** The message of any thrown value, for one-line reports. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
