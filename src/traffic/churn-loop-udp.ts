/** The churn loop's UDP mode: one socket and one datagram per iteration; nothing to wait for. */
import { MSG_NOSIGNAL, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK } from '../sockets/constants.js';
import { hot, lastErrno } from '../sockets/epoll.js';
import type { LoopState } from './churn-loop-state.js';

export function runUdp(s: LoopState): void {
  for (;;) {
    const now = performance.now();
    if (!s.mayStart(now)) break;
    if (s.notDue(now)) {
      s.tick(now);
      s.waitForDue();
      continue;
    }
    const iteration = s.begin(now);
    const fd = hot.socket(s.domain, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      s.fail(iteration, 'socket', lastErrno());
      continue;
    }
    const bad = s.prepare(fd, iteration);
    const target = s.targetOf(iteration);
    if (bad) s.fail(iteration, bad, lastErrno());
    else if (hot.connect(fd, target, target.length) < 0) s.fail(iteration, 'connect', lastErrno());
    else if (hot.send(fd, s.payload, s.payloadLen, MSG_NOSIGNAL) < 0) s.fail(iteration, 'send', lastErrno());
    else s.succeed(now, fd, iteration);
    hot.close(fd);
    s.tick(performance.now());
  }
}
