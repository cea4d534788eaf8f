/**
 * The kernel's fixed numbers and small rules the model uses, each with where it comes from in the
 * Linux sources (torvalds/linux, v6.x). Everything the model reports is computed by running the
 * event simulation over these rules; nothing here is a result.
 */

import { TCP_TIMEWAIT_LEN_MS } from '../common/kernel-constants.js';

// The census reads the TIME_WAIT length too, so it lives in common/kernel-constants.ts.
export { TCP_TIMEWAIT_LEN_MS };

/** tcp_sk_init() (net/ipv4/tcp_ipv4.c): `sysctl_tcp_tw_reuse_delay = 1 * MSEC_PER_SEC`. */
export const DEFAULT_TW_REUSE_DELAY_MS = 1000;

/** tcp_sk_init(): `sysctl_tcp_tw_reuse = 2` (loopback only). */
export const DEFAULT_TW_REUSE = 2;

/** inet_init_net() (net/ipv4/af_inet.c): the default ip_local_port_range 32768-60999. */
export const DEFAULT_PORT_RANGE = { low: 32768, high: 60999 } as const;

/** tcp_sk_init(): `sysctl_tcp_timestamps = 1`. */
export const DEFAULT_TCP_TIMESTAMPS = 1;

/**
 * tcp_sk_init(): tcp_max_tw_buckets is half the established hash's size, which the kernel sizes
 * from the machine's memory at boot; 262144 is its value with a 512 Ki-entry hash (a few GB of RAM).
 */
export const TYPICAL_MAX_TW_BUCKETS = 262_144;

/** kernel/Kconfig.hz: CONFIG_HZ's default, 250. */
export const DEFAULT_HZ = 250;

/**
 * The timer wheel (kernel/time/timer.c) does not fire a timer at its exact expiry: a timer whose
 * delta falls in level `lvl` is queued in a bucket of granularity LVL_GRAN(lvl) = 8^lvl jiffies and
 * fires at the first bucket boundary after `expires` ("the timer wheel ... is imprecise ... at
 * most 12.5% late", comment at the top of timer.c). For the 60 s TIME_WAIT timer this makes a
 * TIME_WAIT socket live between 60 s and 60 s + one granularity: 2.048 s at HZ=250, 4.096 s at
 * HZ=1000. The constants: LVL_CLK_SHIFT = 3, LVL_BITS = 6, LVL_START(n) = 63 << 3(n-1).
 */
export function wheelGranularityJiffies(deltaJiffies: number): number {
  let lvl = 0;
  while (lvl < 8 && deltaJiffies >= 63 * 2 ** (3 * lvl)) lvl++;
  return 2 ** (3 * lvl);
}

let cachedHz = 0;
let cachedGran = 0;
function granularityForHz(hz: number): number {
  if (hz !== cachedHz) {
    cachedGran = wheelGranularityJiffies((TCP_TIMEWAIT_LEN_MS * hz) / 1000);
    cachedHz = hz;
  }
  return cachedGran;
}

/**
 * When the TIME_WAIT timer armed at `entryMs` fires, in ms, for a kernel ticking at `hz` whose
 * jiffies counter was at `phaseJiffies` when the model's clock read 0. calc_wheel_index() rounds
 * `expires` up: `expires = (expires + LVL_GRAN(lvl)) >> LVL_SHIFT(lvl)`, then back to jiffies.
 */
export function timeWaitExpiryMs(entryMs: number, hz: number, phaseJiffies: number): number {
  const delta = (TCP_TIMEWAIT_LEN_MS * hz) / 1000;
  const gran = granularityForHz(hz);
  const nowJ = Math.floor((entryMs * hz) / 1000) + phaseJiffies;
  const expires = nowJ + delta;
  const fireJ = Math.floor((expires + gran) / gran) * gran;
  return ((fireJ - phaseJiffies) * 1000) / hz;
}

/** The longest a TIME_WAIT socket can live on a kernel ticking at `hz`: 60 s plus one wheel bucket. */
export function timeWaitMaxMs(hz: number): number {
  const delta = (TCP_TIMEWAIT_LEN_MS * hz) / 1000;
  return TCP_TIMEWAIT_LEN_MS + Math.ceil((wheelGranularityJiffies(delta) * 1000) / hz) + 1;
}

/**
 * tcp_twsk_unique() (net/ipv4/tcp_ipv4.c): whether connect() may take over a TIME_WAIT socket with
 * the same 4-tuple. `reuse` is tcp_tw_reuse: 0 never, 1 always, 2 only when the TIME_WAIT socket's
 * address (tw_daddr or tw_rcv_saddr) is loopback. It also needs `ts_recent_stamp` (the peer sent
 * TCP timestamps, tcp_timestamps=1 on both ends) and `time_after32(tcp_clock_ms(), tw_entry_stamp
 * + tcp_tw_reuse_delay)`: strictly more than the delay, in whole milliseconds.
 */
export function twReuseApplies(reuse: 0 | 1 | 2, loopback: boolean, timestamps: boolean): boolean {
  if (!timestamps) return false;
  if (reuse === 1) return true;
  return reuse === 2 && loopback;
}

/** The first whole millisecond at which a TIME_WAIT entered at `entryMs` may be reused. */
export function twReusableFromMs(entryMs: number, delayMs: number): number {
  return Math.floor(entryMs) + delayMs + 1;
}

/**
 * How long the peer's kernel holds back the ACK of the client's FIN when its application has not
 * closed yet. tcp_fin() puts the peer in pingpong mode, so __tcp_ack_snd_check() leaves the ACK to
 * the delayed-ACK timer, armed by tcp_send_delayed_ack() with icsk_ack.ato = TCP_ATO_MIN = HZ/25
 * (40 ms whatever HZ is) on a fresh connection. A peer that closes sooner sends its FIN with that
 * ACK; one that does not lets a bare ACK go first, which turns the client's orphan into a FIN_WAIT2
 * minisocket (tcp_rcv_state_process(), case TCP_FIN_WAIT1: tcp_time_wait(sk, TCP_FIN_WAIT2, tmo)).
 */
export const PEER_DELAYED_ACK_MS = 40;

// ---- Behind a source NAT (net/netfilter, v6.5+) ----

/**
 * nf_nat_core.c: `#define NF_NAT_MAX_ATTEMPTS 128`: nf_nat_l4proto_unique_tuple() tries at most
 * this many ports of the range per round (softirq context: never the whole range).
 */
export const NF_NAT_MAX_ATTEMPTS = 128;

/**
 * nf_nat_core.c: `#define NF_NAT_HARDER_THRESH (NF_NAT_MAX_ATTEMPTS / 4)`: in the last 32 tries
 * of a round, nf_nat_used_tuple_harder() may evict the conntrack entry holding the tuple when it
 * is in TIME_WAIT or CLOSE and the new SYN's sequence number has advanced past the old entry's
 * (commit "netfilter: snat: evict closing tcp entries on reply tuple collision", Linux 6.5).
 */
export const NF_NAT_HARDER_THRESH = NF_NAT_MAX_ATTEMPTS / 4;

/** nf_conntrack_proto_tcp.c tcp_timeouts[]: `[TCP_CONNTRACK_TIME_WAIT] = 2 MINS`. */
export const DEFAULT_CT_TIME_WAIT_SEC = 120;

/** nf_conntrack_proto_tcp.c tcp_timeouts[]: `[TCP_CONNTRACK_CLOSE] = 10 SECS` (after a RST). */
export const DEFAULT_CT_CLOSE_SEC = 10;

/** include/net/tcp.h: `TCP_TIMEOUT_INIT (1*HZ)`: a SYN unanswered is sent again after 1 s, then 2, 4, ... */
export const TCP_TIMEOUT_INIT_MS = 1000;

/**
 * include/net/tcp.h `TCP_SYN_RETRIES 6`: connect() gives up (ETIMEDOUT) after the SYN and six
 * retransmissions, 1 + 2 + 4 + 8 + 16 + 32 + 64 = 127 s after the first SYN.
 */
export const DEFAULT_CONNECT_TIMEOUT_MS = 127_000;

/**
 * When a connect() whose SYN the NAT dropped sends it again: `tries` retransmissions already
 * sent, the first SYN at `startMs` (RTO doubling from TCP_TIMEOUT_INIT, tcp_retransmit_timer()).
 */
export function synRetransmitMs(startMs: number, tries: number): number {
  return startMs + TCP_TIMEOUT_INIT_MS * (2 ** (tries + 1) - 1);
}
