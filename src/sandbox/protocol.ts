/**
 * The control channel between twlab and a host's agent: one JSON document per line on fd 3
 * (stdio stays free for programs and diagnostics). Requests carry an id so calls can overlap;
 * every reply names the id it answers.
 */

/** The fd the agent reads requests from and writes replies to. */
export const CHANNEL_FD = 3;

export interface SysctlWrite {
  key: string;
  value: string;
}

/** What the agent did with one sysctl write. */
export interface SysctlResult {
  key: string;
  requested: string;
  status: 'applied' | 'not-present' | 'rejected';
  value?: string;
  reason?: string;
}

export type Request =
  /** ip batch, then the nftables ruleset (with `nft -f -` at `path`), then the sysctls. */
  | {
      id: number;
      op: 'setup';
      hostNetns: string;
      sysctls: SysctlWrite[];
      ip: string[];
      nft?: { path: string; ruleset: string };
    }
  /** Run `ip -batch`; with waitUp, then wait until that interface is operationally UP. */
  | { id: number; op: 'ip'; lines: string[]; waitUp?: string }
  | { id: number; op: 'readSysctl'; key: string }
  /** `events`: pass the function an `emit` after its arguments (the caller listens). */
  | { id: number; op: 'call'; module: string; fn: string; args: unknown[]; events: boolean };

export type Reply =
  | { type: 'ready'; pid: number; netns: string }
  | { type: 'event'; id: number; event: unknown }
  | { type: 'result'; id: number; value: unknown }
  | { type: 'error'; id: number; error: SerialisedError };

/** An error as it crosses the channel: name, message and the fields callers branch on. */
export interface SerialisedError {
  name: string;
  message: string;
  code?: string | number;
  errno?: number;
  syscall?: string;
  stack?: string;
  [extra: string]: unknown;
}

/** Keep what a caller may test (name, code, errno, syscall, other plain fields) from any thrown value. */
export function serialiseError(err: unknown): SerialisedError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const out: SerialisedError = { name: err.name, message: err.message };
  if (err.stack) out.stack = err.stack;
  for (const [k, v] of Object.entries(err)) {
    if (k === 'stack' || k === 'message') continue;
    if (v === null || ['string', 'number', 'boolean'].includes(typeof v)) out[k] = v;
  }
  return out;
}

/**
 * Rebuild a thrown value on the caller's side: UsageError and RunError keep their class (so the
 * CLI still reports them as one line with the right exit code); every other error becomes an
 * Error with the same name, message, code, errno and syscall. The agent's stack is kept as
 * `remoteStack`.
 */
export function deserialiseError(
  e: SerialisedError,
  classes: Record<string, new (m: string) => Error>,
): Error {
  const Ctor = classes[e.name] ?? Error;
  const err = new Ctor(e.message);
  for (const [k, v] of Object.entries(e)) {
    if (k === 'message' || k === 'stack') continue;
    if (k === 'name') {
      if (err.name !== v) Object.defineProperty(err, 'name', { value: v, enumerable: false, writable: true });
      continue;
    }
    (err as unknown as Record<string, unknown>)[k] = v;
  }
  if (e.stack) Object.defineProperty(err, 'remoteStack', { value: e.stack, enumerable: false });
  return err;
}
