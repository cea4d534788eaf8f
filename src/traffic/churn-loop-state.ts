/**
 * What the churn loop's three modes (churn-loop-tcp.ts, -udp.ts, -reuse.ts) share: the encoded
 * configuration, the counters and records, the stop rules, pacing, the epoll wait, and the
 * per-socket steps every mode makes the same way (options and bind, the send loop, the SO_ERROR
 * read). Every buffer is allocated once here, so the modes' hot paths allocate nothing.
 */
import {
  AF_INET,
  AF_INET6,
  IPPROTO_IP,
  IP_BIND_ADDRESS_NO_PORT,
  IP_LOCAL_PORT_RANGE,
  MSG_NOSIGNAL,
  SOL_SOCKET,
  SO_ERROR,
  SO_LINGER,
  SO_REUSEADDR,
} from '../sockets/constants.js';
import { EAGAIN, EINTR, ENOSYS } from '../sockets/errno.js';
import {
  EPOLL_CLOEXEC,
  EPOLL_EVENT_SIZE,
  hot,
  lastErrno,
  threadCpuMs,
  writeTimespec,
} from '../sockets/epoll.js';
import { LatencyHistogram, PortSet, STALL_MS } from './churn-stats.js';

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

/** A C int for setsockopt; values above 2^31 (IP_LOCAL_PORT_RANGE's packed pair) keep their bits. */
function int32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0, 0);
  return b;
}

function asBuffer(u8: Uint8Array): Buffer {
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

export class LoopState {
  readonly domain: number;
  readonly payload: Buffer;
  readonly payloadLen: number;
  /** SO_LINGER as applied: the rst close mode forces 0. */
  readonly linger: number | 'off' | null;
  readonly recvBuf = Buffer.alloc(4096);
  readonly epfd: number;
  readonly maxEvents: number;
  /** epoll_wait's output: `maxEvents` events. */
  readonly events: Buffer;
  /** One epoll_event for epoll_ctl. */
  readonly ev = Buffer.alloc(EPOLL_EVENT_SIZE);
  readonly t0: number;
  /** When a duration-bounded run stops starting iterations (Infinity: no duration). */
  readonly endAt: number;
  readonly intervalMs: number;

  attempted = 0;
  succeeded = 0;
  failed = 0;
  stoppedBy: LoopResult['stoppedBy'] = 'count';
  /** No more iterations start (the run is winding down). */
  stopping = false;
  waits = 0;
  nextProgress: number;
  /** When paced, the time the next iteration may start. */
  nextDue: number;
  /** The errno the last sendRest() failed with, 0 when it did not fail. */
  sendErrno = 0;

  private readonly targets: Buffer[];
  private readonly binds: Buffer[];
  private readonly one = int32(1);
  private readonly zero = int32(0);
  private readonly lingerBuf: Buffer | null;
  private readonly portRangeBuf: Buffer | null;
  private readonly nameBuf = Buffer.alloc(128);
  private readonly nameLen = Buffer.alloc(4);
  private readonly errBuf = Buffer.alloc(4);
  private readonly errLen = Buffer.alloc(4);
  private readonly timespec = Buffer.alloc(16);
  private havePwait2 = true;
  private readonly latency = new LatencyHistogram();
  private readonly ports = new PortSet();
  private readonly errors: Record<string, number> = {};
  private firstError: LoopFailure | null = null;
  private stalls = 0;
  private firstStall: LoopResult['firstStall'] = null;
  private readonly cpu0: number;

  constructor(
    readonly cfg: LoopConfig,
    private readonly hooks: LoopHooks,
  ) {
    this.domain = cfg.family === 6 ? AF_INET6 : AF_INET;
    this.targets = cfg.targets.map(asBuffer);
    this.binds = cfg.binds.map(asBuffer);
    this.payload = asBuffer(cfg.payload);
    this.payloadLen = this.payload.length;
    const linger = cfg.close === 'rst' ? 0 : cfg.linger;
    this.linger = linger;
    this.lingerBuf = linger === null ? null : Buffer.alloc(8);
    if (this.lingerBuf && linger !== null) {
      this.lingerBuf.writeInt32LE(linger === 'off' ? 0 : 1, 0);
      this.lingerBuf.writeInt32LE(linger === 'off' ? 0 : linger, 4);
    }
    this.portRangeBuf = cfg.localPortRange === null ? null : int32(cfg.localPortRange);
    this.epfd = hot.epollCreate1(EPOLL_CLOEXEC);
    if (this.epfd < 0) throw new Error(`epoll_create1 failed: errno ${lastErrno()}`);
    this.maxEvents = Math.max(16, cfg.concurrency);
    this.events = Buffer.alloc(EPOLL_EVENT_SIZE * this.maxEvents);
    this.cpu0 = threadCpuMs();
    this.t0 = performance.now();
    this.endAt = cfg.durationMs >= 0 ? this.t0 + cfg.durationMs : Infinity;
    this.intervalMs = cfg.rate > 0 ? 1000 / cfg.rate : 0;
    this.nextProgress = this.t0 + cfg.progressIntervalMs;
    this.nextDue = this.t0;
  }

  fail(iteration: number, syscall: string, code: number): void {
    this.failed++;
    const key = `${syscall}:${code}`;
    this.errors[key] = (this.errors[key] ?? 0) + 1;
    const f = { syscall, code, atIteration: iteration };
    if (!this.firstError) this.firstError = f;
    this.hooks.failure?.(f);
    if (this.cfg.stopOnError && !this.stopping) {
      this.stopping = true;
      this.stoppedBy = 'error';
    }
  }

  /** Iteration `iteration`, started at `startedAt`, succeeded on `fd`: its latency and local port. */
  succeed(startedAt: number, fd: number, iteration: number): void {
    this.nameLen.writeUInt32LE(128, 0);
    if (hot.getsockname(fd, this.nameBuf, this.nameLen) === 0) this.ports.add(this.nameBuf.readUInt16BE(2));
    this.succeeded++;
    const ms = performance.now() - startedAt;
    this.latency.record(ms * 1000);
    if (ms >= STALL_MS) {
      this.stalls++;
      this.firstStall ??= { atIteration: iteration, ms };
    }
  }

  /** The target of an iteration (1-based). */
  targetOf(iteration: number): Buffer {
    return this.targets[(iteration - 1) % this.targets.length]!;
  }

  /** Socket options and the iteration's bind, shared by every mode; the failing syscall or null. */
  prepare(fd: number, iteration: number): string | null {
    const cfg = this.cfg;
    if (
      cfg.reuseAddr !== null &&
      hot.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, cfg.reuseAddr ? this.one : this.zero, 4) < 0
    )
      return 'setsockopt';
    if (this.lingerBuf && hot.setsockopt(fd, SOL_SOCKET, SO_LINGER, this.lingerBuf, 8) < 0)
      return 'setsockopt';
    if (this.portRangeBuf && hot.setsockopt(fd, IPPROTO_IP, IP_LOCAL_PORT_RANGE, this.portRangeBuf, 4) < 0)
      return 'setsockopt';
    if (cfg.bindNoPort && hot.setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, this.one, 4) < 0)
      return 'setsockopt';
    const binds = this.binds;
    const bindAddr = binds.length ? binds[(iteration - 1) % binds.length]! : null;
    if (bindAddr && hot.bind(fd, bindAddr, bindAddr.length) < 0) return 'bind';
    return null;
  }

  /**
   * Send the payload from byte `off` on until it is all out, the socket answers EAGAIN, or an
   * error (then in `sendErrno`); returns the new offset. An offset past `off` means the connection
   * is established (the kernel took bytes).
   */
  sendRest(fd: number, off: number): number {
    const payload = this.payload;
    const len = this.payloadLen;
    this.sendErrno = 0;
    while (off < len) {
      const r = hot.send(fd, off === 0 ? payload : payload.subarray(off), len - off, MSG_NOSIGNAL);
      if (r >= 0) {
        off += r;
        continue;
      }
      const e = lastErrno();
      if (e === EINTR) continue;
      if (e !== EAGAIN) this.sendErrno = e;
      break;
    }
    return off;
  }

  /** The socket's pending error (SO_ERROR, which clears it): an errno, or 0. */
  soError(fd: number): number {
    this.errLen.writeUInt32LE(4, 0);
    hot.getsockopt(fd, SOL_SOCKET, SO_ERROR, this.errBuf, this.errLen);
    return this.errBuf.readInt32LE(0);
  }

  /** Report progress if it is due. */
  tick(now: number): void {
    if (now < this.nextProgress) return;
    this.nextProgress = now + this.cfg.progressIntervalMs;
    const { attempted, succeeded, failed } = this;
    this.hooks.progress?.({ attempted, succeeded, failed, elapsedMs: now - this.t0 });
  }

  /** Can another iteration start now? Also decides why the run stops. */
  mayStart(now: number): boolean {
    if (this.stopping) return false;
    const stop = this.hooks.stop;
    if (stop && Atomics.load(stop, 0) !== 0) return this.stopBecause('signal');
    if (this.cfg.count >= 0 && this.attempted >= this.cfg.count) return this.stopBecause('count');
    if (now >= this.endAt) return this.stopBecause('duration');
    return true;
  }

  private stopBecause(why: LoopResult['stoppedBy']): false {
    this.stopping = true;
    this.stoppedBy = why;
    return false;
  }

  /** Paced, and the next iteration is not due yet. */
  notDue(now: number): boolean {
    return this.intervalMs > 0 && now < this.nextDue;
  }

  /** Sleep until the next iteration is due (or the run ends, or progress is due). */
  waitForDue(): number {
    return this.wait(Math.min(this.nextDue, this.endAt, this.nextProgress));
  }

  /**
   * Start an iteration at `now`; returns its 1-based number. When paced, the next is due one
   * interval later. A loop that fell behind (a starved thread) does not burst to catch up: at most
   * one extra start comes early, so a paced run never hits the kernel faster than asked
   * (tcp_tw_reuse experiments depend on it).
   */
  begin(now: number): number {
    if (this.intervalMs > 0) this.nextDue = Math.max(this.nextDue + this.intervalMs, now);
    return ++this.attempted;
  }

  /** Wait for readiness until `until` (ms, performance.now clock) at the latest. */
  wait(until: number): number {
    this.waits++;
    const ms = until === Infinity ? 50 : Math.max(0, Math.min(50, until - performance.now()));
    if (this.havePwait2) {
      const n = hot.epollPwait2(
        this.epfd,
        this.events,
        this.maxEvents,
        writeTimespec(this.timespec, ms * 1e6),
        null,
      );
      if (n >= 0 || lastErrno() !== ENOSYS) return n;
      this.havePwait2 = false;
    }
    return hot.epollWait(this.epfd, this.events, this.maxEvents, Math.ceil(ms));
  }

  close(): void {
    hot.close(this.epfd);
  }

  /** The run's records (reporting progress a last time). */
  result(): LoopResult {
    const elapsedMs = performance.now() - this.t0;
    const cpuMs = threadCpuMs() - this.cpu0;
    const { attempted, succeeded, failed } = this;
    this.hooks.progress?.({ attempted, succeeded, failed, elapsedMs });
    return {
      attempted,
      succeeded,
      failed,
      firstError: this.firstError,
      errors: this.errors,
      elapsedMs,
      cpuMs,
      waits: this.waits,
      stoppedBy: this.stoppedBy,
      latencyCounts: this.latency.counts,
      latencySumUs: this.latency.sumUs,
      latencyMaxUs: this.latency.maxUs,
      stalls: this.stalls,
      firstStall: this.firstStall,
      ports: this.ports.seen,
    };
  }
}
