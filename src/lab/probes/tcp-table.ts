/**
 * The TCP socket table of the namespace this process runs in, read from /proc/self/net/tcp (the
 * kernel's own table, per network namespace). Runs inside a sandbox host via host.call. For
 * TIME_WAIT entries the kernel prints the time left on the timer (in USER_HZ ticks).
 */
import { readFile } from 'node:fs/promises';

/** Kernel TCP state numbers (include/net/tcp_states.h). */
const STATES: Record<number, string> = {
  1: 'ESTABLISHED',
  2: 'SYN_SENT',
  3: 'SYN_RECV',
  4: 'FIN_WAIT1',
  5: 'FIN_WAIT2',
  6: 'TIME_WAIT',
  7: 'CLOSE',
  8: 'CLOSE_WAIT',
  9: 'LAST_ACK',
  10: 'LISTEN',
  11: 'CLOSING',
  12: 'NEW_SYN_RECV',
};

/** USER_HZ: /proc prints timers in clock ticks of 1/100 s on every Linux architecture. */
const USER_HZ = 100;

export interface TcpEntry {
  state: string;
  localPort: number;
  remotePort: number;
  localAddress: string;
  remoteAddress: string;
  /** For TIME_WAIT: milliseconds left on the timer. */
  timerLeftMs: number | null;
}

function ipv4(hex: string): string {
  // The address is printed as the host-order value of the network-order word (little-endian here).
  const n = parseInt(hex, 16);
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join('.');
}

/** Parse the text of /proc/net/tcp. */
export function parseProcNetTcp(text: string): TcpEntry[] {
  const out: TcpEntry[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6) continue;
    const [la, lp] = f[1]!.split(':');
    const [ra, rp] = f[2]!.split(':');
    const st = parseInt(f[3]!, 16);
    const [tr, when] = f[5]!.split(':');
    const state = STATES[st] ?? `STATE_${st}`;
    out.push({
      state,
      localAddress: ipv4(la!),
      localPort: parseInt(lp!, 16),
      remoteAddress: ipv4(ra!),
      remotePort: parseInt(rp!, 16),
      timerLeftMs: state === 'TIME_WAIT' && tr === '03' ? (parseInt(when!, 16) * 1000) / USER_HZ : null,
    });
  }
  return out;
}

/** The IPv4 TCP table of this namespace. */
export async function tcpTable(): Promise<TcpEntry[]> {
  return parseProcNetTcp(await readFile('/proc/self/net/tcp', 'utf8'));
}

export interface StateCount {
  total: number;
  byState: Record<string, number>;
  /** TIME_WAIT sockets, and the longest and shortest time left on their timers. */
  timeWait: number;
  timeWaitMaxLeftMs: number | null;
  timeWaitMinLeftMs: number | null;
}

/**
 * Count sockets by state, optionally only those with this local or remote port. (One options
 * object: host.call appends `emit` as the last argument.)
 */
export async function countStates(opts: { port?: number } = {}): Promise<StateCount> {
  const port = typeof opts === 'object' ? opts.port : undefined;
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
