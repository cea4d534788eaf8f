/**
 * The kernel's TCP socket table, read with netlink sock_diag the way `ss` reads it (one
 * TCPDIAG_GETSOCK dump for both families where the kernel has it, else a SOCK_DIAG_BY_FAMILY dump
 * of struct inet_diag_req_v2 per family). The kernel filters by state (idiag_states);
 * records are visited one datagram at a time from one reused buffer, so a dump of 200,000
 * sockets never exists as one string or array. Where netlink is denied, /proc/net/tcp{,6} is
 * read instead (procfs.ts), through the same record layout, and the dump says so.
 *
 * Layouts (include/uapi/linux/inet_diag.h, sock_diag.h):
 *   inet_diag_req_v2: u8 family, u8 protocol, u8 ext, u8 pad, u32 states, inet_diag_sockid id
 *   inet_diag_sockid: be16 sport, be16 dport, be32 src[4], be32 dst[4], u32 if, u32 cookie[2]
 *   inet_diag_msg:    u8 family, u8 state, u8 timer, u8 retrans, sockid (48 bytes),
 *                     u32 expires (ms), u32 rqueue, u32 wqueue, u32 uid, u32 inode  (72 bytes)
 * Ports and addresses are network byte order; expires, queues, uid and inode host order.
 */
import { AF_INET, AF_INET6, IPPROTO_TCP } from '../sockets/constants.js';
import { SyscallError } from '../sockets/errno.js';
import { bytesToIpv6 } from '../sockets/sockaddr.js';
import {
  NetlinkSocket,
  NETLINK_SOCK_DIAG,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
} from '../sockets/netlink.js';
import { RunError } from '../common/errors.js';
import { procNetTcpPuller } from './procfs.js';
import { DIAG, wordsOf, type RecordPuller, type RecordVisitor } from './sockdiag-layout.js';
import { stateMask, tcpStateName, type TcpStateName } from './sockdiag-states.js';

export const SOCK_DIAG_BY_FAMILY = 20;
const TCPDIAG_GETSOCK = 18;
const REQ_LEN = 56;
const REQ_V1_LEN = 60;

export { DIAG, type RecordPuller, type RecordVisitor };

export type DumpSource = 'netlink' | 'procfs';

export interface Endpoint {
  address: string;
  port: number;
}

/** One socket of the table, decoded. */
export interface TcpSocketRecord {
  family: 4 | 6;
  /** Kernel state number (tcp_states.h). */
  stateNumber: number;
  /** ss's name for the state: 'TIME-WAIT', 'ESTAB', ... */
  state: TcpStateName;
  local: Endpoint;
  remote: Endpoint;
  /** Time left on the socket's active timer in ms (for TIME-WAIT: until it leaves the table). */
  expiresMs: number;
  /** Which timer: 0 none, 1 retransmit, 2 keepalive, 3 TIME_WAIT, 4 zero-window probe. */
  timer: number;
  rqueue: number;
  wqueue: number;
  uid: number;
  inode: number;
}

export interface DumpOptions {
  /** Kernel state numbers to dump (sockdiag-states.ts); all but BOUND_INACTIVE when omitted. */
  states?: readonly number[];
  /** 4 or 6; both when omitted. */
  family?: 4 | 6;
  /**
   * 'auto' (default): netlink, or /proc/net/tcp{,6} where netlink is denied (EPERM, EACCES,
   * EPROTONOSUPPORT, EAFNOSUPPORT). 'procfs' forces the fallback (tests, benchmarks).
   */
  source?: 'auto' | DumpSource;
  /**
   * Read /proc/net/tcp{,6} of this directory instead (implies source 'procfs'): /proc/PID/net is
   * another process's namespace, readable without entering it where twlab may ptrace PID.
   */
  procNet?: string;
}

/** A dump whose source is decided at open time; iterate it once (records or scan). */
export interface TcpDump extends Iterable<TcpSocketRecord> {
  readonly source: DumpSource;
  /** Why netlink was not used, when source is 'procfs' because of a denial. */
  readonly fallbackReason?: string;
  /** Visit raw records (the fast path census uses); returns the number visited. */
  scan(visit: RecordVisitor): number;
  /** Give the dump up unread (its socket closed); it cannot be iterated afterwards. */
  close(): void;
}

const DENIED = new Set(['EPERM', 'EACCES', 'EPROTONOSUPPORT', 'EAFNOSUPPORT']);

/** Shared receive buffer: dump datagrams are at most a few pages; MSG_TRUNC guards the size. */
let recvBuffer: Buffer | undefined;

/** Open a dump of the TCP table (see TcpDump). */
export function openTcpDump(opts: DumpOptions = {}): TcpDump {
  const mask = stateMask(opts.states);
  const families: (4 | 6)[] = opts.family ? [opts.family] : [4, 6];
  const source = opts.source ?? 'auto';
  if (source === 'procfs' || opts.procNet) return procfsDump(families, mask, undefined, opts.procNet);
  let sock: NetlinkSocket;
  try {
    sock = NetlinkSocket.open(NETLINK_SOCK_DIAG);
  } catch (err) {
    if (err instanceof SyscallError && DENIED.has(err.code)) {
      if (source === 'netlink') throw new RunError(`netlink sock_diag is denied here (${err.code})`);
      return procfsDump(families, mask, `netlink sock_diag denied (${err.code})`);
    }
    throw err;
  }
  return netlinkDump(sock, families, mask);
}

/** Convenience: the decoded records of a dump. */
export function dumpTcp(opts: DumpOptions = {}): TcpDump {
  return openTcpDump(opts);
}

function procfsDump(
  families: (4 | 6)[],
  mask: number,
  fallbackReason: string | undefined,
  procNet?: string,
): TcpDump {
  const pullers = families.map((f) => () => procNetTcpPuller(f, mask, procNet));
  return fromPullers('procfs', pullers, fallbackReason);
}

function netlinkDump(sock: NetlinkSocket, families: (4 | 6)[], mask: number): TcpDump {
  const requests =
    families.length === 2 && oneWalkDumps(sock)
      ? [bothFamiliesRequest(mask)]
      : families.map((f) => familyRequest(f, mask));
  const pullers = requests.map((req, i) => () => netlinkPuller(sock, req, i + 1));
  return fromPullers('netlink', pullers, undefined, () => sock.close());
}

/** A dump request: its nlmsghdr type and payload, and what errors should call it. */
interface DumpRequest {
  type: number;
  payload: Buffer;
  what: string;
  /** IPv6 only: ENOENT or EAFNOSUPPORT means no IPv6 here, an empty dump. */
  v6Only: boolean;
}

/** struct inet_diag_req_v2 for one family (SOCK_DIAG_BY_FAMILY). */
function familyRequest(family: 4 | 6, mask: number): DumpRequest {
  const payload = Buffer.alloc(REQ_LEN);
  payload[0] = family === 4 ? AF_INET : AF_INET6;
  payload[1] = IPPROTO_TCP;
  payload.writeUInt32LE(mask >>> 0, 4);
  return {
    type: SOCK_DIAG_BY_FAMILY,
    payload,
    what: `dump of AF_INET${family === 6 ? '6' : ''}`,
    v6Only: family === 6,
  };
}

/**
 * struct inet_diag_req (TCPDIAG_GETSOCK), the request ss used before SOCK_DIAG_BY_FAMILY. The
 * kernel answers it with ONE walk of the TCP hash tables for both families
 * (inet_diag_dump_compat() sets sdiag_family to AF_UNSPEC), where SOCK_DIAG_BY_FAMILY needs a walk
 * per family; measured here with 100,000 IPv4 TIME_WAIT sockets, the AF_INET6 walk alone took
 * 10-17 ms to skip them all. Layout: u8 family, u8 src_len, u8 dst_len, u8 ext,
 * inet_diag_sockid id (48 bytes), u32 states, u32 dbs.
 */
function bothFamiliesRequest(mask: number): DumpRequest {
  const payload = Buffer.alloc(REQ_V1_LEN);
  payload[0] = AF_INET;
  payload.writeUInt32LE(mask >>> 0, 52);
  return { type: TCPDIAG_GETSOCK, payload, what: 'dump of TCP (TCPDIAG_GETSOCK)', v6Only: false };
}

let oneWalk: boolean | undefined;

/**
 * Whether this kernel still answers TCPDIAG_GETSOCK: asked once per process with an empty state
 * mask (the kernel walks nothing and answers NLMSG_DONE, or NLMSG_ERROR where it is gone).
 */
function oneWalkDumps(sock: NetlinkSocket): boolean {
  if (oneWalk === undefined) {
    const probe = netlinkPuller(sock, bothFamiliesRequest(0), 0);
    try {
      for (let i = 0; i < 100 && probe.pull(() => undefined); i++);
      oneWalk = true;
    } catch (err) {
      if (!(err instanceof SyscallError)) throw err;
      oneWalk = false;
    }
  }
  return oneWalk;
}

/** One dump, pulled a datagram at a time. */
function netlinkPuller(sock: NetlinkSocket, req: DumpRequest, seq: number): RecordPuller {
  const msg = Buffer.alloc(NLMSG_HDRLEN + req.payload.length);
  msg.writeUInt32LE(msg.length, 0);
  msg.writeUInt16LE(req.type, 4);
  msg.writeUInt16LE(NLM_F_REQUEST | NLM_F_DUMP, 6);
  msg.writeUInt32LE(seq, 8);
  req.payload.copy(msg, NLMSG_HDRLEN);
  sock.send(msg);

  // Unpooled, so records are 4-byte aligned in memory (RecordVisitor).
  const buf = (recvBuffer ??= Buffer.allocUnsafeSlow(256 * 1024));
  const words = wordsOf(buf);
  let done = false;
  let count = 0;
  return {
    close: () => undefined,
    get count() {
      return count;
    },
    pull(visit) {
      if (done) return false;
      const n = sock.recv(buf);
      let off = 0;
      while (off + NLMSG_HDRLEN <= n) {
        // nlmsghdr, host order: u32 len, u16 type, u16 flags (messages are 4-byte aligned).
        const len = words[off >> 2]! >>> 0;
        const type = words[(off >> 2) + 1]! & 0xffff;
        if (len < NLMSG_HDRLEN || off + len > n) throw new Error(`malformed netlink message (len ${len})`);
        if (type === NLMSG_DONE) {
          done = true;
          return false;
        }
        if (type === NLMSG_ERROR) {
          const errno = -buf.readInt32LE(off + NLMSG_HDRLEN);
          if (errno !== 0) {
            done = true;
            const err = new SyscallError('sock_diag', errno, req.what);
            // No IPv6 in this kernel/namespace: nothing to list.
            if (req.v6Only && (err.code === 'ENOENT' || err.code === 'EAFNOSUPPORT')) return false;
            throw err;
          }
        } else if (type === req.type && len >= NLMSG_HDRLEN + DIAG.size) {
          visit(buf, off + NLMSG_HDRLEN);
          count++;
        }
        off += (len + 3) & ~3;
      }
      return true;
    },
  };
}

/** Chain per-family pullers into a TcpDump (each family's request is sent when reached). */
function fromPullers(
  source: DumpSource,
  pullers: (() => RecordPuller)[],
  fallbackReason: string | undefined,
  finish: () => void = () => undefined,
): TcpDump {
  let used = false;
  const claim = (): void => {
    if (used) throw new Error('a TcpDump can be iterated once; open another');
    used = true;
  };
  // Bounded: 10 million chunks is far beyond any table (a chunk holds hundreds of records).
  const MAX_CHUNKS = 10_000_000;
  const scan = (visit: RecordVisitor): number => {
    claim();
    let count = 0;
    try {
      for (const make of pullers) {
        const p = make();
        try {
          for (let i = 0; i < MAX_CHUNKS && p.pull(visit); i++);
          count += p.count;
        } finally {
          p.close();
        }
      }
    } finally {
      finish();
    }
    return count;
  };
  const close = (): void => {
    claim();
    finish();
  };
  function* records(): Generator<TcpSocketRecord> {
    claim();
    const batch: TcpSocketRecord[] = [];
    const collect: RecordVisitor = (b, o) => void batch.push(decodeRecord(b, o));
    try {
      for (const make of pullers) {
        const p = make();
        try {
          for (let i = 0; i < MAX_CHUNKS; i++) {
            const more = p.pull(collect);
            yield* batch;
            batch.length = 0;
            if (!more) break;
          }
        } finally {
          p.close();
        }
      }
    } finally {
      finish();
    }
  }
  return {
    source,
    ...(fallbackReason ? { fallbackReason } : {}),
    scan,
    close,
    [Symbol.iterator]: records,
  };
}

/** Decode the inet_diag_msg at `off` into a plain object. */
export function decodeRecord(buf: Buffer, off: number): TcpSocketRecord {
  const family = buf[off + DIAG.family] === AF_INET6 ? 6 : 4;
  const stateNumber = buf[off + DIAG.state]!;
  return {
    family,
    stateNumber,
    state: tcpStateName(stateNumber),
    local: { address: addressAt(buf, off + DIAG.src, family), port: buf.readUInt16BE(off + DIAG.sport) },
    remote: { address: addressAt(buf, off + DIAG.dst, family), port: buf.readUInt16BE(off + DIAG.dport) },
    expiresMs: buf.readUInt32LE(off + DIAG.expires),
    timer: buf[off + DIAG.timer]!,
    rqueue: buf.readUInt32LE(off + DIAG.rqueue),
    wqueue: buf.readUInt32LE(off + DIAG.wqueue),
    uid: buf.readUInt32LE(off + DIAG.uid),
    inode: buf.readUInt32LE(off + DIAG.inode),
  };
}

/** Text form of the (network order) address at `at`. */
export function addressAt(buf: Buffer, at: number, family: 4 | 6): string {
  if (family === 4) return `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`;
  return bytesToIpv6(buf.subarray(at, at + 16));
}
