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
 * - close server-first: the client gets the FIN, closes from CLOSE_WAIT and goes LAST_ACK ->
 *   CLOSED with no TIME_WAIT; the server holds it. rst (SO_LINGER {1,0}): tcp_disconnect() sends a
 *   RST, no TIME_WAIT on either side.
 *
 * Not modelled: the peer's close latency (the peer is assumed to send its FIN at once; in the
 * kernel a TIME_WAIT socket still in its FIN_WAIT2 substate is never reused and tw_entry_stamp
 * restarts at the peer's FIN, so a slow peer delays reuse), FIN_WAIT2 timeouts, SYN retransmission or
 * loss, SO_REUSEPORT, ip_autobind_reuse, IPv6, shared table_perturb slots between destinations,
 * the server side's port limits, and anything that takes time on the wire (a connection's life is
 * `holdSec`, its handshake and teardown take no time).
 */
import { PortBitmap } from './port-bitmap.js';
import { EventFifo } from './fifo.js';
import { Rng } from './rng.js';
import {
  DEFAULT_TW_REUSE_DELAY_MS,
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
  /** table_perturb[index] for this pair (RFC 6056 algorithm 4 in __inet_hash_connect). */
  perturb: number;
  /** port_offset >> 32: the secret hash of (saddr, daddr, dport), secure_ipv4_port_ephemeral(). */
  readonly hashHi: number;
}

const MAX_POOLS = 32767;

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
  const hz = sc.hz ?? 250;
  const phaseJ = rng.below(4096);
  const delayMs = sc.twReuseDelayMs ?? DEFAULT_TW_REUSE_DELAY_MS;
  const maxTw = sc.maxTwBuckets ?? Infinity;
  // tcp_twsk_unique() is only reached from connect()'s own port search; bind(0) never offers a
  // port that has a TIME_WAIT socket, so reuse cannot apply there.
  const reuse = !bindMode && twReuseApplies(sc.twReuse, loopback, sc.timestamps ?? true);
  const holdMs = (sc.holdSec ?? 0) * 1000;
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
      p = newPool(geo, unusable, source, bindMode ? -1 : destination, rng, observer !== undefined);
      pools[idx] = p;
    }
    return p;
  };

  // Sized for a TIME_WAIT span of arrivals, so the queues rarely grow.
  const expected = Math.min(Math.ceil(sc.rate * 64), maxAttempts, 1 << 21) || 1024;
  const closes = new EventFifo(holdMs > 0 ? Math.min(Math.ceil(sc.rate * (holdMs / 1000 + 1)), 1 << 21) : 16);
  const graduations = new EventFifo(
    reuse ? Math.min(Math.ceil(sc.rate * (delayMs / 1000 + 1)), 1 << 21) : 16,
  );
  const expiries = new EventFifo(close === 'client-first' ? expected : 16);
  const serverExpiries = new EventFifo(close === 'server-first' ? expected : 16);
  let clientTw = 0;
  let serverTw = 0;
  let live = 0;
  let reused = 0;
  let overflows = 0;
  let peak = 0;
  const usedPorts = new Uint8Array(65536);
  let localPortsUsed = 0;

  const hostTw = (): number => clientTw + (loopback ? serverTw : 0);
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
    let tw = false;
    if (close === 'client-first') {
      if (hostTw() >= maxTw) {
        overflows++;
      } else {
        tw = true;
        clientTw++;
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
        serverExpiries.push(timeWaitExpiryMs(tMs, hz, phaseJ), 0, 0);
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
      const t = Math.min(tc, tg, te, ts);
      if (t > tMs) return;
      if (t === tc) {
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
        serverExpiries.shift();
        serverTw--;
      }
    }
  };

  const samples: ModelSample[] = [];
  let nextSample = 0;
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
  let endMs = 0;
  const pairs = sources * destinations;

  for (let k = 0; k < maxAttempts; k++) {
    const tMs = arrivals ? arrivals[k]! : k * stepMs;
    if (tMs >= durationMs) break;
    sampleUpTo(tMs);
    advance(tMs);
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
      if (firstFailureAt === null) {
        firstFailureAt = attempted;
        firstFailureMs = tMs;
      }
      observer?.({ kind: 'fail', tMs, source, destination, attempt: attempted, errno: failureErrno });
      if (sc.stopAtFirstFailure) break;
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
    p.avail.delete(pos);
    live++;
    succeeded++;
    const port = geo.low + pos;
    if (usedPorts[port] === 0) {
      usedPorts[port] = 1;
      localPortsUsed++;
    }
    observer?.({ kind: 'connect', tMs, source, destination, port, reusedTimeWait: tookTw });
    if (holdMs === 0) closeConnection(idx, pos, tMs);
    else closes.push(tMs + holdMs, (idx << 16) | pos, p.gen[pos]!);
  }
  // Let the run's last second play out so the final sample reflects it.
  if (durationMs !== Infinity && !(sc.stopAtFirstFailure && firstFailureAt !== null)) endMs = durationMs;
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
    failureErrno: firstFailureAt === null ? null : failureErrno,
    endSec: endMs / 1000,
    samples,
    peakClientHostTimeWait: peak,
    timeWaitReused: reused,
    timeWaitOverflows: overflows,
    localPortsUsed,
  };
}

/** Positions no socket of the workload can take: ip_local_reserved_ports and listeners' ports. */
function unusablePositions(geo: PortGeometry, sc: ModelScenario): number[] {
  const out: number[] = [];
  const mark = (port: number): void => {
    if (port >= geo.low && port <= geo.high) out.push(port - geo.low);
  };
  for (const r of sc.reservedPorts ?? []) {
    for (let port = Math.max(r.low, geo.low); port <= Math.min(r.high, geo.high); port++) mark(port);
  }
  for (const port of sc.boundPorts ?? []) mark(port);
  return out;
}

function newPool(
  geo: PortGeometry,
  unusable: readonly number[],
  source: number,
  destination: number,
  rng: Rng,
  observed: boolean,
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
    perturb: rng.u32(),
    hashHi: rng.u32(),
  };
}
