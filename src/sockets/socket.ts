/**
 * Sockets made with koffi, set up with SocketOptions, then handed to Node (`server.listen({fd})`,
 * `new net.Socket({fd})`, `dgram.bind({fd})`), which keeps the options the kernel already holds.
 * This is how a Node program gets a listener with SO_REUSEADDR off, SO_REUSEPORT on Node 20, or
 * a client socket bound with IP_BIND_ADDRESS_NO_PORT. Every call here is nonblocking on the main
 * thread; the one wait (a connect in progress) happens on koffi's worker threads.
 */
import net from 'node:net';
import dgram from 'node:dgram';
import {
  AF_INET,
  AF_INET6,
  POLLERR,
  POLLHUP,
  POLLOUT,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOCK_STREAM,
} from './constants.js';
import { EINPROGRESS, ETIMEDOUT, SyscallError, failureOf, type Failure } from './errno.js';
import { applySocketOptions, socketError, type SocketOptions } from './options.js';
import { SOCKADDR_MAX_LEN, decodeSockaddr, encodeSockaddr, familyOf, type SockAddr } from './sockaddr.js';
import { lastErrno, sys } from './syscalls.js';
import { UsageError } from '../common/errors.js';

export type Protocol = 'tcp' | 'udp';

/** An address and port to listen on or connect to. */
export interface Endpoint {
  address: string;
  port: number;
}

function checkPort(port: number, what: string, allowZero: boolean): void {
  if (!Number.isInteger(port) || port < (allowZero ? 0 : 1) || port > 65535) {
    throw new UsageError(
      `${what}: '${String(port)}' is not a port (accepted: ${allowZero ? 0 : 1} to 65535)`,
    );
  }
}

function closeQuietly(fd: number): void {
  sys.close(fd);
}

/**
 * A new nonblocking, close-on-exec socket of `address`'s family, with `opts` applied and bound to
 * `opts.bind` if given. The caller owns the fd (close it with closeFd). Throws SyscallError.
 */
export function openSocket(protocol: Protocol, family: 4 | 6, opts: SocketOptions = {}): number {
  const type = (protocol === 'tcp' ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC;
  const fd = sys.socket(family === 4 ? AF_INET : AF_INET6, type, 0);
  if (fd < 0) throw new SyscallError('socket', lastErrno());
  try {
    applySocketOptions(fd, opts);
    if (opts.bind) bindFd(fd, opts.bind);
  } catch (err) {
    closeQuietly(fd);
    throw err;
  }
  return fd;
}

/** bind(2) with a checked result; the error names the address ("bind 127.0.0.1:80 failed: EADDRINUSE"). */
export function bindFd(fd: number, at: Endpoint): void {
  checkPort(at.port, 'bind port', true);
  const sa = encodeSockaddr(at.address, at.port);
  if (sys.bind(fd, sa, sa.length) < 0) throw new SyscallError('bind', lastErrno(), formatEndpoint(at));
}

/** close(2) an fd that was never handed to Node. */
export function closeFd(fd: number): void {
  if (sys.close(fd) < 0) throw new SyscallError('close', lastErrno());
}

/** The local address of an fd (getsockname). */
export function localAddressOf(fd: number): SockAddr {
  const buf = Buffer.alloc(SOCKADDR_MAX_LEN);
  if (sys.getsockname(fd, buf, [SOCKADDR_MAX_LEN]) < 0) throw new SyscallError('getsockname', lastErrno());
  return decodeSockaddr(buf);
}

/** "127.0.0.1:80" or "[::1]:80". */
export function formatEndpoint(e: Endpoint): string {
  return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

export interface ListenTcpOptions extends Omit<SocketOptions, 'bind'> {
  address: string;
  /** 0: the kernel picks a port (read it from server.address()). */
  port: number;
  /** listen(2) backlog; default 511, as Node's. */
  backlog?: number;
  /**
   * A server to hand the socket to (e.g. an http.Server); default a new net.Server. Connection
   * listeners go on it as usual.
   */
  server?: net.Server;
}

/**
 * A listening TCP server whose socket carries exactly the options asked for. SO_REUSEADDR
 * defaults to on (as Node and the seed's server do); pass `reuseAddr: false` to get the kernel's
 * strict behaviour, where a port held by TIME_WAIT sockets cannot be bound. Bind and listen
 * errors (EADDRINUSE, EACCES...) throw a SyscallError synchronously; the server is listening
 * (server.address() works) when this returns, and emits 'listening' on the next tick.
 */
export function listenTcp(opts: ListenTcpOptions): net.Server {
  checkPort(opts.port, 'listen port', true);
  const backlog = opts.backlog ?? 511;
  const family = familyOf(opts.address);
  const fd = openSocket('tcp', family, {
    ...opts,
    reuseAddr: opts.reuseAddr ?? true,
    bind: { address: opts.address, port: opts.port },
  });
  if (sys.listen(fd, backlog) < 0) {
    const errno = lastErrno();
    closeQuietly(fd);
    throw new SyscallError('listen', errno, formatEndpoint(opts));
  }
  const server = opts.server ?? net.createServer();
  try {
    server.listen({ fd, backlog });
  } catch (err) {
    closeQuietly(fd);
    throw err;
  }
  return server;
}

export interface ConnectTcpOptions extends SocketOptions {
  to: Endpoint;
  /** Give up (ETIMEDOUT) after this long; default 10 000 ms. */
  timeoutMs?: number;
  /** Passed to net.Socket: keep the writable side open after the peer's FIN. Default false. */
  allowHalfOpen?: boolean;
}

interface AsyncPoll {
  async(fds: Buffer, n: number, timeoutMs: number, cb: (err: unknown, res: number) => void): void;
}
const pollAsync = sys.poll as unknown as AsyncPoll;

function pollfd(fd: number): Buffer {
  // struct pollfd { int fd; short events; short revents; }
  const buf = Buffer.alloc(8);
  buf.writeInt32LE(fd, 0);
  buf.writeInt16LE(POLLOUT, 4);
  return buf;
}

/** Wait for a connecting socket to become writable (or fail); true if it did, false on timeout. */
async function waitWritable(fd: number, timeoutMs: number): Promise<boolean> {
  const fds = pollfd(fd);
  const ready = (): boolean => (fds.readInt16LE(6) & (POLLOUT | POLLERR | POLLHUP)) !== 0;
  // On loopback the handshake has usually completed by the time connect() returns: a poll with
  // timeout 0 never blocks, and spares a trip to a worker thread.
  if (sys.poll(fds, 1, 0) > 0 && ready()) return true;
  const deadline = Date.now() + timeoutMs;
  // Otherwise poll on koffi's worker threads, in slices so a signal (EINTR) cannot stall us.
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) return false;
    fds.writeInt16LE(0, 6);
    const n = await new Promise<number>((resolve, reject) =>
      pollAsync.async(fds, 1, Math.min(left, 1000), (err, res) => (err ? reject(err) : resolve(res))),
    );
    if (n > 0 && ready()) return true;
  }
}

/**
 * Connect a TCP socket made with `opts` (bind-before-connect, IP_BIND_ADDRESS_NO_PORT, a local
 * port range, linger...) and hand it to Node as a net.Socket. Rejects with a SyscallError naming
 * the errno and the syscall: `bind` (EADDRINUSE), `connect` (EADDRNOTAVAIL when no local port is
 * free, ECONNREFUSED, ETIMEDOUT after timeoutMs).
 */
export async function connectTcp(opts: ConnectTcpOptions): Promise<net.Socket> {
  checkPort(opts.to.port, 'connect port', false);
  const family = familyOf(opts.to.address);
  const fd = openSocket('tcp', family, opts);
  const detail = `to ${formatEndpoint(opts.to)}`;
  try {
    const sa = encodeSockaddr(opts.to.address, opts.to.port);
    if (sys.connect(fd, sa, sa.length) < 0) {
      const errno = lastErrno();
      if (errno !== EINPROGRESS) throw new SyscallError('connect', errno, detail);
      if (!(await waitWritable(fd, opts.timeoutMs ?? 10_000)))
        throw new SyscallError('connect', ETIMEDOUT, detail);
      const soError = socketError(fd);
      if (soError !== 0) throw new SyscallError('connect', soError, detail);
    }
    return new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: opts.allowHalfOpen ?? false });
  } catch (err) {
    closeQuietly(fd);
    throw err;
  }
}

export interface BindUdpOptions extends Omit<SocketOptions, 'bind' | 'linger' | 'bindNoPort'> {
  address: string;
  /** 0: the kernel picks. */
  port: number;
}

/**
 * A bound UDP socket with exactly these options, as a dgram.Socket (Node 20's dgram has no
 * SO_REUSEPORT, and libuv sets SO_REUSEADDR on any fd it adopts; this puts the requested value
 * back, default off).
 */
export async function bindUdp(opts: BindUdpOptions): Promise<dgram.Socket> {
  checkPort(opts.port, 'bind port', true);
  const family = familyOf(opts.address);
  const fd = openSocket('udp', family, { ...opts, bind: { address: opts.address, port: opts.port } });
  const socket = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ fd }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    // libuv's uv_udp_open turns SO_REUSEADDR on by itself; put back what was asked (default off).
    applySocketOptions(fd, { reuseAddr: opts.reuseAddr ?? false });
  } catch (err) {
    socket.close();
    throw err;
  }
  return socket;
}

/** What tryBind saw. On failure: the errno name, its number, and which call failed. */
type BindStep = 'socket' | 'setsockopt' | 'bind' | 'listen';
export type BindResult =
  { ok: true; address: string; port: number } | ({ ok: false; syscall: BindStep } & Omit<Failure, 'syscall'>);

export interface TryBindOptions extends Omit<SocketOptions, 'bind'> {
  address: string;
  port: number;
  /** Default 'tcp'. */
  protocol?: Protocol;
  /** TCP: also listen(2) (some conflicts, e.g. SO_REUSEPORT ones, show up only there). Default false. */
  listen?: boolean;
}

/**
 * Try to bind (and optionally listen) a socket with these options, then close it. Never throws for
 * a kernel refusal: the lab uses this to ask "would a server starting now get EADDRINUSE?".
 * (Bad arguments still throw UsageError.)
 */
export function tryBind(opts: TryBindOptions): BindResult {
  checkPort(opts.port, 'bind port', true);
  const family = familyOf(opts.address);
  let fd = -1;
  try {
    fd = openSocket(opts.protocol ?? 'tcp', family, {
      ...opts,
      bind: { address: opts.address, port: opts.port },
    });
    if (opts.listen && (opts.protocol ?? 'tcp') === 'tcp' && sys.listen(fd, 1) < 0) {
      throw new SyscallError('listen', lastErrno());
    }
    const local = localAddressOf(fd);
    return { ok: true, address: local.address, port: local.port };
  } catch (err) {
    if (err instanceof SyscallError) {
      return { ok: false, ...failureOf(err), syscall: err.syscall as BindStep };
    }
    throw err;
  } finally {
    if (fd >= 0) closeQuietly(fd);
  }
}
