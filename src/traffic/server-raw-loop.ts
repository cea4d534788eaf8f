/**
 * The raw `twlab serve` engine's loop: one epoll set over the listener and every connection,
 * nonblocking accept4/recv/send/close through koffi, run in a worker thread so it never yields to
 * (or waits on) the caller's event loop. It does what the Node engine does per connection (close
 * modes, reply, framing, idle timeout, limits) without a net.Socket per connection, which is what
 * bounds Node's accept rate. Counters live in shared memory the caller reads at any time; only
 * errors travel as messages (the first few of each kind).
 */
import { performance } from 'node:perf_hooks';
import { hotListen, abortiveLinger } from '../sockets/accept.js';
import {
  EPOLLIN,
  EPOLLRDHUP,
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLL_EVENT_DATA_OFFSET,
  EPOLL_EVENT_SIZE,
  encodeEpollEvent,
  hot,
  lastErrno,
} from '../sockets/epoll.js';
import {
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOL_SOCKET,
  SO_LINGER,
} from '../sockets/constants.js';
import { EAGAIN, EINTR, EMFILE, ENFILE, ENOBUFS, ENOMEM, errnoName } from '../sockets/errno.js';
import { FrameCounter, frame } from './server-framing.js';
import type { ClosedHow, Framing, ServerCloseMode } from './server-types.js';

/** Order of the per-way close counters in the shared stats array. */
export const CLOSED_HOWS: readonly ClosedHow[] = [
  'server-first',
  'client-first',
  'rst',
  'reset-by-peer',
  'idle-timeout',
  'too-large',
  'shutdown',
];
/** Indexes into the shared Float64Array of counters. */
export const STAT = {
  accepted: 0,
  dropped: 1,
  closed: 2,
  active: 3,
  peakActive: 4,
  bytesReceived: 5,
  bytesSent: 6,
  messages: 7,
  /** CLOSED_HOWS[i] is at howBase + i. */
  howBase: 8,
} as const;
export const STAT_SLOTS = STAT.howBase + CLOSED_HOWS.length;

export interface RawLoopConfig {
  listenFd: number;
  close: ServerCloseMode;
  reply: Uint8Array | null;
  framing: Framing;
  idleTimeoutMs: number;
  maxConns: number;
  maxRequestBytes: number;
  exitAfter: number | null;
}

export interface RawLoopIo {
  /** Set [0] to 1 to stop. */
  stop: Int32Array;
  stats: Float64Array;
  /** An error: errno name (or the server's own kind), number, call. */
  error(name: string, code: number, syscall: string, message: string): void;
}

const HOW = Object.fromEntries(CLOSED_HOWS.map((h, i) => [h, STAT.howBase + i])) as Record<ClosedHow, number>;
const MAX_EVENTS = 256;
const WAIT_MS = 50;

/** `to` (a larger array) with `from` copied into its start. */
function holding<T extends Uint8Array | Float64Array>(to: T, from: T): T {
  to.set(from);
  return to;
}

/** Run until stopped or exitAfter connections have closed; returns error counts by name. */
// Long (~170 lines) on purpose: the raw engine's hot loop; its per-connection state lives in typed
// arrays its inner functions share (no allocation per event). If it grows, split it as the churn
// loop was (churn-loop-state.ts and one file per part).
// eslint-disable-next-line max-lines-per-function -- long on purpose, as said above
export function runRawLoop(cfg: RawLoopConfig, io: RawLoopIo): Record<string, number> {
  const { stats, stop } = io;
  const errors: Record<string, number> = {};
  const countError = (name: string, code: number, syscall: string, message: string): void => {
    errors[name] = (errors[name] ?? 0) + 1;
    io.error(name, code, syscall, message);
  };

  const ep = hot.epollCreate1(EPOLL_CLOEXEC);
  if (ep < 0) throw new Error(`epoll_create1 failed: ${errnoName(lastErrno())}`);
  const ev = Buffer.alloc(EPOLL_EVENT_SIZE);
  const evs = Buffer.alloc(EPOLL_EVENT_SIZE * MAX_EVENTS);
  const buf = Buffer.alloc(65_536);
  const linger0 = abortiveLinger();
  const lfd = cfg.listenFd;
  let listening = true;
  let listenerPausedUntil = 0;
  hot.epollCtl(ep, EPOLL_CTL_ADD, lfd, encodeEpollEvent(ev, EPOLLIN, lfd));

  // Per-connection state, indexed by fd (the kernel hands out the lowest free fds, so these stay
  // small); grown on demand.
  let size = 1024;
  let open = new Uint8Array(size);
  let answered = new Uint8Array(size);
  let bytes = new Float64Array(size);
  let lastActive = new Float64Array(size);
  const frames: Array<FrameCounter | undefined> = [];
  const openFds = new Set<number>();
  const grow = (fd: number): void => {
    let n = size;
    while (n <= fd) n *= 2;
    open = holding(new Uint8Array(n), open);
    answered = holding(new Uint8Array(n), answered);
    bytes = holding(new Float64Array(n), bytes);
    lastActive = holding(new Float64Array(n), lastActive);
    size = n;
  };

  const reply = cfg.reply ? Buffer.from(cfg.reply) : null;
  const wire = reply && cfg.framing === 'length-prefixed' ? frame(reply) : reply;
  const flags = MSG_NOSIGNAL | MSG_DONTWAIT;
  const maxBytes = cfg.maxRequestBytes;
  const exitAfter = cfg.exitAfter ?? Infinity;
  let now = performance.now();

  function closeListener(): void {
    if (!listening) return;
    listening = false;
    hot.epollCtl(ep, EPOLL_CTL_DEL, lfd, null);
    hot.close(lfd);
  }

  function finish(fd: number, how: ClosedHow): void {
    if (how === 'rst' || how === 'too-large') hot.setsockopt(fd, SOL_SOCKET, SO_LINGER, linger0, 8);
    hot.close(fd);
    open[fd] = 0;
    frames[fd] = undefined;
    openFds.delete(fd);
    stats[STAT.active]!--;
    stats[STAT.closed]!++;
    stats[HOW[how]]!++;
  }

  function sendReply(fd: number): void {
    if (!wire) return;
    const r = hot.send(fd, wire, wire.length, flags);
    if (r > 0) stats[STAT.bytesSent]! += r;
  }

  /** The request is complete: close as the mode says (client-first waits for the EOF). */
  function requestDone(fd: number): boolean {
    if (cfg.close === 'server-first') finish(fd, 'server-first');
    else if (cfg.close === 'rst') finish(fd, 'rst');
    else return false;
    return true;
  }

  function tooLarge(fd: number): void {
    countError('too-large', 0, 'server', `request over ${maxBytes} bytes: connection cut off`);
    finish(fd, 'too-large');
  }

  function onReadable(fd: number): void {
    lastActive[fd] = now;
    for (;;) {
      const r = hot.recv(fd, buf, buf.length, 0);
      if (r > 0) {
        stats[STAT.bytesReceived]! += r;
        bytes[fd]! += r;
        const fc = frames[fd];
        if (fc === undefined) {
          if (bytes[fd]! > maxBytes) return tooLarge(fd);
          if (answered[fd] === 0) {
            answered[fd] = 1;
            sendReply(fd);
            if (requestDone(fd)) return;
          }
          continue;
        }
        const n = fc.feed(r === buf.length ? buf : buf.subarray(0, r));
        if (n > 0) {
          stats[STAT.messages]! += n;
          for (let i = 0; i < n; i++) sendReply(fd);
        }
        if (fc.overLimit) return tooLarge(fd);
        if (n > 0 && requestDone(fd)) return;
        continue;
      }
      if (r === 0) return finish(fd, cfg.close === 'rst' ? 'rst' : 'client-first');
      const e = lastErrno();
      if (e === EAGAIN) return;
      if (e === EINTR) continue;
      countError(errnoName(e), e, 'recv', `recv failed: ${errnoName(e)}`);
      return finish(fd, 'reset-by-peer');
    }
  }

  function onAcceptable(): void {
    for (;;) {
      const fd = hotListen.accept4(lfd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        const e = lastErrno();
        if (e === EAGAIN) return;
        if (e === EINTR) continue;
        countError(errnoName(e), e, 'accept', `accept4 failed: ${errnoName(e)}`);
        // Out of fds or memory: the listener stays readable; stop polling it for a moment.
        if (e === EMFILE || e === ENFILE || e === ENOBUFS || e === ENOMEM) {
          hot.epollCtl(ep, EPOLL_CTL_DEL, lfd, null);
          listenerPausedUntil = now + 100;
        }
        return;
      }
      stats[STAT.accepted]!++;
      if (stats[STAT.active]! >= cfg.maxConns) {
        hot.close(fd);
        stats[STAT.dropped]!++;
        countError(
          'max-conns',
          0,
          'server',
          `${cfg.maxConns} connections open: a new one was closed at accept`,
        );
      } else {
        if (fd >= size) grow(fd);
        open[fd] = 1;
        answered[fd] = 0;
        bytes[fd] = 0;
        lastActive[fd] = now;
        if (cfg.framing === 'length-prefixed') frames[fd] = new FrameCounter(maxBytes);
        openFds.add(fd);
        if (++stats[STAT.active]! > stats[STAT.peakActive]!) stats[STAT.peakActive] = stats[STAT.active]!;
        hot.epollCtl(ep, EPOLL_CTL_ADD, fd, encodeEpollEvent(ev, EPOLLIN | EPOLLRDHUP, fd));
        // Data (and even the FIN) often arrives with the connection: read it now, saving a wakeup.
        onReadable(fd);
      }
      if (stats[STAT.accepted]! >= exitAfter) {
        closeListener();
        return;
      }
    }
  }

  let nextSweep = now + Math.min(cfg.idleTimeoutMs / 4, 250);
  try {
    while (Atomics.load(stop, 0) === 0) {
      if (!listening && openFds.size === 0) break;
      const n = hot.epollWait(ep, evs, MAX_EVENTS, WAIT_MS);
      now = performance.now();
      for (let i = 0; i < n; i++) {
        const fd = evs.readUInt32LE(i * EPOLL_EVENT_SIZE + EPOLL_EVENT_DATA_OFFSET);
        if (fd === lfd && listening) onAcceptable();
        else if (fd < size && open[fd] === 1) onReadable(fd);
      }
      if (listenerPausedUntil > 0 && now >= listenerPausedUntil && listening) {
        listenerPausedUntil = 0;
        hot.epollCtl(ep, EPOLL_CTL_ADD, lfd, encodeEpollEvent(ev, EPOLLIN, lfd));
      }
      if (now >= nextSweep) {
        nextSweep = now + Math.min(cfg.idleTimeoutMs / 4, 250);
        for (const fd of openFds) if (now - lastActive[fd]! >= cfg.idleTimeoutMs) finish(fd, 'idle-timeout');
      }
    }
  } finally {
    for (const fd of [...openFds]) finish(fd, 'shutdown');
    closeListener();
    hot.close(ep);
  }
  return errors;
}
