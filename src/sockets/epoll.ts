/**
 * epoll and the few socket calls a hot loop makes, declared for speed: every pointer argument is a
 * plain `void *` Buffer (no koffi array marshalling), so one call costs ~0.3-0.5 us. Used by the
 * churn engine's worker thread, which runs its own readiness loop instead of libuv's.
 */
import { libc, lastErrno } from './libc.js';
import { sys } from './syscalls.js';

export const EPOLL_CLOEXEC = 0o2000000;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLL_CTL_MOD = 3;

export const EPOLLIN = 0x001;
export const EPOLLOUT = 0x004;
export const EPOLLERR = 0x008;
export const EPOLLHUP = 0x010;
export const EPOLLRDHUP = 0x2000;

/**
 * struct epoll_event is packed on x86_64 (4-byte events + 8-byte data = 12 bytes) and naturally
 * aligned elsewhere (16 bytes, data at offset 8).
 */
export const EPOLL_EVENT_SIZE = process.arch === 'x64' ? 12 : 16;
export const EPOLL_EVENT_DATA_OFFSET = process.arch === 'x64' ? 4 : 8;

type Fd = number;

export const hot = {
  epollCreate1: libc.func('int epoll_create1(int flags)') as (flags: number) => Fd,
  epollCtl: libc.func('int epoll_ctl(int epfd, int op, int fd, void *event)') as (
    epfd: Fd,
    op: number,
    fd: Fd,
    event: Buffer | null,
  ) => number,
  epollWait: libc.func('int epoll_wait(int epfd, void *events, int maxevents, int timeout)') as (
    epfd: Fd,
    events: Buffer,
    maxEvents: number,
    timeoutMs: number,
  ) => number,
  /** Like epoll_wait with a nanosecond timeout (struct timespec *), Linux 5.11+. */
  epollPwait2: libc.func(
    'int epoll_pwait2(int epfd, void *events, int maxevents, const void *timeout, const void *sigmask)',
  ) as (epfd: Fd, events: Buffer, maxEvents: number, timeout: Buffer | null, sigmask: null) => number,
  getsockname: libc.func('int getsockname(int fd, void *addr, void *len)') as (
    fd: Fd,
    addr: Buffer,
    len: Buffer,
  ) => number,
  getsockopt: libc.func('int getsockopt(int fd, int level, int name, void *val, void *len)') as (
    fd: Fd,
    level: number,
    name: number,
    val: Buffer,
    len: Buffer,
  ) => number,
  recv: libc.func('intptr_t recv(int fd, void *buf, size_t len, int flags)') as (
    fd: Fd,
    buf: Buffer,
    len: number,
    flags: number,
  ) => number,
  // These already take only plain pointers and numbers in syscalls.ts: the same declarations.
  setsockopt: sys.setsockopt,
  send: sys.send,
  socket: sys.socket,
  connect: sys.connect,
  bind: sys.bind,
  shutdown: sys.shutdown,
  close: sys.close,
  clockGettime: libc.func('int clock_gettime(int clk, void *ts)') as (clk: number, ts: Buffer) => number,
};

/** The calling thread's CPU time (user + system). */
export const CLOCK_THREAD_CPUTIME_ID = 3;

/** CPU time this thread has used so far, in milliseconds (CLOCK_THREAD_CPUTIME_ID). */
export function threadCpuMs(): number {
  const ts = Buffer.alloc(16);
  if (hot.clockGettime(CLOCK_THREAD_CPUTIME_ID, ts) < 0) return NaN;
  return Number(ts.readBigInt64LE(0)) * 1000 + Number(ts.readBigInt64LE(8)) / 1e6;
}

/** Fill an epoll_event buffer: the interest mask and a 32-bit tag (the data field's low half). */
export function encodeEpollEvent(buf: Buffer, events: number, tag: number): Buffer {
  buf.writeUInt32LE(events >>> 0, 0);
  buf.writeUInt32LE(tag >>> 0, EPOLL_EVENT_DATA_OFFSET);
  buf.writeUInt32LE(0, EPOLL_EVENT_DATA_OFFSET + 4);
  return buf;
}

/** A struct timespec for epoll_pwait2, rewritten in place to avoid allocations. */
export function writeTimespec(buf: Buffer, ns: number): Buffer {
  const sec = Math.floor(ns / 1e9);
  buf.writeBigInt64LE(BigInt(sec), 0);
  buf.writeBigInt64LE(BigInt(Math.floor(ns - sec * 1e9)), 8);
  return buf;
}

export { lastErrno };
