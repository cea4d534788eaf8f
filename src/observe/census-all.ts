/**
 * The census of many network namespaces: each one read from inside (sockets/netns.ts: the calling
 * thread enters it, opens its sock_diag socket and reads its own sysctls and counters, and
 * returns), or, where entering is not allowed, from /proc/PID/net of one of its processes.
 *
 * Each namespace keeps its own port range and tcp_tw_reuse: the forecast (seconds to exhaustion)
 * is computed against the range of that namespace, never twlab's own, except in the /proc
 * fallback, where the namespace's sysctls cannot be read and the document says the range is
 * assumed.
 */
import { messageOf } from '../common/errors.js';
import {
  censusFilter,
  takeCensus,
  type CensusOptions,
  type CensusResult,
  type PressureEntry,
} from './census.js';
import { ephemeralPorts, readSysctls } from './sysctl.js';
import type { NetnsInfo } from './namespaces.js';
import { readNetns, type SkippedNetns } from './netns-read.js';

export type { SkippedNetns };

/** The sysctls of a namespace that decide when its clients run out of ports. */
export const NETNS_SYSCTLS = [
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_tw_reuse',
  'net.ipv4.tcp_tw_reuse_delay',
  'net.ipv4.tcp_max_tw_buckets',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_timestamps',
] as const;

/** How a namespace's table was read. */
export type NetnsAccess = 'setns' | 'procfs';

/** Who a namespace is, as every per-namespace document (census, doctor) carries it. */
export interface NetnsIdentity {
  /** self: twlab's own; host: the host's initial namespace. */
  netns: { inode: number; self: boolean; host: boolean; mounts: string[] };
  processes: NetnsInfo['processes'];
  processCount: number;
  owner: NetnsInfo['owner'];
}

export function describeNetns(ns: NetnsInfo): NetnsIdentity {
  return {
    netns: { inode: ns.inode, self: ns.self, host: ns.host, mounts: ns.mounts },
    processes: ns.processes,
    processCount: ns.processCount,
    owner: ns.owner,
  };
}

/** The census of one namespace: today's census document plus who and what it is. */
export interface NetnsCensus extends CensusResult, NetnsIdentity {
  /** The namespace's own values of NETNS_SYSCTLS (those this kernel has); null where unreadable. */
  sysctls: Record<string, string> | null;
  access: NetnsAccess;
  /** The /proc fallback could not read the namespace's sysctls: portRange is twlab's own. */
  portRangeAssumed?: true;
  /** The entry most at risk: soonest exhausted, else the largest share of the range held. */
  worst: PressureEntry | null;
}

export interface HostCensus {
  namespaces: NetnsCensus[];
  host: {
    /** Namespaces found by discovery. */
    seen: number;
    read: number;
    skipped: SkippedNetns[];
    /** Namespaces left unread because the time budget (`budgetMs`) ran out; absent without one. */
    overBudget?: number;
    /** Over every namespace read: sockets, per state, TIME-WAIT. */
    totals: { total: number; byState: Record<string, number>; timeWait: number };
  };
  filter: CensusResult['filter'];
}

type Options = Omit<CensusOptions, 'ports' | 'procNet'>;

/** The census of one namespace, or why it could not be taken. */
export function censusOfNetns(ns: NetnsInfo, opts: Options = {}): NetnsCensus | SkippedNetns {
  const r = readNetns(ns, () => ({ census: takeCensus(opts), sysctls: readSysctls(NETNS_SYSCTLS) }));
  if (r.ok) return describe(ns, r.value.census, r.value.sysctls, 'setns');
  return r.skipped.reason === 'denied' ? fromProcfs(ns, opts, r.skipped.message) : r.skipped;
}

/** Without setns: /proc/PID/net of one of its processes, with twlab's own port range. */
function fromProcfs(ns: NetnsInfo, opts: Options, denied: string): NetnsCensus | SkippedNetns {
  let lastError = '';
  for (const { pid } of ns.processes) {
    try {
      const census = takeCensus({ ...opts, procNet: `/proc/${pid}/net`, ports: ephemeralPorts() });
      census.fallbackReason = `${denied}; read /proc/${pid}/net/tcp{,6} instead, sysctls unreadable`;
      return { ...describe(ns, census, null, 'procfs'), portRangeAssumed: true };
    } catch (err) {
      lastError = messageOf(err);
    }
  }
  const tried = ns.processes.length ? `; /proc/PID/net: ${lastError}` : '; no process to read through';
  return { inode: ns.inode, owner: ns.owner, reason: 'denied', message: `${denied}${tried}` };
}

function describe(
  ns: NetnsInfo,
  census: CensusResult,
  sysctls: Record<string, string> | null,
  access: NetnsAccess,
): NetnsCensus {
  return {
    ...describeNetns(ns),
    ...census,
    sysctls,
    access,
    worst: worstOf(census.pressure),
  };
}

function isSkipped(r: NetnsCensus | SkippedNetns): r is SkippedNetns {
  return 'reason' in r;
}

/** Soonest exhausted first; then the largest share of the range held. */
function worstOf(pressure: readonly PressureEntry[]): PressureEntry | null {
  let worst: PressureEntry | null = null;
  for (const p of pressure) if (!worst || compareRisk(p, worst) < 0) worst = p;
  return worst;
}

/** Negative when a is more at risk than b. */
function compareRisk(a: PressureEntry | null, b: PressureEntry | null): number {
  const ta = a?.secondsToExhaustion ?? Infinity;
  const tb = b?.secondsToExhaustion ?? Infinity;
  if (ta !== tb) return ta < tb ? -1 : 1;
  return (b?.ratio ?? 0) - (a?.ratio ?? 0);
}

/** Censuses most at risk first: soonest exhaustion, largest share held, most TIME-WAIT. */
export function byRisk(a: CensusResult, b: CensusResult): number {
  return (
    compareRisk(worstOf(a.pressure), worstOf(b.pressure)) ||
    b.timeWait.count - a.timeWait.count ||
    b.total - a.total
  );
}

/**
 * The census of every namespace given (discovery's list), most at risk first. With `budgetMs`,
 * no namespace after the first is started once that many milliseconds have passed (a server that
 * reads on its request thread stays responsive); the rest are counted in `overBudget`.
 */
export function takeHostCensus(
  namespaces: readonly NetnsInfo[],
  opts: Options & { budgetMs?: number } = {},
): HostCensus {
  const { budgetMs, ...censusOpts } = opts;
  const read: NetnsCensus[] = [];
  const skippedList: SkippedNetns[] = [];
  const start = performance.now();
  let done = 0;
  for (const ns of namespaces) {
    if (budgetMs !== undefined && done > 0 && performance.now() - start > budgetMs) break;
    done++;
    const r = censusOfNetns(ns, censusOpts);
    if (isSkipped(r)) skippedList.push(r);
    else read.push(r);
  }
  read.sort((a, b) => byRisk(a, b) || a.netns.inode - b.netns.inode);
  const byState: Record<string, number> = {};
  let total = 0;
  let timeWait = 0;
  for (const c of read) {
    total += c.total;
    timeWait += c.timeWait.count;
    for (const [s, n] of Object.entries(c.byState)) byState[s] = (byState[s] ?? 0) + n;
  }
  return {
    namespaces: read,
    host: {
      seen: namespaces.length,
      read: read.length,
      skipped: skippedList,
      ...(budgetMs !== undefined ? { overBudget: namespaces.length - done } : {}),
      totals: { total, byState, timeWait },
    },
    filter: censusFilter(censusOpts),
  };
}
