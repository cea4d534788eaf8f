/**
 * The event-driven model of one Linux host's ephemeral ports and TIME_WAIT sockets. Pure and
 * deterministic: the same scenario and seed give the same result, with no I/O.
 *
 * What it models, rule by rule (sources: torvalds/linux v6.x):
 * - Port choice for connect(): __inet_hash_connect() (net/ipv4/inet_hashtables.c), see
 *   port-choice.ts. A port is acceptable when no bind()-created bucket holds it (tb->fastreuse >= 0)
 *   and __inet_check_established() finds no socket with the same 4-tuple, or finds a TIME_WAIT one
 *   that tcp_twsk_unique() lets it take over. Each (source address, destination) pair therefore
 *   has its own pool of ports: the model keeps one per pair.
 * - bind(addr, 0) before connect(): inet_csk_find_open_port() (net/ipv4/inet_connection_sock.c)
 *   takes a port no socket on that address uses at all, TIME_WAIT ones included
 *   (inet_csk_bind_conflict() with relax=false), whatever the destination: one pool per source
 *   address, shared by every destination. The connect() that follows checks only its own 4-tuple
 *   (check_established with twp=NULL), which cannot clash on a port nobody holds.
 * - IP_BIND_ADDRESS_NO_PORT: the port is left to connect(), so it is plain connect()'s pool.
 * - TIME_WAIT: tcp_time_wait() (net/ipv4/tcp_minisocks.c) on the side that sends the first FIN,
 *   armed for TCP_TIMEWAIT_LEN (60 s) on the timer wheel (kernel-rules.ts), unless the host
 *   already holds tcp_max_tw_buckets of them: then "TCP: time wait bucket table overflow", the
 *   socket is closed at once and its port is free (LINUX_MIB_TCPTIMEWAITOVERFLOW).
 * - tcp_tw_reuse 0/1/2 with the timestamp condition and tcp_tw_reuse_delay: tcp_twsk_unique().
 *   A TIME_WAIT socket taken over is killed (inet_twsk_deschedule_put() in __inet_hash_connect()).
 * - The peer's close latency (peerCloseDelayMs / peerCloseDelaysMs): after the client's close()
 *   its socket is an orphan in FIN_WAIT1 until the peer's FIN arrives; the peer's kernel delays the
 *   ACK of the client's FIN (tcp_fin() enters pingpong mode, so __tcp_ack_snd_check() defers it)
 *   and sends it with its own FIN when the peer application closes. tcp_rcv_state_process() then
 *   moves FIN_WAIT1 -> FIN_WAIT2 and tcp_fin() calls tcp_time_wait(sk, TCP_TIME_WAIT, 0): the
 *   tcp_max_tw_buckets check (inet_twsk_alloc: tw_refcount - 1 >= max) happens at the FIN, so up
 *   to then the socket holds its port without counting as a tw bucket, and tw_entry_stamp (the
 *   tcp_tw_reuse_delay origin) and the 60 s timer start at the FIN too. A peer slower than its
 *   delayed-ACK timer (PEER_DELAYED_ACK_MS) lets a bare ACK go first: tcp_rcv_state_process()
 *   (case TCP_FIN_WAIT1, socket dead) calls tcp_time_wait(sk, TCP_FIN_WAIT2, tmo), a FIN_WAIT2
 *   minisocket that counts against tcp_max_tw_buckets from then on (or overflows, freeing the
 *   port) and that tcp_twsk_unique() never reuses (tw_substate == TCP_FIN_WAIT2); its FIN then
 *   makes it TIME_WAIT in tcp_timewait_state_process().
 * - close server-first: the client gets the FIN, closes from CLOSE_WAIT and goes LAST_ACK ->
 *   CLOSED with no TIME_WAIT; the server holds it. rst (SO_LINGER {1,0}): tcp_disconnect() sends a
 *   RST, no TIME_WAIT on either side.
 *
 * Not modelled: a peer that never closes (the FIN_WAIT2 timeout, tcp_fin_timeout), the peer's
 * latency on server-first and rst closes, SYN retransmission or loss, SO_REUSEPORT, ip_autobind_reuse, IPv6, shared table_perturb slots between destinations,
 * the server side's port limits, and anything that takes time on the wire (a connection's life is
 * `holdSec`, its handshake and teardown take no time).
 */
import { PortBitmap } from './port-bitmap.js';
import { EventFifo } from './fifo.js';
import { EventHeap } from './event-heap.js';
import { Rng } from './rng.js';
import { Nat } from './nat.js';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_HZ,
  DEFAULT_TW_REUSE_DELAY_MS,
  PEER_DELAYED_ACK_MS,
  synRetransmitMs,
  timeWaitExpiryMs,
  twReusableFromMs,
  twReuseApplies,
} from './kernel-rules.js';
import { type PortGeometry, chooseBindPort, chooseConnectPort, portGeometry } from './port-choice.js';
import type { ModelEvent, ModelResult, ModelSample, ModelScenario } from './types.js';

const FREE = 0;
const LIVE = 1;
const TIME_WAIT = 2;
const UNUSABLE = 3;
/** Closed by the client, waiting for the peer's FIN: holds the port, not a TIME_WAIT socket. */
const FIN_WAIT1 = 4;
/** A FIN_WAIT2 minisocket (tw_substate FIN_WAIT2): a tw bucket holding the port, never reused. */
const FIN_WAIT2 = 5;

/** One pool of ports: per (source, destination) for connect(), per source for bind(0). */
export interface Pool {
  readonly source: number;
  /** -1 for a bind(0) pool, which every destination shares. */
  readonly destination: number;
  /** Positions (port - low) a new socket may take now: free, or TIME_WAIT that may be reused. */
  readonly avail: PortBitmap;
  readonly state: Uint8Array;
  /** Bumped on every change of a port's socket, so stale timers are recognised. */
  readonly gen: Uint16Array;
  /** TIME_WAIT entry time (ms) of the socket on the port; kept only when someone observes. */
  readonly entry: Float64Array | undefined;
  /** Destination of the socket on the port; kept only for bind(0) pools (shared by destinations). */
  readonly peer: Int32Array | undefined;
  /** The peer's close delay of the connection on the port; kept only when delays are given. */
  readonly finDelay: Float64Array | undefined;
  /** Behind a NAT: the NAT port (position in its range) of the connection on the port. */
  readonly natPos: Int32Array | undefined;
  /** table_perturb[index] for this pair (RFC 6056 algorithm 4 in __inet_hash_connect). */
  perturb: number;
  /** port_offset >> 32: the secret hash of (saddr, daddr, dport), secure_ipv4_port_ephemeral(). */
  readonly hashHi: number;
}

/** The most pools one run keeps (a pool's index shares a 32-bit timer key with a port). */
export const MAX_POOLS = 32767;

// Long (~490 lines) on purpose: the event loop's state lives in locals its hot path reads directly
// (1,000,000 connections in well under 2 s, bench/model); the kernel's rules it applies are the
// small, separately tested functions of kernel-rules.ts and port-choice.ts.
// eslint-disable-next-line max-lines-per-function -- long on purpose, as said above
export function simulate(sc: ModelScenario, observer?: (e: ModelEvent) => void): ModelResult {
  const rng = new Rng(sc.seed ?? 1);
  const geo = portGeometry(sc.portRange, sc.socketPortRange);
  const destinations = sc.destinations ?? 1;
  const sources = sc.sourceAddresses ?? 1;
  const mode = sc.portMode ?? 'connect';
  const bindMode = mode === 'bind-before-connect';
  const literalWalk = sc.walk === 'literal';
  const failureErrno = bindMode ? ('EADDRINUSE' as const) : ('EADDRNOTAVAIL' as const);
  const close = sc.close ?? 'client-first';
  const loopback = sc.loopback ?? false;
  const hz = sc.hz ?? DEFAULT_HZ;
  const phaseJ = rng.below(4096);
  const delayMs = sc.twReuseDelayMs ?? DEFAULT_TW_REUSE_DELAY_MS;
  const maxTw = sc.maxTwBuckets ?? Infinity;
  // tcp_twsk_unique() is only reached from connect()'s own port search; bind(0) never offers a
  // port that has a TIME_WAIT socket, so reuse cannot apply there.
  const reuse = !bindMode && twReuseApplies(sc.twReuse, loopback, sc.timestamps ?? true);
  const holdMs = (sc.holdSec ?? 0) * 1000;
  const finDelays = close === 'client-first' ? sc.peerCloseDelaysMs : undefined;
  const finDelayConst = close === 'client-first' ? (sc.peerCloseDelayMs ?? 0) : 0;
  const peerDelays = finDelays !== undefined || finDelayConst > 0;
  const stepMs = 1000 / sc.rate;
  const durationMs = sc.durationSec !== undefined ? sc.durationSec * 1000 : sc.count ? Infinity : 60_000;
  const arrivals = sc.arrivalsMs;
  const maxAttempts = Math.min(sc.count ?? Infinity, arrivals ? arrivals.length : Infinity);
  const sampleMs = (sc.sampleIntervalSec ?? 1) * 1000;
  const poolCount = bindMode ? sources : sources * destinations;
  if (poolCount > MAX_POOLS)
    throw new RangeError(`model: at most ${MAX_POOLS} port pools (sources x destinations)`);

  const unusable = unusablePositions(geo, sc);
  const pools: (Pool | undefined)[] = new Array<Pool | undefined>(poolCount);
  const poolFor = (idx: number, source: number, destination: number): Pool => {
    let p = pools[idx];
    if (!p) {
      p = newPool(
        geo,
        unusable,
        source,
        bindMode ? -1 : destination,
        rng,
        observer !== undefined,
        peerDelays,
        sc.nat !== undefined,
      );
      pools[idx] = p;
    }
    return p;
  };

  // Sized for a TIME_WAIT span of arrivals, so the queues rarely grow; but no larger than the
  // ports the client side can hold at once: the queues grow when they must, while a run that
  // saturates early would otherwise allocate (and zero) far more than it ever uses.
  const ports = poolCount * geo.size;
  const initial = (n: number): number => Math.max(16, Math.min(Math.ceil(n), 1 << 21, ports));
  const expected = Math.min(sc.rate * 64, maxAttempts) || 1024;
  const closes = new EventFifo(holdMs > 0 ? initial(sc.rate * (holdMs / 1000 + 1)) : 16);
  const graduations = new EventFifo(reuse ? initial(sc.rate * (delayMs / 1000 + 1)) : 16);
  const expiries = new EventFifo(close === 'client-first' ? initial(expected) : 16);
  // The server's TIME_WAIT sockets are not bounded by the client's ports.
  const serverExpiries = new EventFifo(
    close === 'server-first' ? Math.min(Math.ceil(expected), 1 << 21) : 16,
  );
  const peerFins = new EventHeap();
  // Behind a NAT: the router's conntrack (nat.ts), and the SYNs it dropped, each sent again later.
  const nat = sc.nat ? new Nat(sc.nat, destinations, rng) : undefined;
  const connectTimeoutMs = sc.nat?.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const retries = new EventHeap();
  // A dropped SYN's connection while it waits for its next retransmission; slots are reused.
  const freeSlots: number[] = [];
  const pending: {
    idx: number;
    pos: number;
    attempt: number;
    startMs: number;
    tries: number;
    isn: number;
  }[] = [];
  const natStats = {
    drops: 0,
    stalls: 0,
    firstStall: null as { atConnection: number; sec: number; ms: number } | null,
    reuses: 0,
    firstReuseAtConnection: null as number | null,
    kept: 0,
    collisions: 0,
    firstCollision: null as { atConnection: number; sec: number } | null,
  };
  /** Behind a NAT, stopAtFirstFailure also stops at the first stall or collision. */
  let trouble = false;
  let finWait1 = 0;
  let peakFinWait1 = 0;
  let clientTw = 0;
  let serverTw = 0;
  let live = 0;
  let reused = 0;
  let overflows = 0;
  let peak = 0;
  const usedPorts = new Uint8Array(65536);
  let localPortsUsed = 0;

  const hostTw = (): number => clientTw + (loopback ? serverTw : 0);

  /** The router's entry of the connection on client port `pos` of pool `p` ends its exchange. */
  const natClose = (p: Pool, pos: number, tMs: number): number => {
    if (!nat || !p.natPos) return -1;
    const dest = p.peer ? p.peer[pos]! : p.destination;
    nat.close(dest, p.natPos[pos]!, tMs, close === 'rst');
    return dest;
  };
  const serverHostTw = (): number => (loopback ? clientTw + serverTw : serverTw);

  const endTimeWait = (p: Pool, pos: number, tMs: number, wasReused: boolean): void => {
    clientTw--;
    if (observer) {
      observer({
        kind: 'tw-end',
        tMs,
        source: p.source,
        destination: p.peer ? p.peer[pos]! : p.destination,
        port: geo.low + pos,
        enteredMs: p.entry ? p.entry[pos]! : NaN,
        reused: wasReused,
      });
    }
  };

  const closeConnection = (idx: number, pos: number, tMs: number): void => {
    const p = pools[idx]!;
    live--;
    p.gen[pos]!++;
    const finDelay = close === 'client-first' && p.finDelay ? p.finDelay[pos]! : 0;
    if (finDelay > 0) {
      // FIN_WAIT1 orphan until the peer's FIN: the port stays taken, no tw bucket yet. A peer
      // slower than its delayed-ACK timer sends a bare ACK first (an event of its own, marked
      // by a negative key).
      p.state[pos] = FIN_WAIT1;
      finWait1++;
      if (finWait1 > peakFinWait1) peakFinWait1 = finWait1;
      const key = (idx << 16) | pos;
      peerFins.push(tMs + finDelay, key, p.gen[pos]!);
      if (finDelay > PEER_DELAYED_ACK_MS) peerFins.push(tMs + PEER_DELAYED_ACK_MS, ~key, p.gen[pos]!);
      return;
    }
    release(idx, pos, tMs);
  };

  /**
   * The bare ACK of a slow peer reaches a FIN_WAIT1 orphan: tcp_time_wait(sk, TCP_FIN_WAIT2, tmo)
   * makes it a FIN_WAIT2 minisocket if tcp_max_tw_buckets allows (it counts as a tw bucket from
   * now on), else the socket is closed at once and its port is free (TCPTimeWaitOverflow; the
   * peer's FIN later meets no socket).
   */
  const peerAck = (idx: number, pos: number, tMs: number): void => {
    const p = pools[idx]!;
    finWait1--;
    if (hostTw() >= maxTw) {
      overflows++;
      natClose(p, pos, tMs);
      p.gen[pos]!++;
      p.state[pos] = FREE;
      p.avail.add(pos);
      observer?.({
        kind: 'close',
        tMs,
        source: p.source,
        destination: p.peer ? p.peer[pos]! : p.destination,
        port: geo.low + pos,
        timeWait: false,
      });
      return;
    }
    clientTw++;
    if (hostTw() > peak) peak = hostTw();
    p.state[pos] = FIN_WAIT2;
  };

  /**
   * The close completes (at close(), or at the peer's FIN): TIME_WAIT, or the port is free. A
   * FIN_WAIT2 minisocket (`counted`) is a tw bucket already: tcp_timewait_state_process() just
   * switches its substate to TIME_WAIT, restamps tw_entry_stamp and rearms the 60 s timer.
   */
  const release = (idx: number, pos: number, tMs: number, counted = false): void => {
    const p = pools[idx]!;
    const natDest = natClose(p, pos, tMs);
    let tw = false;
    if (close === 'client-first') {
      if (!counted && hostTw() >= maxTw) {
        overflows++;
      } else {
        tw = true;
        if (!counted) clientTw++;
        if (hostTw() > peak) peak = hostTw();
        p.state[pos] = TIME_WAIT;
        if (p.entry) p.entry[pos] = tMs;
        const key = (idx << 16) | pos;
        expiries.push(timeWaitExpiryMs(tMs, hz, phaseJ), key, p.gen[pos]!);
        if (reuse) graduations.push(twReusableFromMs(tMs, delayMs), key, p.gen[pos]!);
      }
    } else if (close === 'server-first') {
      if (serverHostTw() >= maxTw) overflows++;
      else {
        serverTw++;
        if (hostTw() > peak) peak = hostTw();
        const until = timeWaitExpiryMs(tMs, hz, phaseJ);
        // Behind a NAT the server's TIME_WAIT is on (NAT address:port, server): keyed by that
        // port, so a collision that ends it early makes its timer stale.
        if (nat && natDest >= 0) {
          const natPos = p.natPos![pos]!;
          nat.setServerTimeWait(natDest, natPos, until);
          serverExpiries.push(until, natDest * 65536 + natPos + 1, 0);
        } else serverExpiries.push(until, 0, 0);
      }
    }
    if (!tw) {
      p.state[pos] = FREE;
      p.avail.add(pos);
    }
    observer?.({
      kind: 'close',
      tMs,
      source: p.source,
      destination: p.peer ? p.peer[pos]! : p.destination,
      port: geo.low + pos,
      timeWait: tw,
    });
  };

  /** Run every timer due at or before `tMs`, oldest first. */
  const advance = (tMs: number): void => {
    for (;;) {
      const tc = closes.peekTime();
      const tg = graduations.peekTime();
      const te = expiries.peekTime();
      const ts = serverExpiries.peekTime();
      const tf = peerFins.peekTime();
      const tr = retries.peekTime();
      const t = Math.min(tc, tg, te, ts, tf, tr);
      if (t > tMs) return;
      if (t === tr) {
        const id = retries.peekA();
        const giveUp = retries.peekB() === 1;
        retries.shift();
        synAgain(id, t, giveUp);
      } else if (t === tf) {
        const key = peerFins.peekA();
        const g = peerFins.peekB();
        peerFins.shift();
        const k = key < 0 ? ~key : key;
        const p = pools[k >>> 16]!;
        const pos = k & 0xffff;
        if (p.gen[pos] !== g) continue;
        if (key < 0) {
          if (p.state[pos] === FIN_WAIT1) peerAck(k >>> 16, pos, t);
        } else if (p.state[pos] === FIN_WAIT1) {
          finWait1--;
          release(k >>> 16, pos, t);
        } else if (p.state[pos] === FIN_WAIT2) {
          release(k >>> 16, pos, t, true);
        }
      } else if (t === tc) {
        const key = closes.peekA();
        closes.shift();
        closeConnection(key >>> 16, key & 0xffff, t);
      } else if (t === te) {
        const key = expiries.peekA();
        const g = expiries.peekB();
        expiries.shift();
        const p = pools[key >>> 16]!;
        const pos = key & 0xffff;
        if (p.gen[pos] === g && p.state[pos] === TIME_WAIT) {
          endTimeWait(p, pos, t, false);
          p.gen[pos]!++;
          p.state[pos] = FREE;
          p.avail.add(pos);
        }
      } else if (t === tg) {
        const key = graduations.peekA();
        const g = graduations.peekB();
        graduations.shift();
        const p = pools[key >>> 16]!;
        const pos = key & 0xffff;
        if (p.gen[pos] === g && p.state[pos] === TIME_WAIT) p.avail.add(pos);
      } else {
        const key = serverExpiries.peekA();
        serverExpiries.shift();
        if (key > 0) {
          // Behind a NAT: still this TIME_WAIT, unless a collision ended it.
          const dest = Math.floor((key - 1) / 65536);
          const natPos = (key - 1) % 65536;
          if (nat!.serverTimeWait(dest, natPos) !== t) continue;
          nat!.setServerTimeWait(dest, natPos, 0);
        }
        serverTw--;
      }
    }
  };

  const samples: ModelSample[] = [];
  let nextSample = (sc.sampleFromSec ?? 0) * 1000;
  const sampleUpTo = (tMs: number): void => {
    while (nextSample <= tMs) {
      advance(nextSample);
      samples.push({
        tSec: nextSample / 1000,
        clientHostTimeWait: hostTw(),
        serverTimeWait: serverTw,
        live,
      });
      nextSample += sampleMs;
    }
  };

  let attempted = 0;
  let succeeded = 0;
  let failed = 0;
  let firstFailureAt: number | null = null;
  let firstFailureMs: number | null = null;
  let firstErrno: ModelResult['failureErrno'] = null;
  let endMs = 0;

  /** The connection on client port `pos` of pool `idx` is established at `tMs`. */
  const established = (idx: number, pos: number, tMs: number, tookTw: boolean): void => {
    const p = pools[idx]!;
    succeeded++;
    const port = geo.low + pos;
    if (usedPorts[port] === 0) {
      usedPorts[port] = 1;
      localPortsUsed++;
    }
    observer?.({
      kind: 'connect',
      tMs,
      source: p.source,
      destination: p.peer ? p.peer[pos]! : p.destination,
      port,
      reusedTimeWait: tookTw,
    });
    if (holdMs === 0) closeConnection(idx, pos, tMs);
    else closes.push(tMs + holdMs, (idx << 16) | pos, p.gen[pos]!);
  };

  /**
   * Behind a NAT: the SYN of `attempt` (first sent at `startMs`, `tries` retransmissions before
   * this one) reaches the router at `tMs`. Returns whether it got a NAT port; if not, conntrack
   * drops it and the client sends it again after its retransmission timer, or gives up.
   */
  const natSyn = (
    idx: number,
    pos: number,
    attempt: number,
    startMs: number,
    tMs: number,
    tries: number,
    isn: number,
  ): boolean => {
    const p = pools[idx]!;
    const dest = p.peer ? p.peer[pos]! : p.destination;
    const natPos = nat!.choose(dest, geo.low + pos, isn, tMs);
    if (natPos < 0) {
      natStats.drops++;
      trouble = true;
      observer?.({ kind: 'nat-drop', tMs, attempt, destination: dest });
      const entry = { idx, pos, attempt, startMs, tries: tries + 1, isn };
      const id = freeSlots.length ? freeSlots.pop()! : pending.length;
      pending[id] = entry;
      const next = synRetransmitMs(startMs, tries);
      if (next - startMs >= connectTimeoutMs) retries.push(startMs + connectTimeoutMs, id, 1);
      else retries.push(next, id, 0);
      return false;
    }
    const how = nat!.how;
    p.natPos![pos] = natPos;
    // The NAT port is the client's own: kept (not fully-random), or drawn by chance.
    if (nat!.low + natPos === geo.low + pos) natStats.kept++;
    if (nat!.open(dest, natPos, isn)) {
      natStats.reuses++;
      if (natStats.firstReuseAtConnection === null || attempt < natStats.firstReuseAtConnection)
        natStats.firstReuseAtConnection = attempt;
    }
    let collision = false;
    if (close === 'server-first' && nat!.serverTimeWait(dest, natPos) > tMs) {
      // The SYN meets the server's TIME_WAIT of the port's last connection, which it ends (a new
      // connection from it, or the client's RST after the TIME_WAIT's ACK): its timer is stale.
      collision = true;
      natStats.collisions++;
      trouble = true;
      if (natStats.firstCollision === null || attempt < natStats.firstCollision.atConnection)
        natStats.firstCollision = { atConnection: attempt, sec: startMs / 1000 };
      nat!.setServerTimeWait(dest, natPos, 0);
      serverTw--;
    }
    if (tries > 0) {
      natStats.stalls++;
      if (natStats.firstStall === null || attempt < natStats.firstStall.atConnection)
        natStats.firstStall = { atConnection: attempt, sec: startMs / 1000, ms: tMs - startMs };
    }
    observer?.({
      kind: 'nat',
      tMs,
      attempt,
      destination: dest,
      clientPort: geo.low + pos,
      natPort: nat!.low + natPos,
      how,
      collision,
    });
    return true;
  };

  /** A dropped SYN's retransmission is due (or, `giveUp`, connect()'s time is over: ETIMEDOUT). */
  const synAgain = (id: number, tMs: number, giveUp: boolean): void => {
    const r = pending[id]!;
    freeSlots.push(id);
    if (!giveUp) {
      if (natSyn(r.idx, r.pos, r.attempt, r.startMs, tMs, r.tries, r.isn))
        established(r.idx, r.pos, tMs, false);
      return;
    }
    const p = pools[r.idx]!;
    failed++;
    trouble = true;
    if (firstFailureAt === null || r.attempt < firstFailureAt) {
      firstFailureAt = r.attempt;
      firstFailureMs = tMs;
      firstErrno = 'ETIMEDOUT';
    }
    observer?.({
      kind: 'fail',
      tMs,
      source: p.source,
      destination: p.peer ? p.peer[r.pos]! : p.destination,
      attempt: r.attempt,
      errno: 'ETIMEDOUT',
    });
    // A socket that never left SYN_SENT closes without TIME_WAIT: its port is free at once.
    live--;
    p.gen[r.pos]!++;
    p.state[r.pos] = FREE;
    p.avail.add(r.pos);
  };
  const pairs = sources * destinations;

  // A run whose only pool has no port to give fails every attempt until a timer frees one: those
  // attempts change nothing but the failure count, so they are counted, not walked. This keeps a
  // saturated run's work proportional to the connections that succeed, not to the rate.
  const skipFailures = poolCount === 1 && !arrivals && !observer && !nat;

  for (let k = 0; k < maxAttempts; k++) {
    const tMs = arrivals ? arrivals[k]! : k * stepMs;
    if (tMs >= durationMs) break;
    sampleUpTo(tMs);
    advance(tMs);
    if (sc.stopAtFirstFailure && trouble) break;
    endMs = tMs;
    attempted++;
    const pair = k % pairs;
    const destination = pair % destinations;
    const source = Math.floor(pair / destinations);
    const idx = bindMode ? source : pair;
    const p = poolFor(idx, source, destination);
    const pos = bindMode
      ? chooseBindPort(p, geo, rng, sc.reuseAddr ?? false)
      : chooseConnectPort(p, geo, rng, literalWalk);
    if (pos < 0) {
      failed++;
      if (firstFailureAt === null || attempted < firstFailureAt) {
        firstFailureAt = attempted;
        firstFailureMs = tMs;
        firstErrno = failureErrno;
      }
      observer?.({ kind: 'fail', tMs, source, destination, attempt: attempted, errno: failureErrno });
      if (sc.stopAtFirstFailure) break;
      // connect()'s walk depends only on the pool (it draws no random number when it fails), so it
      // fails again until a timer changes the pool; bind(0) draws a new offset, so only an empty
      // pool is sure to fail again.
      if (skipFailures && (!bindMode || p.avail.count === 0)) {
        const nextFree = Math.min(
          durationMs,
          closes.peekTime(),
          graduations.peekTime(),
          expiries.peekTime(),
          peerFins.peekTime(),
        );
        // The last attempt before nextFree; the loop's k++ then lands on the first one at or after it.
        let last =
          nextFree === Infinity
            ? maxAttempts - 1
            : Math.min(maxAttempts - 1, Math.ceil(nextFree / stepMs) - 1);
        while (last > k && last * stepMs >= nextFree) last--;
        if (last > k) {
          attempted += last - k;
          failed += last - k;
          endMs = last * stepMs;
          k = last;
        }
      }
      continue;
    }
    const tookTw = p.state[pos] === TIME_WAIT;
    if (tookTw) {
      reused++;
      endTimeWait(p, pos, tMs, true);
    }
    p.gen[pos]!++;
    p.state[pos] = LIVE;
    if (p.peer) p.peer[pos] = destination;
    if (p.finDelay) p.finDelay[pos] = finDelays ? Math.max(0, finDelays[k] ?? 0) : finDelayConst;
    p.avail.delete(pos);
    live++;
    if (nat && !natSyn(idx, pos, attempted, tMs, tMs, 0, rng.u32())) continue;
    established(idx, pos, tMs, tookTw);
  }
  const stopped = sc.stopAtFirstFailure === true && (firstFailureAt !== null || trouble);
  // Behind a NAT, connects whose SYN was dropped are still waiting: as a client would, wait for
  // each to connect or time out (bounded by the connect timeout).
  if (!stopped) {
    while (retries.size > 0) {
      const t = retries.peekTime();
      advance(t);
      if (t > endMs) endMs = t;
    }
  }
  // Let the run's last second play out so the final sample reflects it.
  if (durationMs !== Infinity && !stopped) endMs = Math.max(endMs, durationMs);
  sampleUpTo(endMs);
  advance(endMs);
  if (samples.length === 0 || samples[samples.length - 1]!.tSec * 1000 < endMs) {
    samples.push({ tSec: endMs / 1000, clientHostTimeWait: hostTw(), serverTimeWait: serverTw, live });
  }

  return {
    attempted,
    succeeded,
    failed,
    firstFailureAtConnection: firstFailureAt,
    firstFailureSec: firstFailureMs === null ? null : firstFailureMs / 1000,
    failureErrno: firstFailureAt === null ? null : firstErrno,
    endSec: endMs / 1000,
    samples,
    peakClientHostTimeWait: peak,
    timeWaitReused: reused,
    timeWaitOverflows: overflows,
    peakFinWait1,
    localPortsUsed,
    ...(nat
      ? {
          nat: {
            ...natStats,
            evictions: nat.evictions,
            portsUsed: nat.portsUsed,
            heldAtEnd: nat.held(endMs),
          },
        }
      : {}),
  };
}

/**
 * Positions no socket of the workload can take: ip_local_reserved_ports and listeners' ports.
 * The ranges are walked in order of their low end, each port at most once, so a long list of
 * overlapping ranges costs no more than the range itself.
 */
export function unusablePositions(geo: PortGeometry, sc: ModelScenario): number[] {
  const marked = new Uint8Array(geo.size);
  const ranges = [...(sc.reservedPorts ?? [])].sort((a, b) => a.low - b.low);
  let next = geo.low;
  for (const r of ranges) {
    for (let port = Math.max(r.low, next); port <= Math.min(r.high, geo.high); port++)
      marked[port - geo.low] = 1;
    next = Math.max(next, r.high + 1);
  }
  for (const port of sc.boundPorts ?? []) {
    if (port >= geo.low && port <= geo.high) marked[port - geo.low] = 1;
  }
  const out: number[] = [];
  marked.forEach((m, pos) => {
    if (m) out.push(pos);
  });
  return out;
}

function newPool(
  geo: PortGeometry,
  unusable: readonly number[],
  source: number,
  destination: number,
  rng: Rng,
  observed: boolean,
  peerDelays: boolean,
  natted: boolean,
): Pool {
  const avail = new PortBitmap(geo.size);
  avail.fillAll();
  const state = new Uint8Array(geo.size);
  for (const pos of unusable) {
    avail.delete(pos);
    state[pos] = UNUSABLE;
  }
  return {
    source,
    destination,
    avail,
    state,
    gen: new Uint16Array(geo.size),
    entry: observed ? new Float64Array(geo.size) : undefined,
    peer: destination < 0 ? new Int32Array(geo.size) : undefined,
    finDelay: peerDelays ? new Float64Array(geo.size) : undefined,
    natPos: natted ? new Int32Array(geo.size) : undefined,
    perturb: rng.u32(),
    hashHi: rng.u32(),
  };
}
