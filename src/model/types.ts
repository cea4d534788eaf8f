/**
 * The model's input (a workload on one Linux host, and that host's settings) and output (what the
 * simulated kernel did). JSON-friendly: numbers, strings, arrays.
 */
import type { PortRange } from '../common/parse.js';

/** Who sends the first FIN: the side that does holds TIME_WAIT (rst: nobody does). */
export type CloseOrder = 'client-first' | 'server-first' | 'rst';
export const CLOSE_ORDERS: readonly CloseOrder[] = ['client-first', 'server-first', 'rst'];

/**
 * How each client socket gets its local port.
 * - connect: plain connect(), the kernel picks a port per 4-tuple (__inet_hash_connect).
 * - bind-before-connect: bind(addr, 0) then connect(): the port is taken at bind() time, for every
 *   destination (inet_csk_find_open_port), and a TIME_WAIT on it blocks bind(0) for all of them.
 * - bind-no-port: bind(addr, 0) with IP_BIND_ADDRESS_NO_PORT: the address is fixed at bind(), the
 *   port is picked at connect() exactly as for plain connect().
 */
export type PortMode = 'connect' | 'bind-before-connect' | 'bind-no-port';

/**
 * A source NAT between the client and every destination (nftables `snat to ADDR:LOW-HIGH`, one
 * NAT address): the router's conntrack table and its port choice, src/model/nat.ts.
 */
export interface ModelNat {
  /** How many ports the NAT maps to (HIGH - LOW + 1). */
  ports: number;
  /** The first NAT port (LOW); a client port inside LOW-HIGH may be kept. Default 40000. */
  low?: number;
  /** `fully-random` (NF_NAT_RANGE_PROTO_RANDOM_FULLY): never keep the client's port. */
  fullyRandom?: boolean;
  /** nf_conntrack_tcp_timeout_time_wait on the router, seconds (default 120). */
  conntrackTimeWaitSec?: number;
  /** nf_conntrack_tcp_timeout_close on the router, seconds (default 10): entries closed by a RST. */
  conntrackCloseSec?: number;
  /**
   * ms the client's connect() waits in all (its SYN retransmissions after 1, 2, 4, ... s) before
   * it fails with ETIMEDOUT; default: the kernel's own, tcp_syn_retries=6 (127 s).
   */
  connectTimeoutMs?: number;
}

export interface ModelScenario {
  /** New connections attempted per second, evenly spaced, over the whole host. */
  rate: number;
  /**
   * The attempts' times in ms, instead of even spacing at `rate` (e.g. replaying what a real client
   * did). Ascending.
   */
  arrivalsMs?: readonly number[];
  /** Stop after this many attempts. */
  count?: number;
  /** Stop after this many seconds (default: 60 s when count is absent). */
  durationSec?: number;
  /** net.ipv4.ip_local_port_range. */
  portRange: PortRange;
  /** net.ipv4.ip_local_reserved_ports, as ranges. */
  reservedPorts?: readonly PortRange[];
  /** Ports bound by listeners on the client host (e.g. the server's port on a 1-host loopback setup). */
  boundPorts?: readonly number[];
  /** IP_LOCAL_PORT_RANGE on every client socket (Linux 6.3+); absent: not set. */
  socketPortRange?: PortRange;
  /** net.ipv4.tcp_tw_reuse. */
  twReuse: 0 | 1 | 2;
  /** net.ipv4.tcp_tw_reuse_delay in ms (default 1000). */
  twReuseDelayMs?: number;
  /** TCP timestamps negotiated (tcp_timestamps=1 on both ends, the default). */
  timestamps?: boolean;
  /** The destination (or source) is a loopback address: what tcp_tw_reuse=2 asks for. */
  loopback?: boolean;
  /** net.ipv4.tcp_max_tw_buckets (per host; on loopback client and server share one). */
  maxTwBuckets?: number;
  /** Distinct destinations (address:port), connected to round-robin. Default 1. */
  destinations?: number;
  /** Distinct source addresses the client binds to, round-robin with destinations. Default 1. */
  sourceAddresses?: number;
  portMode?: PortMode;
  close?: CloseOrder;
  /** How long each connection stays open before it is closed, in seconds. Default 0. */
  holdSec?: number;
  /**
   * client-first only: how long after the client's close() the peer's FIN (with the ACK of the
   * client's FIN) reaches the client, in ms; default 0. Until then the client's socket is an
   * orphan in FIN_WAIT1: it holds its port, is no TIME_WAIT socket (so neither counted against
   * tcp_max_tw_buckets nor reusable), and TIME_WAIT, its timer and tcp_tw_reuse_delay all start at
   * the FIN. The delay is the peer application's time to close its end.
   */
  peerCloseDelayMs?: number;
  /** The same per attempt (index = attempt - 1), e.g. measured in a real run; wins over peerCloseDelayMs. */
  peerCloseDelaysMs?: readonly number[];
  /** SO_REUSEADDR on bind-before-connect sockets: inet_csk_find_open_port then scans half the range first. */
  reuseAddr?: boolean;
  /** The kernel's CONFIG_HZ (timer wheel granularity of the TIME_WAIT timer). Default 250. */
  hz?: number;
  seed?: number;
  /** End the run at the first EADDRNOTAVAIL (behind a NAT also at the first stall or collision). */
  stopAtFirstFailure?: boolean;
  /** A source NAT in the path (absent: none). */
  nat?: ModelNat;
  /**
   * How connect()'s port walk is done: 'bitmap' (default; finds the first acceptable port word by
   * word) or 'literal' (port by port, as the kernel's loop; the same answers, slower: the bench's
   * reference).
   */
  walk?: 'bitmap' | 'literal';
  /** Seconds between population samples. Default 1. */
  sampleIntervalSec?: number;
  /** The first sample's time (default 0): a long run that only needs its end keeps few samples. */
  sampleFromSec?: number;
}

/** A population sample. */
export interface ModelSample {
  tSec: number;
  /** TIME_WAIT sockets in the client host's namespace (on loopback: client and server ones). */
  clientHostTimeWait: number;
  /** TIME_WAIT sockets of the server (the server host's, or the server's share on loopback). */
  serverTimeWait: number;
  live: number;
}

export interface ModelResult {
  attempted: number;
  succeeded: number;
  failed: number;
  /** 1-based attempt number of the first failure to get a port, or null. */
  firstFailureAtConnection: number | null;
  /**
   * How that failure shows: connect() fails with EADDRNOTAVAIL (__inet_hash_connect); bind(addr, 0)
   * fails with EADDRINUSE (__inet_bind turns get_port()'s failure into -EADDRINUSE).
   */
  failureErrno: 'EADDRNOTAVAIL' | 'EADDRINUSE' | 'ETIMEDOUT' | null;
  firstFailureSec: number | null;
  /** Simulated seconds. */
  endSec: number;
  samples: ModelSample[];
  /** Largest TIME_WAIT population on the client host. */
  peakClientHostTimeWait: number;
  /** TIME_WAIT sockets taken over by connect() (tcp_tw_reuse). */
  timeWaitReused: number;
  /** Closes that got no TIME_WAIT because tcp_max_tw_buckets was reached (TCPTimeWaitOverflow). */
  timeWaitOverflows: number;
  /** Largest number of client sockets at once in FIN_WAIT1, waiting for the peer's FIN. */
  peakFinWait1: number;
  /** Distinct local ports that carried a connection. */
  localPortsUsed: number;
  /** Behind a NAT (scenario.nat): what its conntrack table did. */
  nat?: ModelNatResult;
}

/** What the NAT did in a run (src/model/nat.ts). */
export interface ModelNatResult {
  /**
   * SYNs the NAT found no free tuple for: conntrack drops them (insert_failed, drop) and the
   * client sends the SYN again after 1 s, 2 s, ... (a stall), or gives up (ETIMEDOUT).
   */
  drops: number;
  /** Connections whose connect() took a retransmission or more (NAT drops). */
  stalls: number;
  /** The first of them: 1-based attempt number, its start (s) and how long connect() took (ms). */
  firstStall: { atConnection: number; sec: number; ms: number } | null;
  /** NAT ports given to a new connection by evicting a conntrack entry in TIME_WAIT/CLOSE. */
  evictions: number;
  /** NAT ports a connection got while it was still the source of an earlier conntrack entry (any way). */
  reuses: number;
  /** The first connection given a NAT port an earlier connection to the same destination had. */
  firstReuseAtConnection: number | null;
  /**
   * server-first: connections whose NAT port the server still holds in TIME_WAIT for the same
   * 4-tuple (the server's TIME_WAIT meets the new SYN: a stall risk), and the first of them.
   */
  collisions: number;
  firstCollision: { atConnection: number; sec: number } | null;
  /**
   * Connections whose NAT port is their own client port: kept (not fully-random, the port in the
   * NAT's range and free) or, fully-random, drawn by chance.
   */
  kept: number;
  /** Distinct NAT ports that carried a connection, over all destinations. */
  portsUsed: number;
  /** At the end: NAT ports held by an unexpired conntrack entry, per destination summed, by state. */
  heldAtEnd: { open: number; timeWait: number; close: number };
}

/** What the model did, one step at a time, for tests that check its invariants. */
export type ModelEvent =
  | {
      kind: 'connect';
      tMs: number;
      source: number;
      destination: number;
      port: number;
      reusedTimeWait: boolean;
    }
  | {
      kind: 'fail';
      tMs: number;
      source: number;
      destination: number;
      attempt: number;
      errno: 'EADDRNOTAVAIL' | 'EADDRINUSE' | 'ETIMEDOUT';
    }
  /** Behind a NAT: the NAT port a connection got (how: kept, a free port, an evicted entry). */
  | {
      kind: 'nat';
      tMs: number;
      attempt: number;
      destination: number;
      clientPort: number;
      natPort: number;
      how: 'kept' | 'free' | 'evicted';
      collision: boolean;
    }
  /** Behind a NAT: the SYN of `attempt` found no NAT tuple and was dropped. */
  | { kind: 'nat-drop'; tMs: number; attempt: number; destination: number }
  /**
   * The socket lets its port go or enters TIME_WAIT: at close(), or with peerCloseDelayMs when the
   * peer's FIN arrives (until then it was in FIN_WAIT1, still holding the port).
   */
  | { kind: 'close'; tMs: number; source: number; destination: number; port: number; timeWait: boolean }
  | {
      kind: 'tw-end';
      tMs: number;
      source: number;
      destination: number;
      port: number;
      enteredMs: number;
      reused: boolean;
    };
