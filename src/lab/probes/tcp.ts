/**
 * Socket probes that run INSIDE a sandbox host (through `tcp(host).fn(opts)`, probes/remote.ts):
 * the small steps the S1/S2 experiments are made of (bind with or without SO_REUSEADDR, listen,
 * connect, accept, send, read, shutdown, close with a linger). Every socket is nonblocking and
 * every wait is a bounded poll loop, so the agent's main thread never blocks in the kernel; fds
 * stay open in the agent between calls and are named by their number. Each function takes one
 * options object and reports errno names instead of
 * throwing, because a failing call is usually the measurement.
 */
import { Worker } from 'node:worker_threads';
import { setTimeout as sleep } from 'node:timers/promises';
import { sys, lastErrno } from '../../sockets/syscalls.js';
import {
  AF_INET,
  SOCK_STREAM,
  SOCK_NONBLOCK,
  SOCK_CLOEXEC,
  POLLIN,
  POLLOUT,
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  SOL_SOCKET,
  SO_RCVBUF,
  SO_SNDBUF,
} from '../../sockets/constants.js';
import { encodeSockaddr, decodeSockaddr, SOCKADDR_MAX_LEN, type SockAddr } from '../../sockets/sockaddr.js';
import { EAGAIN, EINPROGRESS, errnoName } from '../../sockets/errno.js';
import {
  applySocketOptions,
  socketError,
  setLinger,
  type Linger,
  type SocketOptions,
} from '../../sockets/options.js';
import { distPath } from '../../common/paths.js';
import { dumpTcp } from '../../observe/sockdiag.js';
import { kernelStateName } from '../../observe/sockdiag-states.js';

/** The outcome of one call: ok, or the errno name the kernel gave. */
export interface CallOutcome {
  ok: boolean;
  errno?: string;
}

function fail(): CallOutcome {
  return { ok: false, errno: errnoName(lastErrno()) };
}

function pollOnce(fd: number, events: number): number {
  const pfd = Buffer.alloc(8);
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(events, 4);
  const n = sys.poll(pfd, 1, 0);
  return n > 0 ? pfd.readInt16LE(6) : 0;
}

/** Wait (bounded) until `events` are ready on fd; returns the revents, or 0 on timeout. */
async function waitFor(fd: number, events: number, timeoutMs: number): Promise<number> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = pollOnce(fd, events);
    if (r !== 0 || Date.now() >= until) return r;
    await sleep(2);
  }
}

function name(fd: number, peer = false): SockAddr | null {
  const buf = Buffer.alloc(SOCKADDR_MAX_LEN);
  const len = [SOCKADDR_MAX_LEN];
  const r = peer ? sys.getpeername(fd, buf, len) : sys.getsockname(fd, buf, len);
  return r < 0 ? null : decodeSockaddr(buf);
}

function setIntOpt(fd: number, opt: number, value: number): void {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value, 0);
  sys.setsockopt(fd, SOL_SOCKET, opt, b, 4);
}

export interface SocketProbeOptions extends SocketOptions {
  /** SO_RCVBUF / SO_SNDBUF in bytes (the kernel doubles them). */
  rcvbuf?: number;
  sndbuf?: number;
}

/** A nonblocking IPv4 TCP socket with the options set (and bound when `bind` is given). */
export async function open(
  opts: SocketProbeOptions,
): Promise<{ fd: number } & CallOutcome & { bound?: SockAddr }> {
  const fd = sys.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return { fd: -1, ...fail() };
  if (opts.rcvbuf) setIntOpt(fd, SO_RCVBUF, opts.rcvbuf);
  if (opts.sndbuf) setIntOpt(fd, SO_SNDBUF, opts.sndbuf);
  applySocketOptions(fd, opts);
  if (opts.bind) {
    const r = await bind({ fd, ...opts.bind });
    return { fd, ...r };
  }
  return { fd, ok: true };
}

/** bind(); on success also the address the kernel gave. */
export async function bind(o: {
  fd: number;
  address: string;
  port: number;
}): Promise<CallOutcome & { bound?: SockAddr }> {
  const sa = encodeSockaddr(o.address, o.port);
  if (sys.bind(o.fd, sa, sa.length) < 0) return fail();
  return { ok: true, bound: name(o.fd) ?? undefined };
}

/** listen(); also where the socket is bound afterwards (the kernel autobinds an unbound socket). */
export async function listen(o: {
  fd: number;
  backlog: number;
}): Promise<CallOutcome & { local: SockAddr | null }> {
  if (sys.listen(o.fd, o.backlog) < 0) return { ...fail(), local: name(o.fd) };
  return { ok: true, local: name(o.fd) };
}

/** getsockname(): where the socket is bound (port 0: not bound). */
export async function sockname(o: { fd: number }): Promise<SockAddr | null> {
  return name(o.fd);
}

/** A listener in one call: socket, options, bind, listen. */
export async function listener(
  o: SocketProbeOptions & { address: string; port: number; backlog?: number },
): Promise<{ fd: number; local: SockAddr | null } & CallOutcome & { step?: string }> {
  const s = await open({ ...o, bind: { address: o.address, port: o.port } });
  if (!s.ok) {
    if (s.fd >= 0) sys.close(s.fd);
    return { fd: -1, local: null, ok: false, errno: s.errno, step: 'bind' };
  }
  const l = await listen({ fd: s.fd, backlog: o.backlog ?? 16 });
  if (!l.ok) sys.close(s.fd);
  return { fd: l.ok ? s.fd : -1, ...l, step: l.ok ? undefined : 'listen' };
}

/** Nonblocking connect, waited for up to timeoutMs; errno from SO_ERROR when it fails later. */
export async function connect(o: {
  fd: number;
  address: string;
  port: number;
  timeoutMs?: number;
}): Promise<CallOutcome & { local: SockAddr | null }> {
  const sa = encodeSockaddr(o.address, o.port);
  if (sys.connect(o.fd, sa, sa.length) < 0) {
    const e = lastErrno();
    if (e !== EINPROGRESS) return { ok: false, errno: errnoName(e), local: name(o.fd) };
    const r = await waitFor(o.fd, POLLOUT, o.timeoutMs ?? 3000);
    if (r === 0) return { ok: false, errno: 'ETIMEDOUT', local: name(o.fd) };
    const err = socketError(o.fd);
    if (err !== 0) return { ok: false, errno: errnoName(err), local: name(o.fd) };
  }
  return { ok: true, local: name(o.fd) };
}

/** A connected client socket in one call. */
export async function dial(
  o: SocketProbeOptions & { address: string; port: number; timeoutMs?: number },
): Promise<{ fd: number; local: SockAddr | null } & CallOutcome & { step?: string }> {
  const s = await open(o);
  if (!s.ok) {
    if (s.fd >= 0) sys.close(s.fd);
    return { fd: -1, local: null, ok: false, errno: s.errno, step: o.bind ? 'bind' : 'socket' };
  }
  const c = await connect({ fd: s.fd, address: o.address, port: o.port, timeoutMs: o.timeoutMs });
  if (!c.ok) sys.close(s.fd);
  return { fd: c.ok ? s.fd : -1, ...c, step: c.ok ? undefined : 'connect' };
}

/** accept4 (nonblocking) waited for up to timeoutMs. */
export async function accept(o: {
  fd: number;
  timeoutMs?: number;
}): Promise<{ fd: number; peer: SockAddr | null } & CallOutcome> {
  await waitFor(o.fd, POLLIN, o.timeoutMs ?? 3000);
  const c = sys.accept4(o.fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (c < 0) return { fd: -1, peer: null, ...fail() };
  return { fd: c, peer: name(c, true), ok: true };
}

/**
 * Send up to `bytes` bytes without blocking; with `fill`, keep sending until the send buffer stays
 * full for settleMs (the peer's window and our buffer are both full).
 */
export async function send(o: {
  fd: number;
  bytes: number;
  fill?: boolean;
  settleMs?: number;
}): Promise<CallOutcome & { sent: number }> {
  const chunk = Buffer.alloc(Math.min(o.bytes, 65_536), 0x61);
  let sent = 0;
  let lastProgress = Date.now();
  while (sent < o.bytes) {
    const n = sys.send(o.fd, chunk, Math.min(chunk.length, o.bytes - sent), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      sent += n;
      lastProgress = Date.now();
      continue;
    }
    const e = lastErrno();
    if (n < 0 && e !== EAGAIN) return { ok: false, errno: errnoName(e), sent };
    if (!o.fill || Date.now() - lastProgress >= (o.settleMs ?? 300)) break;
    await sleep(10);
  }
  return { ok: true, sent };
}

/**
 * Read what arrives for up to timeoutMs (or until EOF/error): bytes read, whether EOF came, and
 * the errno of a failed read (ECONNRESET for a reset).
 */
export async function read(o: {
  fd: number;
  timeoutMs: number;
  max?: number;
}): Promise<CallOutcome & { bytes: number; eof: boolean }> {
  const buf = Buffer.alloc(65_536);
  const until = Date.now() + o.timeoutMs;
  let bytes = 0;
  for (;;) {
    const n = sys.recv(o.fd, buf, buf.length, MSG_DONTWAIT);
    if (n > 0) {
      bytes += n;
      if (o.max !== undefined && bytes >= o.max) return { ok: true, bytes, eof: false };
      continue;
    }
    if (n === 0) return { ok: true, bytes, eof: true };
    const e = lastErrno();
    if (e !== EAGAIN) return { ok: false, errno: errnoName(e), bytes, eof: false };
    if (Date.now() >= until) return { ok: true, bytes, eof: false };
    await waitFor(o.fd, POLLIN, Math.min(50, until - Date.now()));
  }
}

/** SO_LINGER on an open socket ('off', 0 for an abortive close, or N seconds). */
export async function linger(o: { fd: number; linger: Linger }): Promise<CallOutcome> {
  setLinger(o.fd, o.linger);
  return { ok: true };
}

export async function shutdown(o: { fd: number; how: number }): Promise<CallOutcome> {
  return sys.shutdown(o.fd, o.how) < 0 ? fail() : { ok: true };
}

/** close(), with how long it took (it can block only with SO_LINGER {1,N}: use closeOffThread). */
export async function close(o: { fd: number }): Promise<CallOutcome & { ms: number }> {
  const t0 = performance.now();
  const r = sys.close(o.fd);
  const ms = performance.now() - t0;
  return r < 0 ? { ...fail(), ms } : { ok: true, ms };
}

/**
 * close() on a worker thread, for a socket whose close may block (SO_LINGER {1,N}): the return
 * value, the errno the worker saw, and how long close() blocked.
 */
export async function closeOffThread(o: {
  fd: number;
}): Promise<{ ret: number; errno: string | null; ms: number }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(distPath('lab/probes/close-worker.js'), { workerData: { fd: o.fd } });
    w.once('message', (m: { ret: number; errno: number; ms: number }) =>
      resolve({ ret: m.ret, errno: m.ret < 0 ? errnoName(m.errno) : null, ms: m.ms }),
    );
    w.once('error', reject);
  });
}

/** One row of this host's IPv4 TCP table. */
export interface TableRow {
  state: string;
  local: SockAddr;
  peer: SockAddr;
  /** Time left on the socket's timer (TIME_WAIT: until it goes), in ms; null if no timer runs. */
  timerLeftMs: number | null;
  /** Bytes in the receive queue (unread), and in the send queue (unacknowledged). */
  rqueue: number;
  wqueue: number;
}

/** This host's TCP table from the census (netlink sock_diag), filtered by port (local or peer). */
export async function table(o: { port?: number }): Promise<TableRow[]> {
  const rows: TableRow[] = [];
  for (const r of dumpTcp({ family: 4 })) {
    if (o.port !== undefined && r.local.port !== o.port && r.remote.port !== o.port) continue;
    rows.push({
      state: kernelStateName(r.stateNumber),
      local: { ...r.local, family: 4 },
      peer: { ...r.remote, family: 4 },
      timerLeftMs: r.timer === 0 ? null : r.expiresMs,
      rqueue: r.rqueue,
      wqueue: r.wqueue,
    });
  }
  return rows;
}
