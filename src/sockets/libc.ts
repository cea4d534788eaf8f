/**
 * The one handle on libc. Every libc call twlab makes goes through functions declared on this
 * handle (in src/sockets only), so that there is exactly one place that reaches below Node.
 * koffi reads errno right after each call; use `lastErrno()` immediately after a failed call.
 */
import { createRequire } from 'node:module';

// koffi through its CommonJS entry: on Node 20 it loads ~3 ms faster than the ESM entry (fewer
// module jobs around the same native addon), a start-up cost every command pays (bench/census).
const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');

export const libc = koffi.load('libc.so.6');

/** errno as the last foreign call on this thread left it. */
export function lastErrno(): number {
  return koffi.errno();
}

export { koffi };
