/**
 * The churn loop's TCP mode: one connection per iteration, up to `concurrency` in flight, each in
 * a slot of fixed typed arrays (no allocation per connection). On loopback connect() has usually
 * finished the handshake by the time it returns EINPROGRESS, so the payload is sent at once; only
 * a socket that answers EAGAIN goes through epoll.
 */
import { SHUT_RDWR, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM } from '../sockets/constants.js';
import { EAGAIN, ECONNRESET, EINPROGRESS, EINTR, ETIMEDOUT } from '../sockets/errno.js';
import {
  EPOLLERR,
  EPOLLHUP,
  EPOLLIN,
  EPOLLOUT,
  EPOLL_CTL_ADD,
  EPOLL_CTL_MOD,
  EPOLL_EVENT_DATA_OFFSET,
  EPOLL_EVENT_SIZE,
  encodeEpollEvent,
  hot,
  lastErrno,
} from '../sockets/epoll.js';
import type { LoopState } from './churn-loop-state.js';

// Slot phases.
const IDLE = 0;
const CONNECTING = 1;
const SENDING = 2;
const AWAIT_EOF = 3;

/** How often in-flight connections are checked against their deadline. */
const EXPIRY_CHECK_MS = 100;

class TcpSlots {
  readonly n: number;
  readonly fds: Int32Array;
  readonly iters: Float64Array;
  readonly started: Float64Array;
  readonly phase: Uint8Array;
  readonly sentBytes: Int32Array;
  private readonly registered: Uint8Array;
  private readonly free: number[] = [];
  // Read once per connection: kept here rather than behind s.cfg.
  private readonly serverFirst: boolean;
  private readonly shutdownFirst: boolean;
  private readonly payloadLen: number;
  inflight = 0;

  constructor(private readonly s: LoopState) {
    const n = s.cfg.concurrency;
    this.n = n;
    this.fds = new Int32Array(n).fill(-1);
    this.iters = new Float64Array(n);
    this.started = new Float64Array(n);
    this.phase = new Uint8Array(n);
    this.sentBytes = new Int32Array(n);
    this.registered = new Uint8Array(n);
    for (let i = n - 1; i >= 0; i--) this.free.push(i);
    this.serverFirst = s.cfg.close === 'server-first';
    this.shutdownFirst = s.cfg.shutdown;
    this.payloadLen = s.payloadLen;
  }

  private release(slot: number): void {
    this.fds[slot] = -1;
    this.phase[slot] = IDLE;
    this.registered[slot] = 0;
    this.free.push(slot);
    this.inflight--;
  }

  private abort(slot: number, syscall: string, code: number): void {
    hot.close(this.fds[slot]!);
    this.s.fail(this.iters[slot]!, syscall, code);
    this.release(slot);
  }

  private watch(slot: number, mask: number): void {
    const ev = this.s.ev;
    encodeEpollEvent(ev, mask, slot);
    hot.epollCtl(this.s.epfd, this.registered[slot] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, this.fds[slot]!, ev);
    this.registered[slot] = 1;
  }

  /** The payload is out: close as the mode says, or wait for the server's FIN. */
  private afterSend(slot: number): void {
    const fd = this.fds[slot]!;
    if (this.serverFirst) {
      this.phase[slot] = AWAIT_EOF;
      this.readToEof(slot);
      return;
    }
    this.s.succeed(this.started[slot]!, fd, this.iters[slot]!);
    // The seed's client calls shutdown(SHUT_RDWR) before close(); by default not with an abortive
    // linger (planChurn): the FIN it sends can be answered by the server's FIN before close() runs,
    // and the socket is then already in TIME_WAIT (seen here about once in 800 connections).
    if (this.shutdownFirst) hot.shutdown(fd, SHUT_RDWR);
    hot.close(fd);
    this.release(slot);
  }

  private readToEof(slot: number): void {
    const fd = this.fds[slot]!;
    const buf = this.s.recvBuf;
    for (;;) {
      const r = hot.recv(fd, buf, buf.length, 0);
      if (r > 0) continue;
      if (r === 0) {
        this.s.succeed(this.started[slot]!, fd, this.iters[slot]!);
        hot.close(fd);
        this.release(slot);
        return;
      }
      const e = lastErrno();
      if (e === EINTR) continue;
      if (e === EAGAIN) {
        this.watch(slot, EPOLLIN);
        return;
      }
      this.abort(slot, 'recv', e);
      return;
    }
  }

  /** Send what is left of the payload; `established` says whether connect is known done. */
  private trySend(slot: number, established: boolean): void {
    const s = this.s;
    const off = this.sentBytes[slot]!;
    const sent = s.sendRest(this.fds[slot]!, off);
    this.sentBytes[slot] = sent;
    if (sent > off) established = true;
    if (s.sendErrno !== 0) {
      this.abort(slot, established ? 'send' : 'connect', s.sendErrno);
      return;
    }
    if (sent < this.payloadLen) {
      this.phase[slot] = established ? SENDING : CONNECTING;
      this.watch(slot, EPOLLOUT);
      return;
    }
    this.afterSend(slot);
  }

  start(now: number): void {
    const s = this.s;
    const slot = this.free.pop()!;
    const iteration = s.begin(now);
    this.inflight++;
    this.iters[slot] = iteration;
    this.started[slot] = now;
    this.sentBytes[slot] = 0;
    const fd = hot.socket(s.domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      s.fail(iteration, 'socket', lastErrno());
      this.free.push(slot);
      this.inflight--;
      return;
    }
    this.fds[slot] = fd;
    const bad = s.prepare(fd, iteration);
    if (bad) {
      this.abort(slot, bad, lastErrno());
      return;
    }
    const target = s.targetOf(iteration);
    if (hot.connect(fd, target, target.length) < 0) {
      const e = lastErrno();
      if (e !== EINPROGRESS) {
        this.abort(slot, 'connect', e);
        return;
      }
      if (this.payloadLen === 0) {
        this.phase[slot] = CONNECTING;
        this.watch(slot, EPOLLOUT);
        return;
      }
      this.trySend(slot, false);
      return;
    }
    this.trySend(slot, true);
  }

  onEvent(slot: number, mask: number): void {
    const fd = this.fds[slot]!;
    if (fd < 0) return;
    const p = this.phase[slot];
    if (p === CONNECTING || p === SENDING) {
      if (mask & (EPOLLERR | EPOLLHUP)) {
        const code = this.s.soError(fd);
        if (code !== 0 || p === CONNECTING) {
          this.abort(slot, p === CONNECTING ? 'connect' : 'send', code || ECONNRESET);
          return;
        }
      }
      if (this.sentBytes[slot]! >= this.payloadLen) this.afterSend(slot);
      else this.trySend(slot, true);
      return;
    }
    if (p === AWAIT_EOF) this.readToEof(slot);
  }

  /** Fail every connection past its deadline (`timeoutMs`) with ETIMEDOUT in its current step. */
  expire(now: number): void {
    const timeoutMs = this.s.cfg.timeoutMs;
    for (let slot = 0; slot < this.n; slot++) {
      if (this.fds[slot]! >= 0 && now - this.started[slot]! > timeoutMs) {
        const p = this.phase[slot];
        this.abort(slot, p === CONNECTING ? 'connect' : p === AWAIT_EOF ? 'recv' : 'send', ETIMEDOUT);
      }
    }
  }
}

export function runTcp(s: LoopState): void {
  const slots = new TcpSlots(s);
  const n = slots.n;
  const events = s.events;
  let nextExpiry = s.t0 + EXPIRY_CHECK_MS;
  for (;;) {
    let now = performance.now();
    while (slots.inflight < n && s.mayStart(now)) {
      if (s.notDue(now)) break;
      slots.start(now);
      now = performance.now();
    }
    s.tick(now);
    if (now >= nextExpiry) {
      slots.expire(now);
      nextExpiry = now + EXPIRY_CHECK_MS;
    }
    if (slots.inflight === 0) {
      if (s.stopping || !s.mayStart(now)) break;
      // Paced and idle: sleep until the next iteration is due.
      s.waitForDue();
      continue;
    }
    let until = Math.min(s.nextProgress, nextExpiry);
    if (!s.stopping && slots.inflight < n && s.intervalMs > 0) until = Math.min(until, s.nextDue, s.endAt);
    const got = s.wait(until);
    for (let i = 0; i < got; i++) {
      const base = i * EPOLL_EVENT_SIZE;
      slots.onEvent(events.readUInt32LE(base + EPOLL_EVENT_DATA_OFFSET), events.readUInt32LE(base));
    }
  }
}
