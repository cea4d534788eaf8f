/**
 * Invariants of the model, checked over random scenarios (fast-check): they hold for any workload
 * because they are rules of the kernel the model claims to follow.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { simulate, timeWaitMaxMs, TCP_TIMEWAIT_LEN_MS } from '../../src/model/index.js';
import type { ModelEvent, ModelScenario } from '../../src/model/index.js';

const scenario = fc.record({
  rate: fc.integer({ min: 5, max: 3000 }),
  durationSec: fc.integer({ min: 1, max: 150 }),
  low: fc.integer({ min: 1024, max: 60000 }),
  size: fc.integer({ min: 1, max: 200 }),
  twReuse: fc.constantFrom(0 as const, 1 as const, 2 as const),
  twReuseDelayMs: fc.integer({ min: 1, max: 3000 }),
  loopback: fc.boolean(),
  timestamps: fc.boolean(),
  destinations: fc.integer({ min: 1, max: 4 }),
  sourceAddresses: fc.integer({ min: 1, max: 3 }),
  portMode: fc.constantFrom('connect' as const, 'bind-before-connect' as const, 'bind-no-port' as const),
  close: fc.constantFrom('client-first' as const, 'server-first' as const, 'rst' as const),
  holdSec: fc.constantFrom(0, 0.01, 0.5, 3),
  // The peer's close latency: none, a few ms, past its delayed-ACK timer (FIN_WAIT2 minisocket).
  peerCloseDelayMs: fc.constantFrom(0, 0, 3, 45, 500),
  maxTwBuckets: fc.constantFrom(1_000_000, 50, 0),
  socketRange: fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined }),
  reuseAddr: fc.boolean(),
  hz: fc.constantFrom(100, 250, 1000),
  seed: fc.integer({ min: 0, max: 2 ** 31 }),
});

function fail(message: string): never {
  throw new Error(message);
}

type Drawn = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

function toScenario(d: Drawn): ModelScenario {
  const high = Math.min(65535, d.low + d.size - 1);
  return {
    rate: d.rate,
    durationSec: Math.min(d.durationSec, 20_000 / d.rate),
    portRange: { low: d.low, high },
    twReuse: d.twReuse,
    twReuseDelayMs: d.twReuseDelayMs,
    loopback: d.loopback,
    timestamps: d.timestamps,
    destinations: d.destinations,
    sourceAddresses: d.sourceAddresses,
    portMode: d.portMode,
    close: d.close,
    holdSec: d.holdSec,
    peerCloseDelayMs: d.peerCloseDelayMs,
    maxTwBuckets: d.maxTwBuckets,
    socketPortRange:
      d.socketRange === undefined
        ? undefined
        : { low: d.low + (d.socketRange % 7), high: high - (d.socketRange % 5) },
    reuseAddr: d.reuseAddr,
    hz: d.hz,
    seed: d.seed,
  };
}

describe('model invariants', () => {
  it('never gives one port to two live connections with the same 4-tuple (nor, after bind(0), to two at all)', () => {
    fc.assert(
      fc.property(scenario, (d) => {
        const sc = toScenario(d);
        const live = new Map<string, number>();
        const timeWait = new Set<string>();
        const bindHeld = new Map<string, number>();
        const observe = (e: ModelEvent): void => {
          if (e.kind === 'fail' || e.kind === 'nat' || e.kind === 'nat-drop') return;
          const tuple = `${e.source}|${e.destination}|${e.port}`;
          const bound = `${e.source}|${e.port}`;
          // Plain checks (not expect()): this runs for every event of every run.
          if (e.kind === 'connect') {
            if (live.has(tuple)) fail(`port ${e.port} given twice to live ${tuple} at ${e.tMs} ms`);
            // A TIME_WAIT with the same 4-tuple may only be taken over through tcp_tw_reuse,
            // which ends it (a tw-end event) first.
            if (timeWait.has(tuple)) fail(`${tuple} connected over its own TIME_WAIT at ${e.tMs} ms`);
            if (sc.portMode === 'bind-before-connect' && (bindHeld.get(bound) ?? 0) !== 0) {
              fail(`bind(0) gave port ${e.port} of source ${e.source} while a socket holds it`);
            }
            live.set(tuple, e.tMs);
            bindHeld.set(bound, (bindHeld.get(bound) ?? 0) + 1);
          } else if (e.kind === 'close') {
            if (!live.delete(tuple)) fail(`closed ${tuple}, which was not live`);
            if (e.timeWait) timeWait.add(tuple);
            else bindHeld.set(bound, bindHeld.get(bound)! - 1);
          } else {
            if (!timeWait.delete(tuple)) fail(`TIME_WAIT of ${tuple} ended but was not there`);
            bindHeld.set(bound, bindHeld.get(bound)! - 1);
          }
        };
        // Reuse events end the TIME_WAIT right before the connect that takes it over.
        simulate(sc, observe);
      }),
      { numRuns: 150 },
    );
  });

  it('ends every TIME_WAIT within its length (60 s + one timer-wheel bucket), never before 60 s unless reused', () => {
    fc.assert(
      fc.property(scenario, (d) => {
        const sc = { ...toScenario(d), close: 'client-first' as const };
        const max = timeWaitMaxMs(sc.hz ?? 250);
        let ended = 0;
        simulate(sc, (e) => {
          if (e.kind !== 'tw-end') return;
          ended++;
          const life = e.tMs - e.enteredMs;
          if (life > max) fail(`TIME_WAIT lived ${life} ms > ${max} ms`);
          if (!e.reused && life <= TCP_TIMEWAIT_LEN_MS)
            fail(`TIME_WAIT ended after ${life} ms without reuse`);
          if (e.reused && life <= (sc.twReuseDelayMs ?? 1000)) fail(`TIME_WAIT reused after ${life} ms`);
        });
        expect(ended).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 100 },
    );
  });

  it('never fails sooner with a wider port range', () => {
    fc.assert(
      fc.property(scenario, fc.integer({ min: 1, max: 300 }), (d, extra) => {
        const sc = { ...toScenario(d), socketPortRange: undefined, stopAtFirstFailure: true };
        const wider = {
          ...sc,
          portRange: { low: sc.portRange.low, high: Math.min(65535, sc.portRange.high + extra) },
        };
        const a = simulate(sc);
        const b = simulate(wider);
        if (a.firstFailureAtConnection === null) expect(b.firstFailureAtConnection).toBeNull();
        else if (b.firstFailureAtConnection !== null) {
          expect(b.firstFailureAtConnection).toBeGreaterThanOrEqual(a.firstFailureAtConnection);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('counts the failures of a saturated run without walking them, with the same result', () => {
    // An observer makes simulate() walk every attempt; without one, a run whose only pool is empty
    // counts the attempts up to the next timer. Both must agree on every figure.
    fc.assert(
      fc.property(scenario, (d) => {
        const sc = { ...toScenario(d), destinations: 1, sourceAddresses: 1 };
        expect(simulate(sc)).toEqual(simulate(sc, () => {}));
      }),
      { numRuns: 150 },
    );
  });

  it('is deterministic given its seed', () => {
    fc.assert(
      fc.property(scenario, (d) => {
        const sc = toScenario(d);
        expect(simulate(sc)).toEqual(simulate(sc));
      }),
      { numRuns: 30 },
    );
  });
});
