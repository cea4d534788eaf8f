/**
 * Typed socket options: the setsockopt/getsockopt calls Node does not offer. Node gives no way to
 * turn SO_REUSEADDR off on a listener (libuv turns it on for every TCP bind), no SO_LINGER other
 * than resetAndDestroy(), no IP_BIND_ADDRESS_NO_PORT, no IP_LOCAL_PORT_RANGE, and (before 22.12)
 * no SO_REUSEPORT. These helpers set them on any fd, and read them back from the kernel, so a test
 * or the lab can check what the kernel really holds rather than what was asked for.
 */
import type { Server, Socket } from 'node:net';
import dgram, { type Socket as DgramSocket } from 'node:dgram';
import { release } from 'node:os';
import {
  IPPROTO_IP,
  IP_BIND_ADDRESS_NO_PORT,
  IP_LOCAL_PORT_RANGE,
  SOL_SOCKET,
  SO_ERROR,
  SO_LINGER,
  SO_REUSEADDR,
  SO_REUSEPORT,
} from './constants.js';
import { ENOPROTOOPT, SyscallError } from './errno.js';
import { lastErrno, sys } from './syscalls.js';
import { RunError, UsageError } from '../common/errors.js';
import type { PortRange } from '../common/parse.js';

/**
 * SO_LINGER as the user thinks of it: 'off' ({0,0}, the kernel default: close() returns at once
 * and the kernel finishes the close in the background), 0 (abortive close: {1,0}, close() sends
 * RST and skips TIME_WAIT), or N seconds ({1,N}: close() waits up to N s for unsent data).
 */
export type Linger = 'off' | number;

/** The options twlab sets on a socket before bind/connect. Unset fields keep the kernel's value. */
export interface SocketOptions {
  /**
   * SO_REUSEADDR. On: bind() may take a local port that TIME_WAIT sockets still hold (not one a
   * listener holds). Off: such a bind fails with EADDRINUSE. Node/libuv turns it on for every TCP
   * listener by itself; listenTcp() defaults to on too, and honours `false`.
   */
  reuseAddr?: boolean;
  /** SO_REUSEPORT: several sockets of the same user may bind the same address and port. */
  reusePort?: boolean;
  /** SO_LINGER; see {@link Linger}. */
  linger?: Linger;
  /**
   * IP_BIND_ADDRESS_NO_PORT (Linux 4.2): bind(ip, 0) does not pick a port; connect() picks it
   * knowing the destination, so one local port can serve many destinations.
   */
  bindNoPort?: boolean;
  /** IP_LOCAL_PORT_RANGE (Linux 6.3): this socket's own ephemeral port range, inside the sysctl's. */
  localPortRange?: PortRange;
  /** bind() to this local address and port (port 0: the kernel picks) before listen/connect. */
  bind?: { address: string; port: number };
}

/** What the kernel holds for a socket, read with getsockopt. */
export interface SocketOptionsState {
  reuseAddr: boolean;
  reusePort: boolean;
  linger: Linger;
  bindNoPort: boolean;
  /** The socket's own range; null when unset (0) or when this kernel lacks IP_LOCAL_PORT_RANGE. */
  localPortRange: PortRange | null;
}

const INT_LEN = 4;
const LINGER_LEN = 8; // struct linger { int l_onoff; int l_linger; }

/** The largest linger time we accept: the kernel clamps l_linger to MAX_SCHEDULE_TIMEOUT/HZ anyway. */
export const MAX_LINGER_SECONDS = 86_400;

function setInt(fd: number, level: number, name: number, value: number, what: string): void {
  const buf = Buffer.alloc(INT_LEN);
  buf.writeUInt32LE(value >>> 0, 0);
  if (sys.setsockopt(fd, level, name, buf, INT_LEN) < 0) {
    throw new SyscallError('setsockopt', lastErrno(), what);
  }
}

function getInt(fd: number, level: number, name: number, what: string): number {
  const buf = Buffer.alloc(INT_LEN);
  if (sys.getsockopt(fd, level, name, buf, [INT_LEN]) < 0) {
    throw new SyscallError('getsockopt', lastErrno(), what);
  }
  return buf.readInt32LE(0);
}

/** Check a Linger value; throws UsageError naming it. */
export function validateLinger(linger: Linger, what = 'linger'): void {
  if (linger === 'off') return;
  if (typeof linger !== 'number' || !Number.isInteger(linger) || linger < 0 || linger > MAX_LINGER_SECONDS) {
    throw new UsageError(
      `${what}: '${String(linger)}' is not accepted (accepted: off, 0 for an abortive close, or 1 to ${MAX_LINGER_SECONDS} seconds)`,
    );
  }
}

/** "off" | "0" | "SECONDS" as typed on a command line. */
export function parseLinger(text: string, what = '--linger'): Linger {
  const t = text.trim();
  if (t === 'off') return 'off';
  if (!/^\d+$/.test(t)) {
    throw new UsageError(
      `${what}: '${text}' is not accepted (accepted: off, 0 for an abortive close, or 1 to ${MAX_LINGER_SECONDS} seconds)`,
    );
  }
  const n = Number(t);
  validateLinger(n, what);
  return n;
}

/** Set SO_LINGER on an fd, a net.Socket or a net.Server. */
export function setLinger(target: number | Socket | Server, linger: Linger): void {
  validateLinger(linger);
  const fd = typeof target === 'number' ? target : fdOf(target);
  const buf = Buffer.alloc(LINGER_LEN);
  buf.writeInt32LE(linger === 'off' ? 0 : 1, 0);
  buf.writeInt32LE(linger === 'off' ? 0 : linger, 4);
  if (sys.setsockopt(fd, SOL_SOCKET, SO_LINGER, buf, LINGER_LEN) < 0) {
    throw new SyscallError('setsockopt', lastErrno(), 'SO_LINGER');
  }
}

/** SO_LINGER as the kernel holds it. */
export function getLinger(fd: number): Linger {
  const buf = Buffer.alloc(LINGER_LEN);
  if (sys.getsockopt(fd, SOL_SOCKET, SO_LINGER, buf, [LINGER_LEN]) < 0) {
    throw new SyscallError('getsockopt', lastErrno(), 'SO_LINGER');
  }
  return buf.readInt32LE(0) === 0 ? 'off' : buf.readInt32LE(4);
}

function validateRange(range: PortRange): void {
  const ok = (p: number): boolean => Number.isInteger(p) && p >= 1 && p <= 65535;
  if (!ok(range.low) || !ok(range.high) || range.low > range.high) {
    throw new UsageError(
      `localPortRange: '${range.low}-${range.high}' is not accepted (accepted: A-B, 1 <= A <= B <= 65535)`,
    );
  }
}

function setLocalPortRange(fd: number, range: PortRange): void {
  validateRange(range);
  try {
    // Low port in the low 16 bits, high port in the high 16 bits (include/net/ip.h).
    setInt(
      fd,
      IPPROTO_IP,
      IP_LOCAL_PORT_RANGE,
      ((range.high << 16) | range.low) >>> 0,
      'IP_LOCAL_PORT_RANGE',
    );
  } catch (err) {
    if (err instanceof SyscallError && err.errno === ENOPROTOOPT) {
      throw new RunError(
        `IP_LOCAL_PORT_RANGE needs Linux 6.3+ (this kernel is ${release()}; use the sandbox's port range instead)`,
      );
    }
    throw err;
  }
}

/**
 * Set every option given, in the order the kernel needs them (all before bind). Throws
 * SyscallError (setsockopt, with the option's name) or, for IP_LOCAL_PORT_RANGE on an older
 * kernel, a RunError saying so. Does not bind: `opts.bind` is for the callers that create sockets.
 */
export function applySocketOptions(fd: number, opts: SocketOptions): void {
  if (opts.reuseAddr !== undefined)
    setInt(fd, SOL_SOCKET, SO_REUSEADDR, opts.reuseAddr ? 1 : 0, 'SO_REUSEADDR');
  if (opts.reusePort !== undefined)
    setInt(fd, SOL_SOCKET, SO_REUSEPORT, opts.reusePort ? 1 : 0, 'SO_REUSEPORT');
  if (opts.bindNoPort !== undefined) {
    setInt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, opts.bindNoPort ? 1 : 0, 'IP_BIND_ADDRESS_NO_PORT');
  }
  if (opts.localPortRange !== undefined) setLocalPortRange(fd, opts.localPortRange);
  if (opts.linger !== undefined) setLinger(fd, opts.linger);
}

/** Read back, from the kernel, every option SocketOptions can set. */
export function readSocketOptions(fd: number): SocketOptionsState {
  let localPortRange: PortRange | null = null;
  try {
    const v = getInt(fd, IPPROTO_IP, IP_LOCAL_PORT_RANGE, 'IP_LOCAL_PORT_RANGE') >>> 0;
    if (v !== 0) localPortRange = { low: v & 0xffff, high: v >>> 16 };
  } catch (err) {
    if (!(err instanceof SyscallError && err.errno === ENOPROTOOPT)) throw err;
  }
  return {
    reuseAddr: getInt(fd, SOL_SOCKET, SO_REUSEADDR, 'SO_REUSEADDR') !== 0,
    reusePort: getInt(fd, SOL_SOCKET, SO_REUSEPORT, 'SO_REUSEPORT') !== 0,
    linger: getLinger(fd),
    bindNoPort: getInt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 'IP_BIND_ADDRESS_NO_PORT') !== 0,
    localPortRange,
  };
}

/** SO_ERROR: the pending error of a socket (0 if none), cleared by reading it. */
export function socketError(fd: number): number {
  return getInt(fd, SOL_SOCKET, SO_ERROR, 'SO_ERROR');
}

type Handle = { fd?: number } | null | undefined;

/**
 * The kernel fd under a net.Socket, net.Server or dgram.Socket (libuv keeps it on the handle).
 * Throws RunError when there is none yet (not connected/listening) or any more (closed).
 */
export function fdOf(target: Socket | Server | DgramSocket): number {
  let handle: Handle;
  if (target instanceof dgram.Socket) {
    // dgram keeps its handle in a symbol-keyed state object (its _handle getter is deprecated).
    const t = target as unknown as Record<symbol, { handle?: Handle } | undefined>;
    for (const sym of Object.getOwnPropertySymbols(t)) {
      const state = t[sym];
      if (state && typeof state === 'object' && 'handle' in state) handle = state.handle;
    }
  } else {
    handle = (target as unknown as { _handle?: Handle })._handle;
  }
  const fd = handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new RunError('fdOf: this socket has no file descriptor (not yet connected/listening, or closed)');
  }
  return fd;
}
