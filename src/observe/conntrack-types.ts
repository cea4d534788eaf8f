/** The conntrack reader's data: one entry, the statistics, and the summary `readConntrack` returns. */
import type { PortRange } from '../common/parse.js';

/** One direction of a connection as conntrack keys it. */
export interface Tuple {
  src: string;
  dst: string;
  /** 0 for protocols without ports. */
  sport: number;
  dport: number;
}

export interface ConntrackEntry {
  family: 4 | 6;
  /** IP protocol number (6 TCP, 17 UDP, 1 ICMP, ...). */
  protocol: number;
  /** TCP only: conntrack's state name (TIME_WAIT, ESTABLISHED, ...). */
  state: string | null;
  /** Seconds until the entry expires. */
  timeoutS: number;
  /** As the first packet went (client -> server, before NAT). */
  orig: Tuple;
  /** As the replies come back (server -> the NAT address and port). */
  reply: Tuple;
}

/** enum tcp_conntrack (nf_conntrack_tcp.h), in the names conntrack -L and /proc print. */
export const TCP_CT_STATES = [
  'NONE',
  'SYN_SENT',
  'SYN_RECV',
  'ESTABLISHED',
  'FIN_WAIT',
  'CLOSE_WAIT',
  'LAST_ACK',
  'TIME_WAIT',
  'CLOSE',
  'SYN_SENT2',
] as const;

/** The namespace's conntrack statistics summed over CPUs (conntrack -S, /proc/net/stat/nf_conntrack). */
export interface ConntrackStats {
  found: number;
  invalid: number;
  insert: number;
  insertFailed: number;
  drop: number;
  earlyDrop: number;
  error: number;
  searchRestart: number;
  clashResolve: number;
  chainTooLong: number;
}

/** Source-NAT ports in use towards one destination from one NAT address. */
export interface NatPorts {
  protocol: string;
  /** The address the NAT put as source (the reply tuple's destination). */
  natAddress: string;
  /** "203.0.113.2:8080" (the original destination). */
  destination: string;
  /** Distinct NAT ports held by entries of any state. */
  portsUsed: number;
  /**
   * Of these, held by closed TCP connections (TIME_WAIT or CLOSE): on 6.18 a new connection may
   * be given such a port (measured), so they limit less than open ones, but the server may still
   * hold TIME_WAIT for the same 4-tuple.
   */
  closed: number;
  lowestPort: number;
  highestPort: number;
  /** The mapping's range when the caller knows it, and how many ports it has. */
  range: PortRange | null;
  rangeSize: number | null;
}

export interface ConntrackSummary {
  /** Where it was read: ctnetlink, or the /proc files when netlink was refused. */
  source: 'netlink' | 'procfs';
  fallbackReason?: string;
  /** Entries listed, and the namespace's own count (net.netfilter.nf_conntrack_count). */
  entries: number;
  count: number | null;
  /** nf_conntrack_max: one kernel-wide limit, shared by every namespace. */
  max: number | null;
  byProtocol: Record<string, number>;
  /** TCP entries by conntrack state. */
  tcpByState: Record<string, number>;
  /** Busiest first. */
  natPorts: NatPorts[];
  stats: ConntrackStats;
}

/** IP protocol numbers conntrack shows, by the names conntrack -L prints. */
export const PROTOCOLS: Record<number, string> = {
  1: 'icmp',
  6: 'tcp',
  17: 'udp',
  33: 'dccp',
  47: 'gre',
  58: 'icmpv6',
  132: 'sctp',
};
export const protocolName = (n: number): string => PROTOCOLS[n] ?? `proto-${n}`;

/**
 * The source NAT of an entry: the address and port its replies come back to, when they differ
 * from what the client sent from; null for an entry without ports or without source NAT.
 * (Inferred from the tuples, so ctnetlink and /proc, which lacks the status bits, agree.)
 */
export function sourceNatOf(e: ConntrackEntry): { address: string; port: number } | null {
  if (e.orig.dport === 0 || (e.orig.src === e.reply.dst && e.orig.sport === e.reply.dport)) return null;
  return { address: e.reply.dst, port: e.reply.dport };
}
