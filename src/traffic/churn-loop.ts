/**
 * The churn hot loop: raw nonblocking sockets and one epoll instance, no Node streams, no
 * allocation per iteration. It runs in a worker thread (churn-worker.ts) because it never yields
 * to an event loop; a shared Int32Array lets the parent ask it to stop.
 *
 * One file per mode (churn-loop-tcp.ts, -udp.ts, -reuse.ts) over the state they share
 * (churn-loop-state.ts). One TCP iteration is: socket, [options, bind], connect, send, getsockname,
 * then the close mode. An error before the connection is known established is reported as the
 * connect's (the kernel stores the connect's outcome in sk_err and the next call returns it).
 */
import { LoopState, type LoopConfig, type LoopHooks, type LoopResult } from './churn-loop-state.js';
import { runReuse } from './churn-loop-reuse.js';
import { runTcp } from './churn-loop-tcp.js';
import { runUdp } from './churn-loop-udp.js';

export type { LoopConfig, LoopFailure, LoopHooks, LoopProgress, LoopResult } from './churn-loop-state.js';

const MODES = { tcp: runTcp, udp: runUdp, reuse: runReuse } as const;

export function runLoop(cfg: LoopConfig, hooks: LoopHooks = {}): LoopResult {
  const state = new LoopState(cfg, hooks);
  try {
    MODES[cfg.mode](state);
  } finally {
    state.close();
  }
  return state.result();
}
