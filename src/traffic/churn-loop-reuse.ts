/**
 * The churn loop's reuse mode: one TCP connection, one framed message per iteration. An iteration
 * succeeds when its message is sent (no reply is awaited); the connection is closed client-first
 * at the end (abortively with rst or linger 0).
 */
import { SHUT_RDWR, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM } from '../sockets/constants.js';
import { ECONNRESET, EINPROGRESS, ETIMEDOUT } from '../sockets/errno.js';
import {
  EPOLLERR,
  EPOLLHUP,
  EPOLLOUT,
  EPOLL_CTL_ADD,
  EPOLL_CTL_MOD,
  encodeEpollEvent,
  hot,
  lastErrno,
} from '../sockets/epoll.js';
import type { LoopState } from './churn-loop-state.js';

/** Wait until `fd` (the only socket registered) is writable or failed; returns an errno or 0. */
function awaitWritable(s: LoopState, fd: number, deadline: number): number {
  for (;;) {
    const now = performance.now();
    if (now >= deadline) return ETIMEDOUT;
    s.tick(now);
    const got = s.wait(Math.min(deadline, s.nextProgress));
    if (got <= 0) continue;
    if (s.events.readUInt32LE(0) & (EPOLLERR | EPOLLHUP)) return s.soError(fd) || ECONNRESET;
    return 0;
  }
}

/** The first (and only) connection could not be made: iteration 1 failed in `syscall`. */
function failSetup(s: LoopState, syscall: string, code: number): void {
  s.attempted = 1;
  s.fail(1, syscall, code);
}

export function runReuse(s: LoopState): void {
  const fd = hot.socket(s.domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    failSetup(s, 'socket', lastErrno());
    return;
  }
  const ev = s.ev;
  hot.epollCtl(s.epfd, EPOLL_CTL_ADD, fd, encodeEpollEvent(ev, EPOLLOUT, 0));
  try {
    const bad = s.prepare(fd, 1);
    if (bad) {
      failSetup(s, bad, lastErrno());
      return;
    }
    let established = false;
    const target = s.targetOf(1);
    if (hot.connect(fd, target, target.length) < 0) {
      const e = lastErrno();
      if (e !== EINPROGRESS) {
        failSetup(s, 'connect', e);
        return;
      }
    } else established = true;
    const payloadLen = s.payloadLen;
    for (;;) {
      const now = performance.now();
      if (!s.mayStart(now)) break;
      if (s.notDue(now)) {
        s.tick(now);
        // Sleep on a timer only: the socket is nearly always writable.
        hot.epollCtl(s.epfd, EPOLL_CTL_MOD, fd, encodeEpollEvent(ev, 0, 0));
        s.waitForDue();
        hot.epollCtl(s.epfd, EPOLL_CTL_MOD, fd, encodeEpollEvent(ev, EPOLLOUT, 0));
        continue;
      }
      const iteration = s.begin(now);
      let off = 0;
      let failedWith = 0;
      for (;;) {
        const sent = s.sendRest(fd, off);
        if (sent > off) established = true;
        off = sent;
        failedWith = s.sendErrno;
        if (failedWith !== 0 || off >= payloadLen) break;
        failedWith = awaitWritable(s, fd, now + s.cfg.timeoutMs);
        if (failedWith !== 0) break;
        established = true;
      }
      if (failedWith !== 0) {
        s.fail(iteration, established ? 'send' : 'connect', failedWith);
        // A broken connection fails every later message too: stop here whatever stopOnError says.
        s.stopping = true;
        s.stoppedBy = 'error';
        break;
      }
      s.succeed(now, fd, iteration);
      s.tick(performance.now());
    }
  } finally {
    if (s.cfg.close !== 'rst' && s.linger !== 0) hot.shutdown(fd, SHUT_RDWR);
    hot.close(fd);
  }
}
