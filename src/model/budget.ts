/**
 * The model's own bound on work and memory. A run of simulate() costs one step per connection
 * attempt it walks (a run whose only pool is full counts its failures without walking them, see
 * simulate.ts) and a few bytes per port of every pool it keeps; predict() makes up to ~250 runs.
 * boundedSimulate() holds each run to WORK_BUDGET steps (SEARCH_WORK_BUDGET for the many runs of
 * the sustainable-rate search) and PORT_SLOT_BUDGET port slots: a run
 * that would need more is made coarser, and the result says how, so the caller can say so.
 *
 * Coarser means, in this order:
 * 1. Identical pools as one: round-robin destinations (and source addresses) each get the same
 *    share of the rate, so one pool with its share of the rate and of tcp_max_tw_buckets stands
 *    for all of them (what the sustainable-rate search always did); counts are multiplied back.
 * 2. Scaled down: rate, usable ports and tcp_max_tw_buckets divided by the same factor, times kept.
 *    How full the pool is over time depends on rate x port hold time / ports, which this keeps;
 *    what it loses is the exact port walk (fewer, larger steps). Counts are multiplied back.
 * Behind a NAT (scenario.nat) the NAT's ports are one pool per destination that every source
 * address shares: only destinations are simulated as one, and the NAT's ports are scaled down with
 * the rest (its 128-try rounds and 32 evicting tries are then over a smaller range: approximate).
 * Every attempt is walked there (a dropped SYN is retried, so none can be skipped), and an attempt
 * may try up to 248 NAT ports: a NAT run's steps count NAT_STEP_WEIGHT each.
 */
import { TCP_TIMEWAIT_LEN_MS, DEFAULT_TW_REUSE_DELAY_MS, twReuseApplies } from './kernel-rules.js';
import { portGeometry } from './port-choice.js';
import { MAX_POOLS, simulate, unusablePositions } from './simulate.js';
import type { ModelResult, ModelScenario } from './types.js';

/** Steps one run may take: 0.5-2 s of one core. */
export const WORK_BUDGET = 2_000_000;
/** Steps one run of the sustainable-rate search may take (it makes up to ~25 runs per figure). */
export const SEARCH_WORK_BUDGET = 250_000;
/** Port slots (pools x ports in the range) one run may keep: ~4 bytes each. */
export const PORT_SLOT_BUDGET = 8_000_000;

/** What one attempt costs behind a NAT, in steps (up to 248 tries of nf_nat_l4proto_unique_tuple). */
export const NAT_STEP_WEIGHT = 4;

/** How a run was made coarser to fit the budget. */
export interface Coarsening {
  /** Identical port pools (destination x source pairs, or sources for bind(0)) simulated as one. */
  poolsAsOne: number;
  /** Rate, usable ports and tcp_max_tw_buckets divided by this; counts multiplied back. */
  scaledDownBy: number;
}

export interface BoundedRun {
  /**
   * The run's result, its populations (samples, peak TIME_WAIT) and first failing connection in
   * the whole workload's terms; `attempted` stays what was simulated.
   */
  result: ModelResult;
  /** null: the run was exact. */
  coarse: Coarsening | null;
}

/** Run `sc` (durationSec set) within `budget` steps. */
export function boundedSimulate(sc: ModelScenario, budget = WORK_BUDGET): BoundedRun {
  const seconds = sc.durationSec ?? 60;
  const bind = sc.portMode === 'bind-before-connect';
  const pools = bind ? (sc.sourceAddresses ?? 1) : (sc.sourceAddresses ?? 1) * (sc.destinations ?? 1);
  const size = portGeometry(sc.portRange, sc.socketPortRange).size;
  let run = sc;
  let poolsAsOne = 1;
  if (sc.nat) return boundedNat(sc, budget, seconds, pools, size);
  if (pools > 1 && (sc.rate * seconds > budget || pools * size > PORT_SLOT_BUDGET || pools > MAX_POOLS)) {
    run = {
      ...sc,
      rate: sc.rate / pools,
      destinations: bind ? sc.destinations : 1,
      sourceAddresses: 1,
      maxTwBuckets: share(sc.maxTwBuckets, pools),
    };
    poolsAsOne = pools;
  }
  const geo = portGeometry(run.portRange, run.socketPortRange);
  const usable = geo.size - unusablePositions(geo, run).length;
  const work = poolsAsOne === pools ? onePoolWork(run, usable, seconds) : run.rate * seconds;
  let scaledDownBy = 1;
  if (work > budget) {
    scaledDownBy = Math.ceil(work / budget);
    run = scaledDown(run, geo.low, Math.ceil(usable / scaledDownBy), scaledDownBy);
  }
  const result = simulate(run);
  const factor = poolsAsOne * scaledDownBy;
  if (factor === 1) return { result, coarse: null };
  return { result: { ...result, ...scaledUp(result, sc, factor) }, coarse: { poolsAsOne, scaledDownBy } };
}

/** The whole workload's figures from a run `factor` times smaller: failure, TIME_WAIT samples. */
function scaledUp(
  result: ModelResult,
  sc: ModelScenario,
  factor: number,
): Pick<ModelResult, 'firstFailureAtConnection' | 'samples' | 'peakClientHostTimeWait'> {
  const up = (n: number): number => n * factor;
  // Each share of tcp_max_tw_buckets was rounded up; the host never holds more than the whole.
  const tw = (n: number): number => Math.min(up(n), sc.maxTwBuckets ?? Infinity);
  return {
    // Attempts are evenly spaced over the whole workload: the one at t is number t x rate + 1.
    firstFailureAtConnection:
      result.firstFailureSec === null ? null : Math.round(result.firstFailureSec * sc.rate) + 1,
    samples: result.samples.map((s) => ({
      tSec: s.tSec,
      clientHostTimeWait: tw(s.clientHostTimeWait),
      serverTimeWait: tw(s.serverTimeWait),
      live: up(s.live),
    })),
    peakClientHostTimeWait: tw(result.peakClientHostTimeWait),
  };
}

/** boundedSimulate() behind a NAT: destinations as one, then everything scaled down together. */
function boundedNat(
  sc: ModelScenario,
  budget: number,
  seconds: number,
  pools: number,
  size: number,
): BoundedRun {
  const nat = sc.nat!;
  const dests = sc.destinations ?? 1;
  const bind = sc.portMode === 'bind-before-connect';
  const work = (rate: number): number => rate * seconds * NAT_STEP_WEIGHT;
  let run = sc;
  let poolsAsOne = 1;
  // A NAT port costs about six port slots (its entry's state, expiry, sequence, the server's TIME_WAIT).
  const natSlots = dests * nat.ports * 6;
  if (
    dests > 1 &&
    (work(sc.rate) > budget || pools * size + natSlots > PORT_SLOT_BUDGET || pools > MAX_POOLS)
  ) {
    run = { ...sc, rate: sc.rate / dests, destinations: 1, maxTwBuckets: share(sc.maxTwBuckets, dests) };
    poolsAsOne = dests;
  }
  let clientPools = bind ? (run.sourceAddresses ?? 1) : (run.sourceAddresses ?? 1) * (run.destinations ?? 1);
  // More client pools than the model keeps: source addresses in groups, each group's one pool
  // carrying its members' connections (they share the NAT's ports anyway): a conservative
  // client side. The NAT's load is unchanged, so its counts are not multiplied by the groups.
  let grouped = 1;
  if (clientPools > MAX_POOLS) {
    grouped = Math.ceil(clientPools / MAX_POOLS);
    run = { ...run, sourceAddresses: Math.ceil((run.sourceAddresses ?? 1) / grouped) };
    clientPools = Math.ceil(clientPools / grouped);
  }
  const scaledDownBy = Math.max(
    1,
    Math.ceil(work(run.rate) / budget),
    Math.ceil((clientPools * size) / PORT_SLOT_BUDGET),
  );
  if (scaledDownBy > 1) {
    const geo = portGeometry(run.portRange, run.socketPortRange);
    const usable = geo.size - unusablePositions(geo, run).length;
    const ports = Math.max(1, Math.ceil(usable / scaledDownBy));
    const natPorts = Math.max(1, Math.ceil(nat.ports / scaledDownBy));
    run = {
      ...scaledDown(run, geo.low, ports, scaledDownBy),
      // Its place kept only when the client's range is not scaled into it.
      nat: { ...nat, ports: natPorts, low: 65536 - natPorts },
    };
  }
  const result = simulate(run);
  const factor = poolsAsOne * scaledDownBy;
  if (factor === 1 && grouped === 1) return { result, coarse: null };
  const up = (n: number): number => n * factor;
  const at = (sec: number): number => Math.round(sec * sc.rate) + 1;
  const n = result.nat!;
  return {
    result: {
      ...result,
      ...scaledUp(result, sc, factor),
      nat: {
        ...n,
        drops: up(n.drops),
        stalls: up(n.stalls),
        evictions: up(n.evictions),
        reuses: up(n.reuses),
        collisions: up(n.collisions),
        kept: up(n.kept),
        portsUsed: Math.min(up(n.portsUsed), nat.ports * dests),
        firstStall: n.firstStall && { ...n.firstStall, atConnection: at(n.firstStall.sec) },
        firstCollision: n.firstCollision && { ...n.firstCollision, atConnection: at(n.firstCollision.sec) },
        firstReuseAtConnection: n.firstReuseAtConnection === null ? null : n.firstReuseAtConnection * factor,
        heldAtEnd: {
          open: up(n.heldAtEnd.open),
          timeWait: up(n.heldAtEnd.timeWait),
          close: up(n.heldAtEnd.close),
        },
      },
    },
    coarse: { poolsAsOne: poolsAsOne * grouped, scaledDownBy },
  };
}

/**
 * The run a `by` times smaller stands for: its rate, its client's first `ports` usable ports (no
 * per-socket range, reserved or bound ports: the simulation's ports are all usable ones), and its
 * share of tcp_max_tw_buckets.
 */
function scaledDown(run: ModelScenario, low: number, ports: number, by: number): ModelScenario {
  return {
    ...run,
    rate: run.rate / by,
    portRange: { low, high: low + ports - 1 },
    socketPortRange: undefined,
    reservedPorts: [],
    boundPorts: [],
    maxTwBuckets: share(run.maxTwBuckets, by),
  };
}

function share(maxTwBuckets: number | undefined, parts: number): number | undefined {
  return maxTwBuckets === undefined ? undefined : Math.ceil(maxTwBuckets / parts);
}

/**
 * The steps a one-pool run takes, at most: every attempt, or, when a connection holds its port for
 * a while, the connections the ports can carry (each port one per hold time) and the timers they
 * arm (up to four each), between which failures are counted, not walked.
 */
function onePoolWork(sc: ModelScenario, usable: number, seconds: number): number {
  // No usable port: the first attempt fails and the rest are counted.
  if (usable === 0) return 0;
  const attempts = sc.rate * seconds;
  const hold = portHoldSec(sc, usable);
  return hold > 0 ? Math.min(attempts, 5 * usable * (1 + seconds / hold)) : attempts;
}

/** The shortest time a connection keeps its port from the next one. */
function portHoldSec(sc: ModelScenario, usable: number): number {
  const life = sc.holdSec ?? 0;
  // Only the client-first closer keeps its port after close(), and only while tw buckets are left.
  if ((sc.close ?? 'client-first') !== 'client-first' || (sc.maxTwBuckets ?? Infinity) < usable) return life;
  const reuse =
    sc.portMode !== 'bind-before-connect' &&
    twReuseApplies(sc.twReuse, sc.loopback ?? false, sc.timestamps ?? true);
  // Reused after the delay, or free when TIME_WAIT ends, whichever comes first.
  const delay = reuse ? (sc.twReuseDelayMs ?? DEFAULT_TW_REUSE_DELAY_MS) : Infinity;
  const blocked = Math.min(delay, TCP_TIMEWAIT_LEN_MS);
  return life + ((sc.peerCloseDelayMs ?? 0) + blocked) / 1000;
}
