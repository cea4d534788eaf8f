/**
 * The model's rules one by one, on small scenarios whose outcome follows from the kernel rule the
 * model cites (see src/model/*.ts for the source of each).
 */
import { describe, expect, it } from 'vitest';
import { simulate, timeWaitMaxMs } from '../../src/model/index.js';
import type { ModelEvent, ModelScenario } from '../../src/model/index.js';
import { PortBitmap } from '../../src/model/port-bitmap.js';
import {
  chooseConnectPort,
  literalConnectWalk,
  parityWalk,
  portGeometry,
  type SearchPool,
} from '../../src/model/port-choice.js';
import { Rng } from '../../src/model/rng.js';

const R100 = { low: 40000, high: 40099 };
const base: ModelScenario = { rate: 1000, count: 400, portRange: R100, twReuse: 0 };

function events(sc: ModelScenario): ModelEvent[] {
  const out: ModelEvent[] = [];
  simulate(sc, (e) => out.push(e));
  return out;
}

describe('count-bounded churn, tcp_tw_reuse=0', () => {
  it('fails at connection N+1 for N ports, one destination', () => {
    const r = simulate(base);
    expect(r.firstFailureAtConnection).toBe(101);
    expect(r.succeeded).toBe(100);
    expect(r.localPortsUsed).toBe(100);
    expect(r.firstFailureSec).toBeCloseTo(0.1, 9);
  });

  it('gives each destination the whole range with plain connect() (4-tuple uniqueness)', () => {
    const r = simulate({ ...base, destinations: 3, count: 400 });
    expect(r.firstFailureAtConnection).toBe(301);
    expect(r.localPortsUsed).toBe(100);
  });

  it('gives each source address the whole range per destination', () => {
    const r = simulate({
      ...base,
      destinations: 2,
      sourceAddresses: 2,
      portMode: 'bind-no-port',
      count: 500,
    });
    expect(r.firstFailureAtConnection).toBe(401);
  });

  it('shares one range across destinations with bind(0) before connect()', () => {
    expect(
      simulate({ ...base, destinations: 3, portMode: 'bind-before-connect' }).firstFailureAtConnection,
    ).toBe(101);
    expect(
      simulate({ ...base, destinations: 3, portMode: 'bind-before-connect', reuseAddr: true })
        .firstFailureAtConnection,
    ).toBe(101);
    expect(
      simulate({ ...base, destinations: 2, sourceAddresses: 2, portMode: 'bind-before-connect' })
        .firstFailureAtConnection,
    ).toBe(201);
  });

  it('skips ip_local_reserved_ports and ports held by listeners', () => {
    const r = simulate({
      ...base,
      reservedPorts: [
        { low: 40010, high: 40019 },
        { low: 39000, high: 40000 },
      ],
      boundPorts: [40050, 8080],
    });
    expect(r.firstFailureAtConnection).toBe(89);
  });

  it('loses one port per walk on an odd-sized range, unless IP_LOCAL_PORT_RANGE is set', () => {
    const odd = { low: 40000, high: 40100 };
    const outcomes = new Set<number | null>();
    for (let seed = 1; seed <= 40; seed++)
      outcomes.add(simulate({ ...base, portRange: odd, seed }).firstFailureAtConnection);
    for (const o of outcomes) expect([101, 102]).toContain(o);
    expect(simulate({ ...base, portRange: odd, socketPortRange: odd }).firstFailureAtConnection).toBe(102);
  });

  it('narrows the range to IP_LOCAL_PORT_RANGE where its bounds fall inside', () => {
    expect(simulate({ ...base, socketPortRange: { low: 40010, high: 40029 } }).firstFailureAtConnection).toBe(
      21,
    );
    expect(simulate({ ...base, socketPortRange: { low: 30000, high: 40029 } }).firstFailureAtConnection).toBe(
      31,
    );
    expect(simulate({ ...base, socketPortRange: { low: 40090, high: 50000 } }).firstFailureAtConnection).toBe(
      11,
    );
  });

  it('frees nothing with client-first close; server-first and rst leave the client no TIME_WAIT', () => {
    expect(simulate(base).peakClientHostTimeWait).toBe(100);
    const sf = simulate({ ...base, close: 'server-first', count: 1000 });
    expect(sf.firstFailureAtConnection).toBeNull();
    expect(sf.samples.at(-1)!.serverTimeWait).toBe(1000);
    expect(sf.samples.at(-1)!.clientHostTimeWait).toBe(0);
    const loop = simulate({ ...base, close: 'server-first', count: 1000, loopback: true });
    expect(loop.samples.at(-1)!.clientHostTimeWait).toBe(1000);
    const rst = simulate({ ...base, close: 'rst', count: 1000 });
    expect(rst.firstFailureAtConnection).toBeNull();
    expect(rst.peakClientHostTimeWait).toBe(0);
  });

  it('closes without TIME_WAIT beyond tcp_max_tw_buckets', () => {
    const r = simulate({ ...base, maxTwBuckets: 60, count: 1000 });
    expect(r.firstFailureAtConnection).toBeNull();
    expect(r.peakClientHostTimeWait).toBe(60);
    expect(r.timeWaitOverflows).toBe(940);
  });
});

describe('port choice order', () => {
  it('connect() takes even offsets first, bind(0) odd ones first', () => {
    const firstPorts = (mode: 'connect' | 'bind-before-connect'): number[] =>
      events({ ...base, count: 40, portMode: mode })
        .filter((e) => e.kind === 'connect')
        .map((e) => (e as { port: number }).port - R100.low);
    expect(firstPorts('connect').every((p) => p % 2 === 0)).toBe(true);
    expect(firstPorts('bind-before-connect').every((p) => p % 2 === 1)).toBe(true);
    // Once one parity is used up, the other one follows.
    const all = events({ ...base, count: 100 }).filter((e) => e.kind === 'connect');
    expect(all.slice(50).every((e) => ((e as { port: number }).port - R100.low) % 2 === 1)).toBe(true);
  });

  it('finds the same port with the bitmap as with the literal walk', () => {
    const rng = new Rng(7);
    for (let trial = 0; trial < 300; trial++) {
      const size = 2 + 2 * rng.below(300);
      const geo = portGeometry({ low: 1000, high: 1000 + size - 1 });
      const bm = new PortBitmap(size);
      const density = rng.below(100);
      for (let pos = 0; pos < size; pos++) if (rng.below(100) < density / 10) bm.add(pos);
      const offset = rng.below(size) & ~1;
      const [literal] = literalConnectWalk(bm, geo, offset, 2);
      let fast = bm.nextCyclic(offset, size, 0);
      if (fast < 0) fast = bm.nextCyclic(offset + 1, size, 1);
      expect(fast).toBe(literal);
    }
  });
});

describe('odd-sized ranges', () => {
  it('walk with the bitmap to the port the literal walk finds, for connect() and bind(0)', () => {
    const rng = new Rng(11);
    for (let trial = 0; trial < 400; trial++) {
      const size = 3 + 2 * rng.below(300);
      const geo = portGeometry({ low: 1000, high: 1000 + size - 1 });
      const bm = new PortBitmap(size);
      const density = rng.below(100);
      for (let pos = 0; pos < size; pos++) if (rng.below(1000) < density) bm.add(pos);
      const perturb = rng.u32();
      const pool = (): SearchPool => ({ avail: bm, perturb, hashHi: 0 });
      const literal = pool();
      const fast = pool();
      expect(chooseConnectPort(fast, geo, new Rng(trial))).toBe(
        chooseConnectPort(literal, geo, new Rng(trial), true),
      );
      expect(fast.perturb).toBe(literal.perturb);
      // inet_csk_find_open_port()'s loop over [from, to), port by port.
      const from = 2 * rng.below(10);
      const to = Math.min(size, from + 1 + 2 * rng.below(size));
      const remaining = (to - from) & ~1;
      if (remaining < 2) continue;
      const start = from + (rng.below(remaining) | 1) - (trial & 1);
      let expected = -1;
      let rel = start;
      for (let i = 0; i < remaining; i += 2, rel += 2) {
        if (rel >= to) rel -= remaining;
        if (bm.has(rel)) {
          expected = rel;
          break;
        }
      }
      expect(parityWalk(bm, start, from, to, remaining)[0]).toBe(expected);
    }
  });
});

describe('TIME_WAIT length', () => {
  it('lasts 60 s plus at most one timer-wheel bucket (2.048 s at HZ=250)', () => {
    const lives: number[] = [];
    simulate({ ...base, rate: 2, count: 40, durationSec: 90 }, (e) => {
      if (e.kind === 'tw-end') lives.push(e.tMs - e.enteredMs);
    });
    expect(lives.length).toBe(40);
    for (const l of lives) {
      expect(l).toBeGreaterThan(60_000);
      expect(l).toBeLessThanOrEqual(62_048);
    }
    // Spread over the bucket, not all at one end.
    expect(Math.max(...lives) - Math.min(...lives)).toBeGreaterThan(1500);
    expect(timeWaitMaxMs(1000)).toBe(64_097);
  });

  it('frees the ports after TIME_WAIT, so a slow churn never fails', () => {
    // 1.5 connections/s over 100 ports: 60 s of TIME_WAIT holds about 92 of them.
    const r = simulate({ ...base, count: undefined, rate: 1.5, durationSec: 300 });
    expect(r.firstFailureAtConnection).toBeNull();
    const r2 = simulate({ ...base, count: undefined, rate: 1.7, durationSec: 300 });
    expect(r2.firstFailureAtConnection).toBe(101);
  });
});

describe('tcp_tw_reuse', () => {
  const churn = { ...base, count: undefined, durationSec: 10, rate: 150 };

  it('reuses TIME_WAIT 4-tuples older than tcp_tw_reuse_delay with reuse=1', () => {
    const r = simulate({ ...churn, twReuse: 1 });
    // 150/s x 1 s of delay > 100 ports: still fails, once the first 100 are younger than 1 s.
    expect(r.firstFailureAtConnection).toBe(101);
    const slow = simulate({ ...churn, twReuse: 1, rate: 90 });
    expect(slow.firstFailureAtConnection).toBeNull();
    expect(slow.timeWaitReused).toBeGreaterThan(500);
  });

  it('needs timestamps, and loopback for reuse=2', () => {
    const slow = { ...churn, rate: 90 };
    expect(simulate({ ...slow, twReuse: 1, timestamps: false }).firstFailureAtConnection).toBe(101);
    expect(simulate({ ...slow, twReuse: 2 }).firstFailureAtConnection).toBe(101);
    expect(simulate({ ...slow, twReuse: 2, loopback: true }).firstFailureAtConnection).toBeNull();
    expect(simulate({ ...slow, twReuse: 0, loopback: true }).firstFailureAtConnection).toBe(101);
  });

  it('honours tcp_tw_reuse_delay', () => {
    const slow = { ...churn, rate: 90, twReuse: 1 as const };
    expect(simulate({ ...slow, twReuseDelayMs: 2000 }).firstFailureAtConnection).toBe(101);
    expect(simulate({ ...slow, twReuseDelayMs: 500, rate: 180 }).firstFailureAtConnection).toBeNull();
  });

  it('does not help bind(0) before connect(): bind conflicts with TIME_WAIT', () => {
    const r = simulate({ ...churn, rate: 90, twReuse: 1, portMode: 'bind-before-connect' });
    expect(r.firstFailureAtConnection).toBe(101);
    expect(r.timeWaitReused).toBe(0);
  });
});

describe("the peer's close latency (FIN_WAIT1 orphans, peerCloseDelayMs)", () => {
  // 8000 attempts/s on exact binary fractions of a ms, so "FIN at or before the attempt" is exact.
  const fast = (n: number): number[] => Array.from({ length: n }, (_, k) => k * 0.125);
  const capped: ModelScenario = {
    rate: 8000,
    arrivalsMs: fast(300),
    count: 300,
    portRange: R100,
    twReuse: 0,
    maxTwBuckets: 50,
    stopAtFirstFailure: true,
  };

  it('with tcp_max_tw_buckets reached, fails once the orphans waiting for the FIN fill the rest', () => {
    // FIN 50 attempts after the close (due at the same instant as that attempt, so it goes
    // first): 49 orphans + 50 TIME_WAIT hold 99 ports when a connect() comes.
    const slack = simulate({ ...capped, peerCloseDelayMs: 50 * 0.125 });
    expect(slack.firstFailureAtConnection).toBeNull();
    expect(slack.peakFinWait1).toBe(50);
    // FINs of attempts 1-250 arrived within the run: 50 became TIME_WAIT, the rest overflowed.
    expect(slack.timeWaitOverflows).toBe(250 - 50);
    // One attempt later: 50 orphans + 50 TIME_WAIT hold all 100 ports at attempt 101.
    const full = simulate({ ...capped, peerCloseDelayMs: 51 * 0.125 });
    expect(full.firstFailureAtConnection).toBe(101);
    expect(full.peakFinWait1).toBe(51);
    // Without the latency the overflowed sockets free their ports at close().
    expect(simulate(capped).firstFailureAtConnection).toBeNull();
  });

  it('takes per-attempt delays (a replayed run), which win over the constant', () => {
    const delays = Array.from({ length: 300 }, (_, k) => (k < 150 ? 0 : 51 * 0.125));
    const r = simulate({ ...capped, peerCloseDelayMs: 0, peerCloseDelaysMs: delays });
    // Orphans pile up from attempt 151 on; the 50th is attempt 200, so 201 fails.
    expect(r.firstFailureAtConnection).toBe(201);
  });

  it('counts a peer slower than its delayed-ACK timer as a FIN_WAIT2 minisocket, capped like TIME_WAIT', () => {
    // Bare ACK 40 ms after each close: the socket becomes a tw bucket (or overflows and frees
    // its port) then, so at most 40 orphans and 50 buckets hold ports: never 100.
    const r = simulate({ ...capped, rate: 1000, arrivalsMs: undefined, peerCloseDelayMs: 200 });
    expect(r.firstFailureAtConnection).toBeNull();
    expect(r.peakFinWait1).toBe(40);
    expect(r.peakClientHostTimeWait).toBe(50);
    expect(r.timeWaitOverflows).toBe(300 - 50 - 40);
  });

  it('starts TIME_WAIT, its 60 s and the tcp_tw_reuse_delay at the FIN', () => {
    const reuse: ModelScenario = {
      rate: 80,
      durationSec: 3,
      portRange: R100,
      twReuse: 2,
      loopback: true,
      stopAtFirstFailure: true,
    };
    // Ports come back 1 s after an instant peer's FIN: 80 suffice at 80/s.
    expect(simulate(reuse).firstFailureAtConnection).toBeNull();
    // 500 ms later: 1.5 s x 80/s = 120 ports needed; the 101st attempt (1.25 s) finds none.
    const slow = simulate({ ...reuse, peerCloseDelayMs: 500 });
    expect(slow.firstFailureAtConnection).toBe(101);
    expect(slow.firstFailureSec).toBeCloseTo(1.25, 9);
    const ev = events({ ...base, count: 3, peerCloseDelayMs: 30, durationSec: 70 });
    const closes = ev.filter((e) => e.kind === 'close');
    expect(closes.map((e) => e.tMs)).toEqual([30, 31, 32]);
    for (const e of ev) if (e.kind === 'tw-end') expect(e.tMs - e.enteredMs).toBeGreaterThan(60_000);
    expect(ev.filter((e) => e.kind === 'tw-end').map((e) => e.enteredMs)).toEqual([30, 31, 32]);
  });
});
