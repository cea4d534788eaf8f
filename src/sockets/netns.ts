/**
 * Reading another network namespace from inside it, on the calling thread only.
 *
 * setns(fd, CLONE_NEWNET) moves just the calling thread (namespaces are per task): libuv's pool
 * threads and Node's other threads stay where they were. Everything twlab does inside is
 * synchronous on that thread (open a netlink socket, which stays bound to the namespace it was
 * made in; read /proc/sys/net/* and /proc/net/*, which resolve through the reading task's
 * namespace), so no other JavaScript runs while the thread is away, and the thread is moved back
 * before the call returns or throws. A thread that cannot be moved back would report every later
 * figure for the wrong namespace, so that case ends the process rather than carrying on.
 *
 * Only CLONE_NEWNET is ever entered: never a mount namespace (files are read from twlab's own
 * view of /proc and /run), never to change anything.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { libc, lastErrno } from './libc.js';
import { SyscallError } from './errno.js';

/** include/uapi/linux/sched.h */
const CLONE_NEWNET = 0x40000000;

let setnsFn: ((fd: number, nstype: number) => number) | undefined;

function setns(fd: number, nstype: number): number {
  setnsFn ??= libc.func('int setns(int fd, int nstype)') as (fd: number, nstype: number) => number;
  return setnsFn(fd, nstype);
}

/** The network namespace of the calling thread, as a path that opens it. */
const OWN = '/proc/thread-self/ns/net';

/** The inode of the calling thread's network namespace (what `readlink` shows as net:[INODE]). */
export function currentNetnsInode(): number {
  return netnsInodeOf(OWN);
}

/** The namespace inode behind a path such as /proc/PID/ns/net or a /run/netns bind mount. */
export function netnsInodeOf(path: string): number {
  const fd = openSync(path, 'r');
  try {
    return fstatSync(fd).ino;
  } finally {
    closeSync(fd);
  }
}

/** Test hook: called between entering and leaving (a read that throws, for one). */
export type InsideHook = () => void;

/**
 * Run `read` with the calling thread inside the network namespace at `path`, and return to the
 * thread's own namespace whatever `read` does. `read` must be synchronous: an await inside would
 * let other code run in the wrong namespace, so a returned promise is refused.
 *
 * Throws a SyscallError from open (ENOENT: the namespace's process is gone) or from setns (EPERM:
 * no CAP_SYS_ADMIN over it; EINVAL: the path is not a network namespace), before anything ran.
 */
export function withNetns<T>(path: string, read: () => T): T {
  const home = openSync(OWN, 'r');
  let target: number;
  try {
    target = openSync(path, 'r');
  } catch (err) {
    closeSync(home);
    throw err;
  }
  try {
    if (setns(target, CLONE_NEWNET) !== 0) throw new SyscallError('setns', lastErrno(), path);
  } catch (err) {
    closeSync(home);
    closeSync(target);
    throw err;
  }
  closeSync(target);
  try {
    const out = read();
    if (out instanceof Promise) throw new TypeError('withNetns: read() must be synchronous');
    return out;
  } finally {
    goHome(home);
  }
}

function goHome(home: number): void {
  const rc = setns(home, CLONE_NEWNET);
  const errno = rc === 0 ? 0 : lastErrno();
  closeSync(home);
  if (rc !== 0) {
    // Unreachable in practice (the thread left from there a moment ago), and unrecoverable.
    process.stderr.write(
      `twlab: could not return to its own network namespace (setns: errno ${errno}); stopping\n`,
    );
    process.exit(1);
  }
}
