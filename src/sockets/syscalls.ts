/**
 * The raw socket system calls Node does not offer, declared once through koffi. Each returns
 * what libc returns (-1 on failure, then read `lastErrno()`); `check()` turns that into a
 * SyscallError. Hot loops (the churn engine) call these directly; everything else uses the
 * checked wrappers in socket.ts.
 */
import { libc, lastErrno, koffi } from './libc.js';
import { SyscallError } from './errno.js';

/** The raw calls, typed as koffi hands them over (buffers in, -1 and errno on failure). */
export interface Syscalls {
  socket(d: number, t: number, p: number): number;
  close(fd: number): number;
  bind(fd: number, a: Buffer, l: number): number;
  connect(fd: number, a: Buffer, l: number): number;
  listen(fd: number, backlog: number): number;
  accept4(fd: number, a: Buffer | null, l: number[] | null, flags: number): number;
  shutdown(fd: number, how: number): number;
  setsockopt(fd: number, level: number, name: number, val: Buffer, len: number): number;
  getsockopt(fd: number, level: number, name: number, val: Buffer, len: number[]): number;
  getsockname(fd: number, a: Buffer, l: number[]): number;
  getpeername(fd: number, a: Buffer, l: number[]): number;
  send(fd: number, b: Buffer, l: number, f: number): number;
  recv(fd: number, b: Buffer, l: number, f: number): number;
  sendto(fd: number, b: Buffer, l: number, f: number, a: Buffer | null, al: number): number;
  fcntl(fd: number, cmd: number, arg: number): number;
  poll(fds: Buffer, n: number, timeoutMs: number): number;
}

const PROTOTYPES: Record<keyof Syscalls, string> = {
  socket: 'int socket(int domain, int type, int protocol)',
  close: 'int close(int fd)',
  bind: 'int bind(int fd, const void *addr, uint32_t len)',
  connect: 'int connect(int fd, const void *addr, uint32_t len)',
  listen: 'int listen(int fd, int backlog)',
  accept4: 'int accept4(int fd, _Out_ void *addr, _Inout_ uint32_t *len, int flags)',
  shutdown: 'int shutdown(int fd, int how)',
  setsockopt: 'int setsockopt(int fd, int level, int name, const void *val, uint32_t len)',
  getsockopt: 'int getsockopt(int fd, int level, int name, _Out_ void *val, _Inout_ uint32_t *len)',
  getsockname: 'int getsockname(int fd, _Out_ void *addr, _Inout_ uint32_t *len)',
  getpeername: 'int getpeername(int fd, _Out_ void *addr, _Inout_ uint32_t *len)',
  send: 'intptr_t send(int fd, const void *buf, size_t len, int flags)',
  recv: 'intptr_t recv(int fd, _Out_ void *buf, size_t len, int flags)',
  sendto: 'intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t alen)',
  fcntl: 'int fcntl(int fd, int cmd, int arg)',
  poll: 'int poll(_Inout_ void *fds, unsigned long nfds, int timeout)',
};

/**
 * Each call is declared on first use: a declaration costs ~0.2 ms, and a command such as
 * `census` (timed against ss, start-up included) uses 5 of them. After the first use the
 * property is a plain value, so hot loops pay nothing more.
 */
export const sys = {} as Syscalls;
for (const name of Object.keys(PROTOTYPES) as (keyof Syscalls)[]) {
  Object.defineProperty(sys, name, {
    configurable: true,
    enumerable: true,
    get() {
      const fn = libc.func(PROTOTYPES[name]) as unknown;
      Object.defineProperty(sys, name, { value: fn, enumerable: true });
      return fn;
    },
  });
}

/** Throw a SyscallError when a raw call returned -1; otherwise pass its result through. */
export function check(result: number, syscall: string, detail?: string): number {
  if (result < 0) throw new SyscallError(syscall, lastErrno(), detail);
  return result;
}

export { lastErrno, koffi };
