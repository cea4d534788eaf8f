/**
 * The conntrack table of the caller's network namespace, summarised: entries by protocol and TCP
 * state, source-NAT ports in use per (NAT address, destination), and the statistics that show
 * trouble (insert_failed, drop, early_drop, ...). Read over ctnetlink (conntrack-netlink.ts);
 * where netlink is refused, from /proc/net/nf_conntrack and /proc/net/stat/nf_conntrack, and the
 * summary says so. Synchronous, in the calling thread's namespace, so a caller that setns()es into
 * another namespace reads that one.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { RunError } from '../common/errors.js';
import type { PortRange } from '../common/parse.js';
import { SyscallError } from '../sockets/errno.js';
import type { NetlinkSocket } from '../sockets/netlink.js';
import { dumpConntrack, emptyStats, openCtnetlink, readConntrackStats } from './conntrack-netlink.js';
import type { ConntrackEntry, ConntrackStats, ConntrackSummary, NatPorts } from './conntrack-types.js';
import { protocolName, sourceNatOf } from './conntrack-types.js';
import { OWN_PROC_NET } from './counters.js';
import { readSysctl } from './sysctl.js';

export type * from './conntrack-types.js';

export interface ConntrackOptions {
  /** 'auto' (default): netlink, else /proc; 'netlink' fails rather than fall back. */
  source?: 'auto' | 'netlink' | 'procfs';
  /** The source-NAT mapping's port range, when known (reported beside the ports in use). */
  natRange?: PortRange;
  /** Read another namespace's /proc files (a process's /proc/PID/net) instead of netlink here. */
  procNet?: string;
}

/**
 * The namespace's conntrack entry count from its statistics file (the `entries` column), cheap
 * enough to decide whether a table is worth reading; null where conntrack is absent.
 */
export function conntrackCount(procNet = OWN_PROC_NET): number | null {
  try {
    const [header, first] = readFileSync(`${procNet}/stat/nf_conntrack`, 'utf8').split('\n');
    const at = header!.trim().split(/\s+/).indexOf('entries');
    return at < 0 ? null : parseInt(first!.trim().split(/\s+/)[at]!, 16);
  } catch {
    return null;
  }
}

/** Refusals that mean "no ctnetlink for us here" rather than a broken read. */
const DENIED = new Set(['EPERM', 'EACCES', 'EPROTONOSUPPORT', 'EAFNOSUPPORT']);

/** Read and summarise this namespace's conntrack table and statistics. */
export function readConntrack(opts: ConntrackOptions = {}): ConntrackSummary {
  const summary = new Summariser(opts.natRange ?? null);
  const source = opts.procNet ? 'procfs' : (opts.source ?? 'auto');
  const procNet = opts.procNet ?? OWN_PROC_NET;
  let stats: ConntrackStats;
  let fallbackReason: string | undefined;
  if (source !== 'procfs') {
    let sock: NetlinkSocket | undefined;
    try {
      sock = openCtnetlink();
      dumpConntrack(sock, (e) => summary.add(e));
      stats = readConntrackStats(sock);
      return summary.result('netlink', stats);
    } catch (err) {
      if (!(err instanceof SyscallError && DENIED.has(err.code))) throw err;
      if (source === 'netlink') throw new RunError(`ctnetlink is denied here (${err.code})`);
      fallbackReason = `ctnetlink denied (${err.code})`;
      summary.reset();
    } finally {
      sock?.close();
    }
  }
  try {
    eachProcEntry(`${procNet}/nf_conntrack`, (e) => summary.add(e));
    stats = readProcStats(`${procNet}/stat/nf_conntrack`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new RunError(
      `conntrack: cannot read the table${fallbackReason ? ` (${fallbackReason}), nor /proc/net/nf_conntrack` : ' from /proc/net/nf_conntrack'} (${code})`,
    );
  }
  return summary.result('procfs', stats, fallbackReason, opts.procNet ? conntrackCount(procNet) : undefined);
}

class Summariser {
  private entries = 0;
  private byProtocol: Record<string, number> = {};
  private tcpByState: Record<string, number> = {};
  private nat = new Map<
    string,
    { protocol: string; natAddress: string; destination: string; ports: Set<number>; closed: Set<number> }
  >();

  constructor(private readonly range: PortRange | null) {}

  reset(): void {
    this.entries = 0;
    this.byProtocol = {};
    this.tcpByState = {};
    this.nat.clear();
  }

  add(e: ConntrackEntry): void {
    this.entries++;
    const proto = protocolName(e.protocol);
    this.byProtocol[proto] = (this.byProtocol[proto] ?? 0) + 1;
    if (e.state !== null) this.tcpByState[e.state] = (this.tcpByState[e.state] ?? 0) + 1;
    if (!sourceNatOf(e)) return;
    const host = e.family === 6 ? `[${e.orig.dst}]` : e.orig.dst;
    const destination = `${host}:${e.orig.dport}`;
    const key = `${proto} ${e.reply.dst} ${destination}`;
    let d = this.nat.get(key);
    if (!d) {
      d = { protocol: proto, natAddress: e.reply.dst, destination, ports: new Set(), closed: new Set() };
      this.nat.set(key, d);
    }
    d.ports.add(e.reply.dport);
    if (e.state === 'TIME_WAIT' || e.state === 'CLOSE') d.closed.add(e.reply.dport);
  }

  /** `count`: the namespace's own, when read from another namespace's files (else its sysctl here). */
  result(
    source: 'netlink' | 'procfs',
    stats: ConntrackStats,
    fallbackReason?: string,
    count?: number | null,
  ): ConntrackSummary {
    const natPorts: NatPorts[] = [...this.nat.values()].map((d) => {
      let lowestPort = 65535;
      let highestPort = 0;
      for (const p of d.ports) {
        if (p < lowestPort) lowestPort = p;
        if (p > highestPort) highestPort = p;
      }
      return {
        protocol: d.protocol,
        natAddress: d.natAddress,
        destination: d.destination,
        portsUsed: d.ports.size,
        closed: d.closed.size,
        lowestPort,
        highestPort,
        range: this.range,
        rangeSize: this.range ? this.range.high - this.range.low + 1 : null,
      };
    });
    natPorts.sort((a, b) => b.portsUsed - a.portsUsed);
    const num = (key: string): number | null => {
      const v = readSysctl(key);
      return v === undefined ? null : Number(v);
    };
    return {
      source,
      ...(fallbackReason ? { fallbackReason } : {}),
      entries: this.entries,
      count: count === undefined ? num('net.netfilter.nf_conntrack_count') : count,
      max: num('net.netfilter.nf_conntrack_max'),
      byProtocol: this.byProtocol,
      tcpByState: this.tcpByState,
      natPorts,
      stats,
    };
  }
}

/**
 * /proc/net/nf_conntrack lines (net/netfilter/nf_conntrack_standalone.c, ct_seq_show):
 *   ipv4 2 tcp 6 119 TIME_WAIT src=A dst=B sport=P dport=Q src=B dst=N sport=Q dport=R [ASSURED] ...
 * family name and number, protocol name and number, seconds left, the TCP state (TCP only), then
 * the original and the reply tuple as key=value. Read in 64 KiB chunks.
 */
export function eachProcEntry(path: string, visit: (e: ConntrackEntry) => void): void {
  const fd = openSync(path, 'r');
  try {
    const chunk = Buffer.allocUnsafe(64 * 1024);
    let rest = '';
    for (let n; (n = readSync(fd, chunk, 0, chunk.length, null)) > 0;) {
      const lines = (rest + chunk.toString('latin1', 0, n)).split('\n');
      rest = lines.pop()!;
      for (const line of lines) parseProcLine(line, visit);
    }
    parseProcLine(rest, visit);
  } finally {
    closeSync(fd);
  }
}

function parseProcLine(line: string, visit: (e: ConntrackEntry) => void): void {
  const f = line.trim().split(/\s+/);
  if (f.length < 6) return;
  const protocol = Number(f[3]);
  const tuples: Array<{ src: string; dst: string; sport: number; dport: number }> = [];
  let state: string | null = null;
  for (let i = 5; i < f.length; i++) {
    const eq = f[i]!.indexOf('=');
    if (eq < 0) {
      if (i === 5 && protocol === 6) state = f[i]!;
      continue;
    }
    const key = f[i]!.slice(0, eq);
    const value = f[i]!.slice(eq + 1);
    if (key === 'src') tuples.push({ src: value, dst: '', sport: 0, dport: 0 });
    const t = tuples[tuples.length - 1];
    if (!t || tuples.length > 2) continue;
    if (key === 'dst') t.dst = value;
    else if (key === 'sport') t.sport = Number(value);
    else if (key === 'dport') t.dport = Number(value);
  }
  if (tuples.length < 2) return;
  visit({
    family: f[1] === '10' ? 6 : 4,
    protocol,
    state,
    timeoutS: Number(f[4]),
    orig: tuples[0]!,
    reply: tuples[1]!,
  });
}

/** /proc/net/stat/nf_conntrack column -> ConntrackStats field (ct_cpu_seq_show's header). */
const PROC_STATS: Record<string, keyof ConntrackStats> = {
  found: 'found',
  invalid: 'invalid',
  insert: 'insert',
  insert_failed: 'insertFailed',
  drop: 'drop',
  early_drop: 'earlyDrop',
  icmp_error: 'error',
  search_restart: 'searchRestart',
  clashres: 'clashResolve',
  chainlength: 'chainTooLong',
};

/** A header row of names, then one row of hex counters per CPU: summed over the CPUs. */
export function readProcStats(path: string): ConntrackStats {
  const [header, ...rows] = readFileSync(path, 'utf8').trim().split('\n');
  const names = header!.trim().split(/\s+/);
  const sum = emptyStats();
  for (const row of rows) {
    row
      .trim()
      .split(/\s+/)
      .forEach((hex, i) => {
        const key = PROC_STATS[names[i]!];
        if (key) sum[key] += parseInt(hex, 16);
      });
  }
  return sum;
}
