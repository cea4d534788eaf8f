/**
 * The raw socket system calls Node does not offer, declared once through koffi. Each returns
 * what libc returns (-1 on failure, then read `lastErrno()`); `check()` turns that into a
 * SyscallError. Hot loops (the churn engine) call these directly; everything else uses the
 * checked wrappers in socket.ts.
 */
import { libc, lastErrno, koffi } from './libc.js';
import { SyscallError } from './errno.js';

export const sys = {
  socket: libc.func('int socket(int domain, int type, int protocol)') as (
    d: number,
    t: number,
    p: number,
  ) => number,
  close: libc.func('int close(int fd)') as (fd: number) => number,
  bind: libc.func('int bind(int fd, const void *addr, uint32_t len)') as (
    fd: number,
    a: Buffer,
    l: number,
  ) => number,
  connect: libc.func('int connect(int fd, const void *addr, uint32_t len)') as (
    fd: number,
    a: Buffer,
    l: number,
  ) => number,
  listen: libc.func('int listen(int fd, int backlog)') as (fd: number, backlog: number) => number,
  accept4: libc.func('int accept4(int fd, _Out_ void *addr, _Inout_ uint32_t *len, int flags)') as (
    fd: number,
    a: Buffer | null,
    l: number[] | null,
    flags: number,
  ) => number,
  shutdown: libc.func('int shutdown(int fd, int how)') as (fd: number, how: number) => number,
  setsockopt: libc.func('int setsockopt(int fd, int level, int name, const void *val, uint32_t len)') as (
    fd: number,
    level: number,
    name: number,
    val: Buffer,
    len: number,
  ) => number,
  getsockopt: libc.func(
    'int getsockopt(int fd, int level, int name, _Out_ void *val, _Inout_ uint32_t *len)',
  ) as (fd: number, level: number, name: number, val: Buffer, len: number[]) => number,
  getsockname: libc.func('int getsockname(int fd, _Out_ void *addr, _Inout_ uint32_t *len)') as (
    fd: number,
    a: Buffer,
    l: number[],
  ) => number,
  getpeername: libc.func('int getpeername(int fd, _Out_ void *addr, _Inout_ uint32_t *len)') as (
    fd: number,
    a: Buffer,
    l: number[],
  ) => number,
  send: libc.func('intptr_t send(int fd, const void *buf, size_t len, int flags)') as (
    fd: number,
    b: Buffer,
    l: number,
    f: number,
  ) => number,
  recv: libc.func('intptr_t recv(int fd, _Out_ void *buf, size_t len, int flags)') as (
    fd: number,
    b: Buffer,
    l: number,
    f: number,
  ) => number,
  sendto: libc.func(
    'intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t alen)',
  ) as (fd: number, b: Buffer, l: number, f: number, a: Buffer | null, al: number) => number,
  fcntl: libc.func('int fcntl(int fd, int cmd, int arg)') as (fd: number, cmd: number, arg: number) => number,
  poll: libc.func('int poll(_Inout_ void *fds, unsigned long nfds, int timeout)') as (
    fds: Buffer,
    n: number,
    timeoutMs: number,
  ) => number,
};

/** Throw a SyscallError when a raw call returned -1; otherwise pass its result through. */
export function check(result: number, syscall: string, detail?: string): number {
  if (result < 0) throw new SyscallError(syscall, lastErrno(), detail);
  return result;
}

export { lastErrno, koffi };
