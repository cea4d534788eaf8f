/**
 * ctnetlink (NETLINK_NETFILTER, subsystem NFNL_SUBSYS_CTNETLINK): the conntrack table and the
 * per-cpu statistics of the caller's network namespace, as `conntrack -L` and `conntrack -S`
 * read them. Layouts: include/uapi/linux/netfilter/nfnetlink.h (struct nfgenmsg),
 * nfnetlink_conntrack.h (CTA_* attributes), nf_conntrack_tcp.h (TCP states); the kernel side is
 * net/netfilter/nf_conntrack_netlink.c (ctnetlink_dump_table, ctnetlink_ct_stat_cpu_dump).
 * Attributes are nlattr (u16 len, u16 type, 4-byte aligned), nested ones flagged NLA_F_NESTED;
 * addresses, ports, status, timeout and the statistics are big-endian.
 */
import { NETLINK_NETFILTER, NetlinkSocket } from '../sockets/netlink.js';
import type { ConntrackEntry, ConntrackStats, Tuple } from './conntrack-types.js';
import { TCP_CT_STATES } from './conntrack-types.js';
import { addressAt } from './sockdiag.js';

export const NFNL_SUBSYS_CTNETLINK = 1;
const IPCTNL_MSG_CT_GET = 1;
const IPCTNL_MSG_CT_GET_STATS_CPU = 4;
const NFGENMSG_LEN = 4;
const AF_UNSPEC = 0;
const NLA_TYPE_MASK = 0x3fff;

// enum ctattr_type
const CTA_TUPLE_ORIG = 1;
const CTA_TUPLE_REPLY = 2;
const CTA_PROTOINFO = 4;
const CTA_TIMEOUT = 7;
// enum ctattr_tuple, ctattr_ip, ctattr_l4proto
const CTA_TUPLE_IP = 1;
const CTA_TUPLE_PROTO = 2;
const CTA_IP_V4_SRC = 1;
const CTA_IP_V4_DST = 2;
const CTA_IP_V6_SRC = 3;
const CTA_IP_V6_DST = 4;
const CTA_PROTO_NUM = 1;
const CTA_PROTO_SRC_PORT = 2;
const CTA_PROTO_DST_PORT = 3;
// enum ctattr_protoinfo, ctattr_protoinfo_tcp
const CTA_PROTOINFO_TCP = 1;
const CTA_PROTOINFO_TCP_STATE = 1;

/** enum ctattr_stats_cpu -> ConntrackStats field (the "no longer used" ones left out). */
const STATS: Record<number, keyof ConntrackStats> = {
  2: 'found',
  4: 'invalid',
  8: 'insert',
  9: 'insertFailed',
  10: 'drop',
  11: 'earlyDrop',
  12: 'error',
  13: 'searchRestart',
  14: 'clashResolve',
  15: 'chainTooLong',
};

export function openCtnetlink(): NetlinkSocket {
  return NetlinkSocket.open(NETLINK_NETFILTER);
}

/** Each attribute in [start, end): visit(type without flags, payload offset, payload length). */
function eachAttr(
  buf: Buffer,
  start: number,
  end: number,
  visit: (t: number, at: number, len: number) => void,
): void {
  for (let off = start; off + 4 <= end;) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > end) return;
    visit(buf.readUInt16LE(off + 2) & NLA_TYPE_MASK, off + 4, len - 4);
    off += (len + 3) & ~3;
  }
}

function tupleAt(buf: Buffer, start: number, end: number): Tuple & { protocol: number } {
  const t = { src: '', dst: '', sport: 0, dport: 0, protocol: 0 };
  eachAttr(buf, start, end, (type, at, len) => {
    if (type === CTA_TUPLE_IP) {
      eachAttr(buf, at, at + len, (ipType, a, l) => {
        if (ipType === CTA_IP_V4_SRC || ipType === CTA_IP_V6_SRC) t.src = addressAt(buf, a, l === 4 ? 4 : 6);
        else if (ipType === CTA_IP_V4_DST || ipType === CTA_IP_V6_DST)
          t.dst = addressAt(buf, a, l === 4 ? 4 : 6);
      });
    } else if (type === CTA_TUPLE_PROTO) {
      eachAttr(buf, at, at + len, (pType, a) => {
        if (pType === CTA_PROTO_NUM) t.protocol = buf[a]!;
        else if (pType === CTA_PROTO_SRC_PORT) t.sport = buf.readUInt16BE(a);
        else if (pType === CTA_PROTO_DST_PORT) t.dport = buf.readUInt16BE(a);
      });
    }
  });
  return t;
}

/**
 * One ctnetlink conntrack message's payload (struct nfgenmsg, then CTA_* attributes) as an entry:
 * what a dump lists and what an event (conntrack-events.ts) carries. Undefined without both tuples.
 */
export function entryAt(buf: Buffer, at: number, len: number): ConntrackEntry | undefined {
  const family = buf[at] === 10 ? 6 : 4;
  let orig: (Tuple & { protocol: number }) | undefined;
  let reply: Tuple | undefined;
  let state: string | null = null;
  let timeoutS = 0;
  eachAttr(buf, at + NFGENMSG_LEN, at + len, (type2, a, l) => {
    if (type2 === CTA_TUPLE_ORIG) orig = tupleAt(buf, a, a + l);
    else if (type2 === CTA_TUPLE_REPLY) reply = tupleAt(buf, a, a + l);
    else if (type2 === CTA_TIMEOUT) timeoutS = buf.readUInt32BE(a);
    else if (type2 === CTA_PROTOINFO) {
      eachAttr(buf, a, a + l, (pi, pa, pl) => {
        if (pi !== CTA_PROTOINFO_TCP) return;
        eachAttr(buf, pa, pa + pl, (ti, ta) => {
          if (ti === CTA_PROTOINFO_TCP_STATE) state = TCP_CT_STATES[buf[ta]!] ?? `STATE_${buf[ta]}`;
        });
      });
    }
  });
  if (!orig || !reply) return undefined;
  const { protocol, ...o } = orig;
  return { family, protocol, state, timeoutS, orig: o, reply };
}

/** Dump every conntrack entry of this namespace (both families), one visit per entry. */
export function dumpConntrack(sock: NetlinkSocket, visit: (e: ConntrackEntry) => void): void {
  const req = Buffer.alloc(NFGENMSG_LEN); // nfgen_family AF_UNSPEC (all), version 0, res_id 0
  req[0] = AF_UNSPEC;
  const type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
  sock.dump(type, req, 'ctnetlink conntrack dump', (t, buf, at, len) => {
    if (t >> 8 !== NFNL_SUBSYS_CTNETLINK) return;
    const e = entryAt(buf, at, len);
    if (e) visit(e);
  });
}

/** The per-cpu statistics of this namespace, summed over CPUs (as `conntrack -S` lists them). */
export function readConntrackStats(sock: NetlinkSocket): ConntrackStats {
  const sum: ConntrackStats = emptyStats();
  const type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET_STATS_CPU;
  sock.dump(type, Buffer.alloc(NFGENMSG_LEN), 'ctnetlink statistics dump', (t, buf, at, len) => {
    if (t >> 8 !== NFNL_SUBSYS_CTNETLINK) return;
    eachAttr(buf, at + NFGENMSG_LEN, at + len, (st, a, l) => {
      const key = STATS[st];
      if (key && l >= 4) sum[key] += buf.readUInt32BE(a);
    });
  });
  return sum;
}

export function emptyStats(): ConntrackStats {
  return {
    found: 0,
    invalid: 0,
    insert: 0,
    insertFailed: 0,
    drop: 0,
    earlyDrop: 0,
    error: 0,
    searchRestart: 0,
    clashResolve: 0,
    chainTooLong: 0,
  };
}
