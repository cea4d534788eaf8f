/**
 * errno numbers and names. The mapping comes from Node's own os.constants.errno (built from the
 * platform's headers), not from a table typed here.
 */
import { constants } from 'node:os';

const byName: Readonly<Record<string, number>> = constants.errno;
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

/** A failed system call, with the errno name Node's own errors use (`code`). */
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
