/**
 * The one handle on libc. Every libc call twlab makes goes through functions declared on this
 * handle (in src/sockets only), so that there is exactly one place that reaches below Node.
 * koffi reads errno right after each call; use `lastErrno()` immediately after a failed call.
 */
import koffi from 'koffi';

export const libc = koffi.load('libc.so.6');

/** errno as the last foreign call on this thread left it. */
export function lastErrno(): number {
  return koffi.errno();
}

export { koffi };
