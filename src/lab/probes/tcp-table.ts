/**
 * The TCP socket table of the namespace this process runs in, through the census's sock_diag
 * dump (observe/sockdiag.ts: netlink, or /proc/net/tcp where netlink is denied). Runs inside a
 * sandbox host via remote(). For TIME_WAIT entries the kernel gives the time left on the timer.
 */
import { dumpTcp, type TcpSocketRecord } from '../../observe/sockdiag.js';
import { kernelStateName } from '../../observe/sockdiag-states.js';

/** The sock_diag timer number of TIME_WAIT (idiag_timer 3). */
const TIMER_TIME_WAIT = 3;

export interface TcpEntry {
  state: string;
  localPort: number;
  remotePort: number;
  localAddress: string;
  remoteAddress: string;
  /** For TIME_WAIT: milliseconds left on the timer. */
  timerLeftMs: number | null;
}

/** One socket of the dump as the lab reports it. */
export function entryOf(r: TcpSocketRecord): TcpEntry {
  const state = kernelStateName(r.stateNumber);
  return {
    state,
    localAddress: r.local.address,
    localPort: r.local.port,
    remoteAddress: r.remote.address,
    remotePort: r.remote.port,
    timerLeftMs: state === 'TIME_WAIT' && r.timer === TIMER_TIME_WAIT ? r.expiresMs : null,
  };
}

/** The TCP table (IPv4 and IPv6) of this namespace. */
export async function tcpTable(): Promise<TcpEntry[]> {
  return [...dumpTcp()].map(entryOf);
}

export interface StateCount {
  total: number;
  byState: Record<string, number>;
  /** TIME_WAIT sockets, and the longest and shortest time left on their timers. */
  timeWait: number;
  timeWaitMaxLeftMs: number | null;
  timeWaitMinLeftMs: number | null;
}

/** Count sockets by state, optionally only those with this local or remote port. */
export async function countStates(opts: { port?: number } = {}): Promise<StateCount> {
  const port = opts.port;
  const rows = (await tcpTable()).filter(
    (r) => port === undefined || r.localPort === port || r.remotePort === port,
  );
  const byState: Record<string, number> = {};
  for (const r of rows) byState[r.state] = (byState[r.state] ?? 0) + 1;
  const left = rows
    .filter((r) => r.state === 'TIME_WAIT' && r.timerLeftMs !== null)
    .map((r) => r.timerLeftMs!);
  return {
    total: rows.length,
    byState,
    timeWait: byState['TIME_WAIT'] ?? 0,
    timeWaitMaxLeftMs: left.length ? Math.max(...left) : null,
    timeWaitMinLeftMs: left.length ? Math.min(...left) : null,
  };
}
