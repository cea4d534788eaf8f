/**
 * errno numbers and names. The mapping comes from Node's own os.constants.errno (built from the
 * platform's headers), not from a table typed here.
 */
import { constants } from 'node:os';

const byName: Readonly<Record<string, number>> = constants.errno;

// The errno numbers twlab tests for, by name: no errno is written as a number anywhere else.
export const {
  EAGAIN,
  ECONNRESET,
  EINPROGRESS,
  EINTR,
  EMFILE,
  ENFILE,
  ENOBUFS,
  ENOENT,
  ENOMEM,
  ENOPROTOOPT,
  ENOSYS,
  ETIMEDOUT,
} = constants.errno;
const byNumber = new Map<number, string>();
for (const [name, num] of Object.entries(byName)) {
  // Aliases (EWOULDBLOCK = EAGAIN, EDEADLOCK = EDEADLK): keep the first, most common name.
  if (!byNumber.has(num)) byNumber.set(num, name);
}

/** "EADDRNOTAVAIL" for 99; "E<n>" for a number this platform does not name. */
export function errnoName(code: number): string {
  return byNumber.get(Math.abs(code)) ?? `E${Math.abs(code)}`;
}

/** 99 for "EADDRNOTAVAIL"; undefined for a name this platform does not have. */
export function errnoCode(name: string): number | undefined {
  return byName[name];
}

/**
 * A failure as every JSON document of twlab reports it (churn, serve, the lab's probes): `errno` is
 * the name, `code` the number, `syscall` the call that failed. These field names are the
 * documented --json contract. Thrown errors follow Node's own convention instead (SyscallError
 * below, like Node's ErrnoException: `code` = name, `errno` = number), so `err.code === 'EADDRINUSE'`
 * reads the same for both; failureOf() is the one conversion from the one to the other.
 */
export interface Failure {
  errno: string;
  code: number;
  syscall: string;
}

/** The Failure of `syscall` returning errno `code` (a negative return value is taken as -errno). */
export function failure(syscall: string, code: number): Failure {
  return { errno: errnoName(code), code: Math.abs(code), syscall };
}

/**
 * A thrown error (SyscallError, or Node's ErrnoException from a socket) as a Failure. The number
 * comes from the name through this platform's table, never from Node's `errno` field (a libuv code,
 * negative). `syscall` names the call when the error does not.
 */
export function failureOf(err: unknown, syscall = 'unknown'): Failure {
  if (err instanceof SyscallError) return failure(err.syscall, err.errno);
  const e = err as Partial<NodeJS.ErrnoException> | null;
  const name = typeof e?.code === 'string' ? e.code : 'EUNKNOWN';
  return { errno: name, code: errnoCode(name) ?? 0, syscall: e?.syscall ?? syscall };
}

/** A failed system call, thrown; `code` is the errno name, as in Node's own errors. */
export class SyscallError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;

  constructor(syscall: string, errno: number, detail?: string) {
    const name = errnoName(errno);
    super(`${syscall}${detail ? ` ${detail}` : ''} failed: ${name} (${errno})`);
    this.name = 'SyscallError';
    this.code = name;
    this.errno = errno;
    this.syscall = syscall;
  }
}
