/**
 * A source NAT in front of the client: the router's conntrack entries for the client's TCP
 * connections and the NAT port each new one gets, as Linux (v6.5+) does it. One pool of NAT ports
 * per destination: a NAT port is free for a new connection when no conntrack entry has the reply
 * tuple (destination -> NAT address:port), so destinations never compete for NAT ports.
 *
 * The rules, from net/netfilter/nf_nat_core.c (torvalds/linux, v6.5 and later):
 * - get_unique_tuple(): without NF_NAT_RANGE_PROTO_RANDOM_ALL (`fully-random`), a client port that
 *   lies in the range is kept when its tuple is unused (`l4proto_in_range(...) &&
 *   !nf_nat_used_tuple(tuple, ct)`); with one port in the range it is kept even if used (then the
 *   SYN is dropped at confirmation). Otherwise nf_nat_l4proto_unique_tuple() picks one.
 * - nf_nat_l4proto_unique_tuple(): `off = get_random_u16()` (source NAT draws a random offset
 *   whatever the flags), `attempts = min(range_size, NF_NAT_MAX_ATTEMPTS)`, ports `min + off %
 *   range_size` for off, off+1, ... (off is a u16: it wraps at 65536); the first unused one wins.
 *   If none: `if (attempts >= range_size || attempts < 16) return;` (the tuple stays taken and
 *   nf_conntrack_confirm() drops the SYN: insert_failed, drop), else `attempts /= 2`, a new random
 *   offset, another round: 128, 64, 32, 16, 8 tries for a range over 128 ports.
 * - nf_nat_used_tuple() -> nf_conntrack_tuple_taken(): any conntrack entry with that reply tuple
 *   holds it, whatever its state, unless expired (nf_ct_is_expired(): `timeout - now <= 0`; the
 *   lookup reaps it, nf_ct_gc_expired()).
 * - nf_nat_used_tuple_harder(), in a round's last NF_NAT_HARDER_THRESH (32) tries: an entry in
 *   TIME_WAIT or CLOSE (nf_nat_may_kill(): `state >= TCP_CONNTRACK_TIME_WAIT`, SNAT, no fixed
 *   timeout) is evicted (nf_ct_kill) and its port taken when nf_seq_has_advanced(): `(s32)(new
 *   seen[0].td_end - old seen[0].td_end) > 0`, the new SYN's sequence number past the old
 *   connection's last one. The client's ISNs (secure_tcp_seq(): a keyed hash of the 4-tuple plus
 *   a clock) are unrelated between its different source ports, so each comparison is a coin the
 *   model draws from its seed: the ISN is a random u32 per connection.
 * - Entry lifetimes, nf_conntrack_proto_tcp.c: an open connection's entry (SYN_SENT ..
 *   LAST_ACK) is never evicted; after the final ACK of a FIN exchange the entry is in TIME_WAIT
 *   for nf_conntrack_tcp_timeout_time_wait (120 s), whoever closed first; after a RST in CLOSE for
 *   nf_conntrack_tcp_timeout_close (10 s).
 * - The server's own TIME_WAIT (server-first close) is on the 4-tuple it saw: (NAT address:port,
 *   server). A connection given that NAT port while it lasts sends its SYN to that TIME_WAIT
 *   (tcp_timewait_state_process(), net/ipv4/tcp_minisocks.c): the SYN opens a new connection only
 *   if its sequence number is after the old rcv_nxt or its timestamp newer than tw_ts_recent,
 *   otherwise it is answered with the old ACK, the client resets and sends the SYN again. The
 *   model counts these collisions (a stall risk); which of them stall is not modelled (measured:
 *   docs/ARCHITECTURE.md, model section).
 *
 * Not modelled: find_appropriate_src() (a client port reused towards the same destination while
 * its old entry lives), conntrack's reopening of a TIME_WAIT entry by a SYN of the same client
 * 4-tuple, several NAT addresses, UDP, the conntrack table's size limit (nf_conntrack_max), the
 * race that now and then drops one SYN at insertion (insert_failed 1 in a few hundred).
 */
import type { ModelNat } from './types.js';
import type { Rng } from './rng.js';
import {
  DEFAULT_CT_CLOSE_SEC,
  DEFAULT_CT_TIME_WAIT_SEC,
  NF_NAT_HARDER_THRESH,
  NF_NAT_MAX_ATTEMPTS,
} from './kernel-rules.js';

/** A conntrack entry's state, as far as the NAT's choice cares. */
export const CT_FREE = 0;
/** SYN_SENT .. LAST_ACK: the connection is open or closing; never evicted. */
export const CT_OPEN = 1;
export const CT_TIME_WAIT = 2;
/** After a RST. */
export const CT_CLOSE = 3;

/** The NAT ports towards one destination. */
interface NatPool {
  state: Uint8Array;
  /** When a TIME_WAIT/CLOSE entry expires (ms). */
  expires: Float64Array;
  /** The client's sequence number end (seen[0].td_end) of the entry on the port. */
  tdEnd: Uint32Array;
  /** The server's TIME_WAIT on this NAT port ends at (ms; server-first); 0: none. */
  serverTw: Float64Array;
  /** The port carried a connection before. */
  used: Uint8Array;
}

export type NatHow = 'kept' | 'free' | 'evicted';

/** The NAT: one pool per destination, created on first use. */
export class Nat {
  readonly size: number;
  readonly low: number;
  readonly fullyRandom: boolean;
  readonly timeWaitMs: number;
  readonly closeMs: number;
  private readonly pools: (NatPool | undefined)[];
  /** How the last choose() found its port. */
  how: NatHow = 'free';
  evictions = 0;
  portsUsed = 0;

  constructor(
    spec: ModelNat,
    destinations: number,
    private readonly rng: Rng,
  ) {
    this.size = spec.ports;
    this.low = spec.low ?? 40000;
    this.fullyRandom = spec.fullyRandom ?? false;
    this.timeWaitMs = (spec.conntrackTimeWaitSec ?? DEFAULT_CT_TIME_WAIT_SEC) * 1000;
    this.closeMs = (spec.conntrackCloseSec ?? DEFAULT_CT_CLOSE_SEC) * 1000;
    this.pools = new Array<NatPool | undefined>(destinations);
  }

  private pool(dest: number): NatPool {
    let p = this.pools[dest];
    if (!p) {
      const n = this.size;
      p = {
        state: new Uint8Array(n),
        expires: new Float64Array(n),
        tdEnd: new Uint32Array(n),
        serverTw: new Float64Array(n),
        used: new Uint8Array(n),
      };
      this.pools[dest] = p;
    }
    return p;
  }

  /** nf_nat_used_tuple(): an entry holds the tuple (an expired one is reaped instead). */
  private taken(p: NatPool, pos: number, tMs: number): boolean {
    const s = p.state[pos]!;
    if (s === CT_FREE || s === CT_OPEN) return s === CT_OPEN;
    if (p.expires[pos]! > tMs) return true;
    p.state[pos] = CT_FREE;
    return false;
  }

  /**
   * The NAT port (position in the range) for a new connection's SYN at `tMs` from `clientPort`
   * with initial sequence number `isn`, or -1 when the NAT finds no tuple (the SYN is dropped).
   * An evicted entry is gone when this returns; `how` says how the port was found.
   */
  choose(dest: number, clientPort: number, isn: number, tMs: number): number {
    const p = this.pool(dest);
    const n = this.size;
    // get_unique_tuple() step 3: keep the client's port when it is in range and unused.
    const own = clientPort - this.low;
    if (!this.fullyRandom && own >= 0 && own < n) {
      if (!this.taken(p, own, tMs)) {
        this.how = 'kept';
        return own;
      }
      // `range->min_proto.all == range->max_proto.all`: a one-port range keeps it anyway.
      if (n === 1) return -1;
    }
    let off = this.rng.below(65536);
    let attempts = Math.min(n, NF_NAT_MAX_ATTEMPTS);
    for (;;) {
      for (let i = 0; i < attempts; i++, off = (off + 1) & 0xffff) {
        const pos = off % n;
        if (!this.taken(p, pos, tMs)) {
          this.how = 'free';
          return pos;
        }
        // nf_nat_used_tuple_harder(): the round's last 32 tries may evict a closing entry.
        if (
          attempts - i <= NF_NAT_HARDER_THRESH &&
          p.state[pos] !== CT_OPEN &&
          ((isn - p.tdEnd[pos]!) | 0) > 0
        ) {
          p.state[pos] = CT_FREE;
          this.evictions++;
          this.how = 'evicted';
          return pos;
        }
      }
      if (attempts >= n || attempts < 16) return -1;
      attempts = attempts >>> 1;
      off = this.rng.below(65536);
    }
  }

  /** The connection's entry is confirmed on `pos`: open. Returns whether the port was used before. */
  open(dest: number, pos: number, isn: number): boolean {
    const p = this.pool(dest);
    p.state[pos] = CT_OPEN;
    // The SYN, a few bytes and the FIN: its td_end ends a little past its ISN.
    p.tdEnd[pos] = (isn + 8) >>> 0;
    if (p.used[pos]) return true;
    p.used[pos] = 1;
    this.portsUsed++;
    return false;
  }

  /** The server holds TIME_WAIT for this NAT port until then (ms), or 0. */
  serverTimeWait(dest: number, pos: number): number {
    return this.pool(dest).serverTw[pos]!;
  }

  setServerTimeWait(dest: number, pos: number, untilMs: number): void {
    this.pool(dest).serverTw[pos] = untilMs;
  }

  /** The connection on `pos` closed at `tMs`: its entry goes to TIME_WAIT (a FIN exchange) or CLOSE (a RST). */
  close(dest: number, pos: number, tMs: number, rst: boolean): void {
    const p = this.pool(dest);
    p.state[pos] = rst ? CT_CLOSE : CT_TIME_WAIT;
    p.expires[pos] = tMs + (rst ? this.closeMs : this.timeWaitMs);
  }

  /** Entries alive at `tMs`, by state, over all destinations. */
  held(tMs: number): { open: number; timeWait: number; close: number } {
    const out = { open: 0, timeWait: 0, close: 0 };
    for (const p of this.pools) {
      if (!p) continue;
      for (let pos = 0; pos < this.size; pos++) {
        const s = p.state[pos]!;
        if (s === CT_OPEN) out.open++;
        else if (s !== CT_FREE && p.expires[pos]! > tMs) {
          if (s === CT_TIME_WAIT) out.timeWait++;
          else out.close++;
        }
      }
    }
    return out;
  }
}
