/**
 * The listener-side calls a hot accept loop makes (the raw `twlab serve` engine), declared with
 * plain `void *` arguments so koffi does no marshalling: accept4 without an address, and
 * SO_LINGER {1,0} from a preallocated buffer. listen() is the one in syscalls.ts. Everything else the loop needs is in epoll.ts.
 */
import { libc } from './libc.js';

export const hotListen = {
  /** accept4(fd, NULL, NULL, flags): the peer's address is not needed on the hot path. */
  accept4: libc.func('int accept4(int fd, void *addr, void *len, int flags)') as (
    fd: number,
    addr: null,
    len: null,
    flags: number,
  ) => number,
};

/** struct linger {1, 0}: the abortive close, ready to pass to setsockopt(SO_LINGER). */
export function abortiveLinger(): Buffer {
  const buf = Buffer.alloc(8);
  buf.writeInt32LE(1, 0);
  return buf;
}
