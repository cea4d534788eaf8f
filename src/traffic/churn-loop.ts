/**
 * The churn hot loop: raw nonblocking sockets and one epoll instance, no Node streams, no
 * allocation per iteration. It runs in a worker thread (churn-worker.ts) because it never yields
 * to an event loop; a shared Int32Array lets the parent ask it to stop.
 *
 * One TCP iteration is: socket, [options, bind], connect, send, getsockname, then the close mode.
 * On loopback connect() has usually finished the handshake by the time it returns EINPROGRESS, so
 * the payload is sent optimistically; only a socket that answers EAGAIN goes through epoll. An error
 * before the connection is known established is reported as the connect's (the kernel stores the
 * connect's outcome in sk_err and the next call returns it).
 */
import { constants as osConstants } from 'node:os';
import {
  AF_INET,
  AF_INET6,
  IPPROTO_IP,
  IP_BIND_ADDRESS_NO_PORT,
  IP_LOCAL_PORT_RANGE,
  MSG_NOSIGNAL,
  SHUT_RDWR,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
  SO_ERROR,
  SO_LINGER,
  SO_REUSEADDR,
} from '../sockets/constants.js';
import {
  EPOLLERR,
  EPOLLHUP,
  EPOLLIN,
  EPOLLOUT,
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLL_CTL_MOD,
  EPOLL_EVENT_DATA_OFFSET,
  EPOLL_EVENT_SIZE,
  encodeEpollEvent,
  hot,
  lastErrno,
  threadCpuMs,
  writeTimespec,
} from '../sockets/epoll.js';
import { LatencyHistogram, PortSet, STALL_MS } from './churn-stats.js';

const EINPROGRESS = osConstants.errno.EINPROGRESS;
const EAGAIN = osConstants.errno.EAGAIN;
const EINTR = osConstants.errno.EINTR;
const ETIMEDOUT = osConstants.errno.ETIMEDOUT;
const ENOSYS = osConstants.errno.ENOSYS;

/** What the loop needs, already validated and encoded (structured-cloneable for workerData). */
export interface LoopConfig {
  family: 4 | 6;
  /** sockaddrs of the targets, used in turn (iteration k goes to targets[(k - 1) % length]). */
  targets: Uint8Array[];
  mode: 'tcp' | 'udp' | 'reuse';
  close: 'client-first' | 'server-first' | 'rst';
  /** -1: unbounded (then durationMs bounds the run). */
  count: number;
  /** -1: unbounded (then count bounds the run). */
  durationMs: number;
  concurrency: number;
  /** Iterations per second; 0: unpaced. */
  rate: number;
  /** Bytes sent per iteration (for 'reuse': already framed with its 4-byte length). */
  payload: Uint8Array;
  /** sockaddrs to bind before connect, in turn like the targets; empty: no bind. */
  binds: Uint8Array[];
  bindNoPort: boolean;
  /** null: leave SO_REUSEADDR alone. */
  reuseAddr: boolean | null;
  /** IP_LOCAL_PORT_RANGE value (high << 16 | low), or null. */
  localPortRange: number | null;
  /** SO_LINGER: seconds ({1,N}), 'off' ({0,0}) or null (untouched). The rst close mode forces 0. */
  linger: number | 'off' | null;
  /** client-first: shutdown(SHUT_RDWR) before close(). */
  shutdown: boolean;
  stopOnError: boolean;
  timeoutMs: number;
  progressIntervalMs: number;
}

export interface LoopProgress {
  attempted: number;
  succeeded: number;
  failed: number;
  elapsedMs: number;
}

export interface LoopFailure {
  syscall: string;
  code: number;
  atIteration: number;
}

export interface LoopResult {
  attempted: number;
  succeeded: number;
  failed: number;
  firstError: LoopFailure | null;
  /** "syscall:code" -> count. */
  errors: Record<string, number>;
  elapsedMs: number;
  /** CPU time (user + system) the loop's thread used. */
  cpuMs: number;
  /** epoll waits: how often the loop had nothing to do but wait (readiness, pacing, progress). */
  waits: number;
  stoppedBy: 'count' | 'duration' | 'error' | 'signal';
  latencyCounts: Uint32Array;
  latencySumUs: number;
  latencyMaxUs: number;
  /** Successful iterations that took STALL_MS or longer, and the first of them. */
  stalls: number;
  firstStall: { atIteration: number; ms: number } | null;
  ports: Uint8Array;
}

export interface LoopHooks {
  /** Non-zero at index 0 asks the loop to stop starting iterations. */
  stop?: Int32Array;
  progress?: (p: LoopProgress) => void;
  /** Called once per failed iteration, in the order they are seen. */
  failure?: (f: LoopFailure) => void;
}

// Slot phases (TCP per-connection mode).
const IDLE = 0;
const CONNECTING = 1;
const SENDING = 2;
const AWAIT_EOF = 3;

/** A C int for setsockopt; values above 2^31 (IP_LOCAL_PORT_RANGE's packed pair) keep their bits. */
function int32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0, 0);
  return b;
}

function asBuffer(u8: Uint8Array): Buffer {
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

export function runLoop(cfg: LoopConfig, hooks: LoopHooks = {}): LoopResult {
  const domain = cfg.family === 6 ? AF_INET6 : AF_INET;
  const targets = cfg.targets.map(asBuffer);
  const binds = cfg.binds.map(asBuffer);
  const payload = asBuffer(cfg.payload);
  const payloadLen = payload.length;
  const one = int32(1);
  const zero = int32(0);
  const linger = cfg.close === 'rst' ? 0 : cfg.linger;
  const lingerBuf = linger === null ? null : Buffer.alloc(8);
  if (lingerBuf && linger !== null) {
    lingerBuf.writeInt32LE(linger === 'off' ? 0 : 1, 0);
    lingerBuf.writeInt32LE(linger === 'off' ? 0 : linger, 4);
  }
  // The seed's client calls shutdown(SHUT_RDWR) before close(); by default not with an abortive
  // linger (planChurn): the FIN it sends can be answered by the server's FIN before close() runs,
  // and the socket is then already in TIME_WAIT (seen here about once in 800 connections).
  const shutdownFirst = cfg.shutdown;
  const portRangeBuf = cfg.localPortRange === null ? null : int32(cfg.localPortRange);
  const nameBuf = Buffer.alloc(128);
  const nameLen = Buffer.alloc(4);
  const errBuf = Buffer.alloc(4);
  const errLen = Buffer.alloc(4);
  const recvBuf = Buffer.alloc(4096);
  const stop = hooks.stop;

  const latency = new LatencyHistogram();
  const ports = new PortSet();
  const errors: Record<string, number> = {};
  let firstError: LoopFailure | null = null;
  let stalls = 0;
  let firstStall: LoopResult['firstStall'] = null;
  let attempted = 0;
  let succeeded = 0;
  let failed = 0;
  let stoppedBy: LoopResult['stoppedBy'] = 'count';
  let stopping = false;

  const cpu0 = threadCpuMs();
  const t0 = performance.now();
  const endAt = cfg.durationMs >= 0 ? t0 + cfg.durationMs : Infinity;
  const intervalMs = cfg.rate > 0 ? 1000 / cfg.rate : 0;
  let nextProgress = t0 + cfg.progressIntervalMs;

  function fail(iteration: number, syscall: string, code: number): void {
    failed++;
    const key = `${syscall}:${code}`;
    errors[key] = (errors[key] ?? 0) + 1;
    const f = { syscall, code, atIteration: iteration };
    if (!firstError) firstError = f;
    hooks.failure?.(f);
    if (cfg.stopOnError && !stopping) {
      stopping = true;
      stoppedBy = 'error';
    }
  }

  function succeed(startedAt: number, fd: number, iteration: number): void {
    nameLen.writeUInt32LE(128, 0);
    if (hot.getsockname(fd, nameBuf, nameLen) === 0) ports.add(nameBuf.readUInt16BE(2));
    succeeded++;
    const ms = performance.now() - startedAt;
    latency.record(ms * 1000);
    if (ms >= STALL_MS) {
      stalls++;
      firstStall ??= { atIteration: iteration, ms };
    }
  }

  /** The target of an iteration (1-based). */
  function targetOf(iteration: number): Buffer {
    return targets[(iteration - 1) % targets.length]!;
  }

  /** Socket options and the iteration's bind, shared by every mode; the failing syscall or null. */
  function prepare(fd: number, iteration: number): string | null {
    if (
      cfg.reuseAddr !== null &&
      hot.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, cfg.reuseAddr ? one : zero, 4) < 0
    )
      return 'setsockopt';
    if (lingerBuf && hot.setsockopt(fd, SOL_SOCKET, SO_LINGER, lingerBuf, 8) < 0) return 'setsockopt';
    if (portRangeBuf && hot.setsockopt(fd, IPPROTO_IP, IP_LOCAL_PORT_RANGE, portRangeBuf, 4) < 0)
      return 'setsockopt';
    if (cfg.bindNoPort && hot.setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, one, 4) < 0)
      return 'setsockopt';
    const bindAddr = binds.length ? binds[(iteration - 1) % binds.length]! : null;
    if (bindAddr && hot.bind(fd, bindAddr, bindAddr.length) < 0) return 'bind';
    return null;
  }

  function reportProgress(now: number): void {
    nextProgress = now + cfg.progressIntervalMs;
    hooks.progress?.({ attempted, succeeded, failed, elapsedMs: now - t0 });
  }

  /** Can another iteration start now? Also decides why the run stops. */
  function mayStart(now: number): boolean {
    if (stopping) return false;
    if (stop && Atomics.load(stop, 0) !== 0) {
      stopping = true;
      stoppedBy = 'signal';
      return false;
    }
    if (cfg.count >= 0 && attempted >= cfg.count) {
      stopping = true;
      stoppedBy = 'count';
      return false;
    }
    if (now >= endAt) {
      stopping = true;
      stoppedBy = 'duration';
      return false;
    }
    return true;
  }

  /** When paced, the time the next iteration may start. */
  let nextDue = t0;
  function dueAt(): number {
    return nextDue;
  }
  /**
   * An iteration started at `now`: the next is due one interval later. A loop that fell behind
   * (a starved thread) does not burst to catch up: at most one extra start comes early, so a paced
   * run never hits the kernel faster than asked (tcp_tw_reuse experiments depend on it).
   */
  function paced(now: number): void {
    if (intervalMs > 0) nextDue = Math.max(nextDue + intervalMs, now);
  }

  const epfd = hot.epollCreate1(EPOLL_CLOEXEC);
  if (epfd < 0) throw new Error(`epoll_create1 failed: errno ${lastErrno()}`);
  const maxEvents = Math.max(16, cfg.concurrency);
  const events = Buffer.alloc(EPOLL_EVENT_SIZE * maxEvents);
  const ev = Buffer.alloc(EPOLL_EVENT_SIZE);
  const timespec = Buffer.alloc(16);
  let havePwait2 = true;
  let waits = 0;

  /** Wait for readiness until `until` (ms, performance.now clock) at the latest. */
  function wait(until: number): number {
    waits++;
    const ms = until === Infinity ? 50 : Math.max(0, Math.min(50, until - performance.now()));
    if (havePwait2) {
      const n = hot.epollPwait2(epfd, events, maxEvents, writeTimespec(timespec, ms * 1e6), null);
      if (n >= 0 || lastErrno() !== ENOSYS) return n;
      havePwait2 = false;
    }
    return hot.epollWait(epfd, events, maxEvents, Math.ceil(ms));
  }

  try {
    if (cfg.mode === 'udp') runUdp();
    else if (cfg.mode === 'reuse') runReuse();
    else runTcp();
  } finally {
    hot.close(epfd);
  }

  // ---- TCP, one connection per iteration, up to `concurrency` in flight ----
  function runTcp(): void {
    const n = cfg.concurrency;
    const fds = new Int32Array(n).fill(-1);
    const iters = new Float64Array(n);
    const started = new Float64Array(n);
    const phase = new Uint8Array(n);
    const sentBytes = new Int32Array(n);
    const registered = new Uint8Array(n);
    const free: number[] = [];
    for (let i = n - 1; i >= 0; i--) free.push(i);
    let inflight = 0;

    function release(slot: number): void {
      fds[slot] = -1;
      phase[slot] = IDLE;
      registered[slot] = 0;
      free.push(slot);
      inflight--;
    }

    function abort(slot: number, syscall: string, code: number): void {
      hot.close(fds[slot]!);
      fail(iters[slot]!, syscall, code);
      release(slot);
    }

    function watch(slot: number, mask: number): void {
      encodeEpollEvent(ev, mask, slot);
      hot.epollCtl(epfd, registered[slot] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fds[slot]!, ev);
      registered[slot] = 1;
    }

    /** The payload is out: close as the mode says, or wait for the server's FIN. */
    function afterSend(slot: number): void {
      const fd = fds[slot]!;
      if (cfg.close === 'server-first') {
        phase[slot] = AWAIT_EOF;
        readToEof(slot);
        return;
      }
      succeed(started[slot]!, fd, iters[slot]!);
      if (shutdownFirst) hot.shutdown(fd, SHUT_RDWR);
      hot.close(fd);
      release(slot);
    }

    function readToEof(slot: number): void {
      const fd = fds[slot]!;
      for (;;) {
        const r = hot.recv(fd, recvBuf, recvBuf.length, 0);
        if (r > 0) continue;
        if (r === 0) {
          succeed(started[slot]!, fd, iters[slot]!);
          hot.close(fd);
          release(slot);
          return;
        }
        const e = lastErrno();
        if (e === EINTR) continue;
        if (e === EAGAIN) {
          watch(slot, EPOLLIN);
          return;
        }
        abort(slot, 'recv', e);
        return;
      }
    }

    /** Send what is left of the payload; `established` says whether connect is known done. */
    function trySend(slot: number, established: boolean): void {
      const fd = fds[slot]!;
      while (sentBytes[slot]! < payloadLen) {
        const off = sentBytes[slot]!;
        const r = hot.send(fd, off === 0 ? payload : payload.subarray(off), payloadLen - off, MSG_NOSIGNAL);
        if (r >= 0) {
          sentBytes[slot] = off + r;
          established = true;
          continue;
        }
        const e = lastErrno();
        if (e === EINTR) continue;
        if (e === EAGAIN) {
          phase[slot] = established ? SENDING : CONNECTING;
          watch(slot, EPOLLOUT);
          return;
        }
        abort(slot, established ? 'send' : 'connect', e);
        return;
      }
      afterSend(slot);
    }

    function start(now: number): void {
      const slot = free.pop()!;
      const iteration = ++attempted;
      paced(now);
      inflight++;
      iters[slot] = iteration;
      started[slot] = now;
      sentBytes[slot] = 0;
      const fd = hot.socket(domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        fail(iteration, 'socket', lastErrno());
        free.push(slot);
        inflight--;
        return;
      }
      fds[slot] = fd;
      const bad = prepare(fd, iteration);
      if (bad) {
        abort(slot, bad, lastErrno());
        return;
      }
      const target = targetOf(iteration);
      if (hot.connect(fd, target, target.length) < 0) {
        const e = lastErrno();
        if (e !== EINPROGRESS) {
          abort(slot, 'connect', e);
          return;
        }
        if (payloadLen === 0) {
          phase[slot] = CONNECTING;
          watch(slot, EPOLLOUT);
          return;
        }
        trySend(slot, false);
        return;
      }
      trySend(slot, true);
    }

    function onEvent(slot: number, mask: number): void {
      const fd = fds[slot]!;
      if (fd < 0) return;
      const p = phase[slot];
      if (p === CONNECTING || p === SENDING) {
        if (mask & (EPOLLERR | EPOLLHUP)) {
          errLen.writeUInt32LE(4, 0);
          hot.getsockopt(fd, SOL_SOCKET, SO_ERROR, errBuf, errLen);
          const code = errBuf.readInt32LE(0);
          if (code !== 0 || p === CONNECTING) {
            abort(slot, p === CONNECTING ? 'connect' : 'send', code || osConstants.errno.ECONNRESET);
            return;
          }
        }
        if (sentBytes[slot]! >= payloadLen) afterSend(slot);
        else trySend(slot, true);
        return;
      }
      if (p === AWAIT_EOF) readToEof(slot);
    }

    function expire(now: number): void {
      for (let s = 0; s < n; s++) {
        if (fds[s]! >= 0 && now - started[s]! > cfg.timeoutMs) {
          const p = phase[s];
          abort(s, p === CONNECTING ? 'connect' : p === AWAIT_EOF ? 'recv' : 'send', ETIMEDOUT);
        }
      }
    }

    let nextExpiry = t0 + 100;
    for (;;) {
      let now = performance.now();
      while (inflight < n && mayStart(now)) {
        if (intervalMs > 0 && now < dueAt()) break;
        start(now);
        now = performance.now();
      }
      if (now >= nextProgress) reportProgress(now);
      if (now >= nextExpiry) {
        expire(now);
        nextExpiry = now + 100;
      }
      if (inflight === 0) {
        if (stopping || !mayStart(now)) break;
        // Paced and idle: sleep until the next iteration is due.
        wait(Math.min(dueAt(), endAt, nextProgress));
        continue;
      }
      let until = Math.min(nextProgress, nextExpiry);
      if (!stopping && inflight < n && intervalMs > 0) until = Math.min(until, dueAt(), endAt);
      const got = wait(until);
      for (let i = 0; i < got; i++) {
        const base = i * EPOLL_EVENT_SIZE;
        onEvent(events.readUInt32LE(base + EPOLL_EVENT_DATA_OFFSET), events.readUInt32LE(base));
      }
    }
  }

  // ---- UDP: one socket and one datagram per iteration; nothing to wait for ----
  function runUdp(): void {
    for (;;) {
      let now = performance.now();
      if (!mayStart(now)) break;
      if (intervalMs > 0 && now < dueAt()) {
        if (now >= nextProgress) reportProgress(now);
        wait(Math.min(dueAt(), endAt, nextProgress));
        continue;
      }
      const iteration = ++attempted;
      paced(now);
      const fd = hot.socket(domain, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        fail(iteration, 'socket', lastErrno());
        continue;
      }
      const bad = prepare(fd, iteration);
      const target = targetOf(iteration);
      if (bad) fail(iteration, bad, lastErrno());
      else if (hot.connect(fd, target, target.length) < 0) fail(iteration, 'connect', lastErrno());
      else if (hot.send(fd, payload, payloadLen, MSG_NOSIGNAL) < 0) fail(iteration, 'send', lastErrno());
      else succeed(now, fd, iteration);
      hot.close(fd);
      now = performance.now();
      if (now >= nextProgress) reportProgress(now);
    }
  }

  // ---- One TCP connection, one framed message per iteration ----
  function runReuse(): void {
    const fd = hot.socket(domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      attempted = 1;
      fail(1, 'socket', lastErrno());
      return;
    }
    encodeEpollEvent(ev, EPOLLOUT, 0);
    hot.epollCtl(epfd, EPOLL_CTL_ADD, fd, ev);
    try {
      const bad = prepare(fd, 1);
      if (bad) {
        attempted = 1;
        fail(1, bad, lastErrno());
        return;
      }
      let established = false;
      const target = targetOf(1);
      if (hot.connect(fd, target, target.length) < 0) {
        const e = lastErrno();
        if (e !== EINPROGRESS) {
          attempted = 1;
          fail(1, 'connect', e);
          return;
        }
      } else established = true;
      /** Wait until writable (or failed); returns an errno or 0. */
      const awaitWritable = (deadline: number): number => {
        for (;;) {
          const now = performance.now();
          if (now >= deadline) return ETIMEDOUT;
          if (now >= nextProgress) reportProgress(now);
          const got = wait(Math.min(deadline, nextProgress));
          if (got <= 0) continue;
          const mask = events.readUInt32LE(0);
          if (mask & (EPOLLERR | EPOLLHUP)) {
            errLen.writeUInt32LE(4, 0);
            hot.getsockopt(fd, SOL_SOCKET, SO_ERROR, errBuf, errLen);
            return errBuf.readInt32LE(0) || osConstants.errno.ECONNRESET;
          }
          return 0;
        }
      };
      for (;;) {
        let now = performance.now();
        if (!mayStart(now)) break;
        if (intervalMs > 0 && now < dueAt()) {
          if (now >= nextProgress) reportProgress(now);
          // Sleep on a timer only: the socket is nearly always writable.
          hot.epollCtl(epfd, EPOLL_CTL_MOD, fd, encodeEpollEvent(ev, 0, 0));
          wait(Math.min(dueAt(), endAt, nextProgress));
          hot.epollCtl(epfd, EPOLL_CTL_MOD, fd, encodeEpollEvent(ev, EPOLLOUT, 0));
          continue;
        }
        const iteration = ++attempted;
        paced(now);
        let off = 0;
        let failedWith = 0;
        let failedIn = 'send';
        while (off < payloadLen) {
          const r = hot.send(fd, off === 0 ? payload : payload.subarray(off), payloadLen - off, MSG_NOSIGNAL);
          if (r >= 0) {
            off += r;
            established = true;
            continue;
          }
          const e = lastErrno();
          if (e === EINTR) continue;
          if (e !== EAGAIN) {
            failedWith = e;
            failedIn = established ? 'send' : 'connect';
            break;
          }
          const w = awaitWritable(now + cfg.timeoutMs);
          if (w !== 0) {
            failedWith = w;
            failedIn = established ? 'send' : 'connect';
            break;
          }
          if (!established) established = true;
        }
        if (failedWith !== 0) {
          fail(iteration, failedIn, failedWith);
          // A broken connection fails every later message too: stop here whatever stopOnError says.
          stopping = true;
          if (stoppedBy !== 'error') stoppedBy = 'error';
          break;
        }
        succeed(now, fd, iteration);
        now = performance.now();
        if (now >= nextProgress) reportProgress(now);
      }
    } finally {
      if (cfg.close !== 'rst' && linger !== 0) hot.shutdown(fd, SHUT_RDWR);
      hot.close(fd);
    }
  }

  const elapsedMs = performance.now() - t0;
  const cpuMs = threadCpuMs() - cpu0;
  hooks.progress?.({ attempted, succeeded, failed, elapsedMs });
  return {
    attempted,
    succeeded,
    failed,
    firstError,
    errors,
    elapsedMs,
    cpuMs,
    waits,
    stoppedBy,
    latencyCounts: latency.counts,
    latencySumUs: latency.sumUs,
    latencyMaxUs: latency.maxUs,
    stalls,
    firstStall,
    ports: ports.seen,
  };
}
