/**
 * `twlab predict`'s engine: run the model for a workload, then for each fix, and rank the fixes.
 * Every figure here comes out of simulate(); the searches below only choose which runs to make.
 */
import { UsageError } from '../common/errors.js';
import { parseIntInRange, parsePortRange, show, type PortRange } from '../common/parse.js';
import {
  DEFAULT_CT_CLOSE_SEC,
  DEFAULT_HZ,
  TCP_TIMEWAIT_LEN_MS,
  timeWaitMaxMs,
  twReuseApplies,
} from './kernel-rules.js';
import { type Coarsening, boundedSimulate, SEARCH_WORK_BUDGET } from './budget.js';
import type { CloseOrder, ModelNatResult, ModelResult, ModelScenario, PortMode } from './types.js';

/** A source NAT between the client and its destinations (predict --nat-ports). */
export interface PredictNat {
  /** NAT ports per destination (the snat rule's range). */
  ports: number;
  /** The range's first port, when known: a client port inside it may be kept. */
  low?: number;
  fullyRandom: boolean;
  /** The router's nf_conntrack_tcp_timeout_time_wait, seconds. */
  conntrackTimeWaitSec: number;
  /** How long the client's connect() waits before ETIMEDOUT, seconds (default: the kernel's 127). */
  connectTimeoutSec?: number;
}

/** --nat-ports (and the dashboard's form field): a count (a range whose place is unknown) or LOW-HIGH. */
export interface NatPorts {
  ports: number;
  low?: number;
}

/** `N` (1-65535 ports) or `LOW-HIGH` (the snat rule's range); `what` names the flag or field. */
export function parseNatPorts(text: string, what = '--nat-ports'): NatPorts {
  const t = text.trim();
  if (/^\d+$/.test(t)) return { ports: parseIntInRange(t, what, 1, 65535) };
  if (/^\d+-\d+$/.test(t)) {
    const r = parsePortRange(t, what);
    return { ports: r.high - r.low + 1, low: r.low };
  }
  throw new UsageError(
    `${what}: ${show(text)} is not accepted (accepted: a number of ports 1 to 65535, or a range LOW-HIGH)`,
  );
}

/** What the NAT does to the workload (predict's `nat` figures). */
export interface NatFigures {
  /** The first connection whose SYN the NAT dropped (no free tuple) and that connected on a retransmission. */
  firstStall: ModelNatResult['firstStall'];
  /** SYNs dropped by the NAT, and connections that stalled on them, within the simulated time. */
  drops: number;
  stalls: number;
  /** server-first: the first connection given a NAT port the server still holds in TIME_WAIT. */
  firstCollision: ModelNatResult['firstCollision'];
  collisions: number;
  /** The first connection given a NAT port an earlier connection to its destination had. */
  firstReuseAtConnection: number | null;
  /** Ports taken by evicting a closing conntrack entry (nf_nat_used_tuple_harder). */
  evictions: number;
  /** Conntrack entries holding NAT ports at the end of the run, all destinations. */
  heldAtEnd: ModelNatResult['heldAtEnd'];
}

export interface PredictInput {
  /** New connections per second over the whole host. */
  rate: number;
  portRange: PortRange;
  reservedPorts?: PortRange[];
  twReuse: 0 | 1 | 2;
  twReuseDelayMs?: number;
  maxTwBuckets?: number;
  timestamps?: boolean;
  loopback: boolean;
  destinations: number;
  sourceAddresses: number;
  portMode: PortMode;
  close: CloseOrder;
  /** The horizon the user cares about, in seconds. */
  durationSec: number;
  holdSec?: number;
  /**
   * client-first only: ms from the client's close() to the peer's FIN (the peer application's time
   * to close its end); the port stays held, in FIN_WAIT1/2, before TIME_WAIT starts. Default 0.
   */
  peerCloseMs?: number;
  hz?: number;
  seed?: number;
  /** A source NAT in the path (absent: none). */
  nat?: PredictNat;
}

/** The figures predict reports, for the workload as given or with one fix applied. */
export interface PredictFigures {
  /** Seconds until the first EADDRNOTAVAIL, or null: never within the duration. */
  firstFailureSec: number | null;
  firstFailureAtConnection: number | null;
  /** EADDRNOTAVAIL from connect(), or EADDRINUSE from bind(addr, 0) before connect(). */
  firstFailureErrno: 'EADDRNOTAVAIL' | 'EADDRINUSE' | 'ETIMEDOUT' | null;
  /** Behind a NAT: its stalls, collisions and held ports (null without a NAT). */
  nat: NatFigures | null;
  /** Mean TIME_WAIT population of the client host over the last 20 simulated seconds. */
  timeWaitSteadyState: number;
  /** TIME_WAIT sockets the server holds in steady state (server-first close). */
  serverTimeWaitSteadyState: number;
  /**
   * The largest connection rate per destination that never fails, found by running the model;
   * null when ports never limit it (no rate up to RATE_CAP fails).
   */
  maxSustainableRate: number | null;
  /** How many simulated seconds and connection attempts produced these figures. */
  simulatedSec: number;
  connectionsModelled: number;
  /**
   * null: every run behind these figures was exact. Otherwise the coarsest run, made smaller to
   * stay within the model's work bound (src/model/budget.ts): its figures are approximate.
   */
  coarse: Coarsening | null;
}

export interface FixPrediction extends PredictFigures {
  id: string;
  /** What to change, in words a user can act on. */
  fix: string;
  /** What it costs or needs. */
  caveat: string;
  /** The workload with the fix applied. */
  changes: Partial<PredictInput> & { requestsPerConnection?: number };
  /**
   * 'fixes': the workload failed and no longer does; 'delays': it still fails, later; 'headroom':
   * it did not fail and now sustains a higher rate; 'no-effect'; 'worse'.
   */
  effect: 'fixes' | 'delays' | 'headroom' | 'no-effect' | 'worse';
  rank: number;
}

export interface Prediction extends PredictFigures {
  input: PredictInput;
  fixes: FixPrediction[];
}

/** The most (destination, source address) pairs a workload may have: the model's port pools. */
export const MAX_PAIRS = 32767;

/** Refuse more pairs than the model keeps pools for (`what` names the inputs in the message). */
export function checkPairs(destinations: number, sources: number, what: string): void {
  if (destinations * sources > MAX_PAIRS) {
    throw new UsageError(
      `${what}: ${destinations * sources} is too many (accepted: a product up to ${MAX_PAIRS})`,
    );
  }
}

/** Rates per destination above this are reported as "not limited by ports". */
export const RATE_CAP = 100_000;
/** Window at the end of a run whose mean TIME_WAIT population is the steady state. */
const STEADY_WINDOW_SEC = 20;

/** The model scenario for a prediction input. */
export function scenarioOf(input: PredictInput, extra: Partial<ModelScenario> = {}): ModelScenario {
  return {
    rate: input.rate,
    portRange: input.portRange,
    reservedPorts: input.reservedPorts,
    twReuse: input.twReuse,
    twReuseDelayMs: input.twReuseDelayMs,
    maxTwBuckets: input.maxTwBuckets,
    timestamps: input.timestamps,
    loopback: input.loopback,
    destinations: input.destinations,
    sourceAddresses: input.sourceAddresses,
    portMode: input.portMode,
    close: input.close,
    holdSec: input.holdSec,
    peerCloseDelayMs: input.peerCloseMs,
    hz: input.hz,
    seed: input.seed,
    ...(input.nat
      ? {
          nat: {
            ports: input.nat.ports,
            low: input.nat.low ?? natLowOutside(input),
            fullyRandom: input.nat.fullyRandom,
            conntrackTimeWaitSec: input.nat.conntrackTimeWaitSec,
            connectTimeoutMs:
              input.nat.connectTimeoutSec === undefined ? undefined : input.nat.connectTimeoutSec * 1000,
          },
        }
      : {}),
    ...extra,
  };
}

/** A NAT range of unknown place: put it where no client port lies, so none is kept. */
function natLowOutside(input: PredictInput): number {
  const n = input.nat!.ports;
  if (input.portRange.low - 1 >= n) return 1;
  return input.portRange.high + 1 + n - 1 <= 65535 ? input.portRange.high + 1 : 1;
}

/**
 * How long a NAT port stays unusable after its connection closed: its conntrack entry lives
 * nf_conntrack_tcp_timeout_time_wait (CLOSE's timeout after a RST), and with a server-first close
 * the server's own TIME_WAIT makes reusing it a collision for 60 s.
 */
function natSpanMs(input: PredictInput): number {
  if (!input.nat) return 0;
  const ct = (input.close === 'rst' ? DEFAULT_CT_CLOSE_SEC : input.nat.conntrackTimeWaitSec) * 1000;
  return Math.max(ct, input.close === 'server-first' ? timeWaitMaxMs(input.hz ?? DEFAULT_HZ) : 0);
}

/**
 * How long a port stays unusable after a connection ends, for the workload (TIME_WAIT's longest
 * life on the timer wheel, or the reuse delay). Once a constant-rate workload has run longer than
 * this plus a connection's own life, every port it holds was taken within that span, so the
 * number of blocked ports repeats with the timer wheel's period: a run that has not failed a few
 * seconds later never will.
 */
function blockingSpanMs(input: PredictInput): number {
  return Math.max(clientSpanMs(input), natSpanMs(input));
}

function clientSpanMs(input: PredictInput): number {
  const hz = input.hz ?? DEFAULT_HZ;
  if (input.close !== 'client-first') return 0;
  // The port is held until the peer's FIN, and only then does TIME_WAIT (or the reuse delay) start.
  const peer = input.peerCloseMs ?? 0;
  if (
    input.portMode !== 'bind-before-connect' &&
    twReuseApplies(input.twReuse, input.loopback, input.timestamps ?? true)
  ) {
    return peer + (input.twReuseDelayMs ?? 1000) + 2;
  }
  return peer + timeWaitMaxMs(hz);
}

/** Seconds after which a constant-rate run has shown whether it ever fails. */
export function failureHorizonSec(input: PredictInput): number {
  // One timer-wheel period past the span (the pattern repeats with it), plus half a second.
  const span = blockingSpanMs(input);
  const wheel = span > 0 ? timeWaitMaxMs(input.hz ?? DEFAULT_HZ) - TCP_TIMEWAIT_LEN_MS : 0;
  return (input.holdSec ?? 0) + (span + wheel) / 1000 + 0.5;
}

/** The coarsest of the runs so far (null while all were exact). */
class CoarseNote {
  worst: Coarsening | null = null;

  add(c: Coarsening | null): void {
    if (c && (!this.worst || c.poolsAsOne * c.scaledDownBy > this.worst.poolsAsOne * this.worst.scaledDownBy))
      this.worst = c;
  }
}

/** Run the workload and read its figures (except the sustainable rate). */
function runFigures(
  input: PredictInput,
  note: CoarseNote,
): Omit<PredictFigures, 'maxSustainableRate' | 'coarse'> {
  const hz = input.hz ?? DEFAULT_HZ;
  const steadyHorizon =
    (input.holdSec ?? 0) +
    Math.max((input.peerCloseMs ?? 0) + timeWaitMaxMs(hz), natSpanMs(input)) / 1000 +
    STEADY_WINDOW_SEC +
    2;
  const simulatedSec = Math.max(Math.min(input.durationSec, failureHorizonSec(input)), steadyHorizon);
  const { result, coarse } = boundedSimulate(
    scenarioOf(input, {
      durationSec: simulatedSec,
      sampleIntervalSec: 0.25,
      // Only the steady window is read: a run of a day keeps 80 samples, not 350,000.
      sampleFromSec: Math.max(0, Math.floor(simulatedSec - STEADY_WINDOW_SEC - 1)),
    }),
  );
  note.add(coarse);
  const fails = result.firstFailureSec !== null && result.firstFailureSec <= input.durationSec;
  return {
    firstFailureSec: fails ? result.firstFailureSec : null,
    firstFailureAtConnection: fails ? result.firstFailureAtConnection : null,
    firstFailureErrno: fails ? result.failureErrno : null,
    nat: result.nat ? natFigures(result.nat, input.durationSec) : null,
    timeWaitSteadyState: steadyMean(result, (s) => s.clientHostTimeWait),
    serverTimeWaitSteadyState: steadyMean(result, (s) => s.serverTimeWait),
    simulatedSec,
    connectionsModelled: result.attempted,
  };
}

/** The NAT's figures of a run, its firsts only when they fall within the horizon. */
function natFigures(n: ModelNatResult, durationSec: number): NatFigures {
  return {
    firstStall: n.firstStall && n.firstStall.sec <= durationSec ? n.firstStall : null,
    drops: n.drops,
    stalls: n.stalls,
    firstCollision: n.firstCollision && n.firstCollision.sec <= durationSec ? n.firstCollision : null,
    collisions: n.collisions,
    firstReuseAtConnection: n.firstReuseAtConnection,
    evictions: n.evictions,
    heldAtEnd: n.heldAtEnd,
  };
}

/** When the workload first meets trouble: a failure, a NAT stall or drop, a collision (s), or null. */
export function firstTroubleSec(f: Pick<PredictFigures, 'firstFailureSec' | 'nat'>): number | null {
  const times = [
    f.firstFailureSec,
    f.nat?.firstStall?.sec ?? null,
    f.nat?.firstCollision?.sec ?? null,
  ].filter((t): t is number => t !== null);
  return times.length ? Math.min(...times) : null;
}

function steadyMean(result: ModelResult, pick: (s: ModelResult['samples'][number]) => number): number {
  const from = result.endSec - STEADY_WINDOW_SEC;
  let sum = 0;
  let n = 0;
  for (const s of result.samples) {
    if (s.tSec >= from) {
      sum += pick(s);
      n++;
    }
  }
  return n === 0 ? 0 : Math.round(sum / n);
}

/** Whether the workload at `perDestination` connections/s per destination ever fails. */
function sustains(input: PredictInput, perDestination: number, note: CoarseNote): boolean {
  // Destinations are symmetric (round-robin, same rate), so one destination and one source with
  // their share of tcp_max_tw_buckets stand for all: the pools only meet in that shared count.
  // bind(0) pools are per source address and shared by destinations, so those stay together.
  const bind = input.portMode === 'bind-before-connect';
  // Behind a NAT every source address shares the destination's NAT ports: they stay together.
  const natted = input.nat !== undefined;
  const share = bind
    ? input.sourceAddresses
    : natted
      ? input.destinations
      : input.sourceAddresses * input.destinations;
  // A destination's rate is spread over the source addresses round-robin.
  const one: PredictInput = {
    ...input,
    rate: bind
      ? (perDestination * input.destinations) / (natted ? 1 : input.sourceAddresses)
      : natted
        ? perDestination
        : perDestination / input.sourceAddresses,
    destinations: bind ? input.destinations : 1,
    sourceAddresses: natted ? input.sourceAddresses : 1,
    maxTwBuckets: input.maxTwBuckets === undefined ? undefined : Math.floor(input.maxTwBuckets / share),
  };
  const { result, coarse } = boundedSimulate(
    scenarioOf(one, {
      durationSec: failureHorizonSec(one),
      stopAtFirstFailure: true,
      sampleIntervalSec: 3600,
    }),
    SEARCH_WORK_BUDGET,
  );
  note.add(coarse);
  // Behind a NAT a dropped SYN (a stall) or a collision with the server's TIME_WAIT counts too.
  const n = result.nat;
  return result.firstFailureAtConnection === null && (!n || (n.drops === 0 && n.collisions === 0));
}

/**
 * The largest per-destination rate that sustains, to 1%: bracket from the workload's own rate by
 * doubling or halving, then bisect.
 */
export function maxSustainableRate(input: PredictInput, note = new CoarseNote()): number | null {
  let guess = Math.min(Math.max(input.rate / input.destinations, 1), RATE_CAP);
  let lo: number;
  let hi: number;
  if (sustains(input, guess, note)) {
    lo = guess;
    for (;;) {
      if (lo >= RATE_CAP) return null;
      hi = Math.min(lo * 2, RATE_CAP);
      if (!sustains(input, hi, note)) break;
      lo = hi;
    }
  } else {
    hi = guess;
    for (;;) {
      guess = hi / 2;
      if (guess < 0.01) return 0;
      if (sustains(input, guess, note)) break;
      hi = guess;
    }
    lo = guess;
  }
  while (hi - lo > Math.max(0.01, lo * 0.01)) {
    const mid = (lo + hi) / 2;
    if (sustains(input, mid, note)) lo = mid;
    else hi = mid;
  }
  return Math.floor(lo * 100) / 100;
}

function figures(input: PredictInput): PredictFigures {
  const note = new CoarseNote();
  const run = runFigures(input, note);
  return { ...run, maxSustainableRate: maxSustainableRate(input, note), coarse: note.worst };
}

interface FixSpec {
  id: string;
  fix: string;
  caveat: string;
  changes: Partial<PredictInput> & { requestsPerConnection?: number };
}

const WIDE_RANGE: PortRange = { low: 10000, high: 65535 };

/** The fixes worth modelling for this workload (those that change something). */
function candidateFixes(input: PredictInput, baseline: PredictFigures): FixSpec[] {
  const fixes: FixSpec[] = [];
  if (input.twReuse !== 1) {
    fixes.push({
      id: 'tw-reuse-1',
      fix: 'sysctl net.ipv4.tcp_tw_reuse=1 (client host)',
      caveat: 'needs TCP timestamps on both ends; reuses a 4-tuple only after tcp_tw_reuse_delay',
      changes: { twReuse: 1 },
    });
  }
  const size = input.portRange.high - input.portRange.low + 1;
  if (size < WIDE_RANGE.high - WIDE_RANGE.low + 1) {
    fixes.push({
      id: 'wider-range',
      fix: `sysctl net.ipv4.ip_local_port_range="${WIDE_RANGE.low} ${WIDE_RANGE.high}"`,
      caveat: 'listeners on ports in the range must be listed in ip_local_reserved_ports',
      changes: { portRange: WIDE_RANGE },
    });
  }
  fixes.push({
    id: 'more-source-addresses',
    fix: `${input.sourceAddresses * 4} source addresses instead of ${input.sourceAddresses} (${
      input.portMode === 'bind-before-connect'
        ? 'bind(addr, 0) on each, as now'
        : 'bind(addr, 0) with IP_BIND_ADDRESS_NO_PORT'
    })`,
    caveat: 'needs the extra addresses on the client and routes back to them',
    changes: {
      sourceAddresses: input.sourceAddresses * 4,
      portMode: input.portMode === 'connect' ? 'bind-no-port' : input.portMode,
    },
  });
  if (input.portMode === 'bind-before-connect') {
    fixes.push({
      id: 'bind-no-port',
      fix: 'set IP_BIND_ADDRESS_NO_PORT before bind(addr, 0), or drop the bind',
      caveat: 'none: the port is then chosen per destination at connect()',
      changes: { portMode: 'bind-no-port' },
    });
  }
  if (input.close !== 'server-first') {
    fixes.push({
      id: 'server-first-close',
      fix: 'let the server close first (the client closes after reading EOF)',
      caveat:
        'the server holds the TIME_WAIT sockets instead; needs a protocol where the server ends the exchange',
      changes: { close: 'server-first' },
    });
  }
  if (input.close !== 'rst') {
    fixes.push({
      id: 'linger-zero',
      fix: 'SO_LINGER {on, 0} on the client: close() sends RST',
      caveat: 'aborts: unsent or unacknowledged data is lost and the peer sees ECONNRESET',
      changes: { close: 'rst' },
    });
  }
  if (input.nat) {
    const nat = input.nat;
    fixes.push({
      id: 'nat-more-ports',
      fix: `4x the NAT's ports per destination (${nat.ports * 4} instead of ${nat.ports}: a wider snat range, or 4 SNAT addresses)`,
      caveat: 'needs the ports free on the NAT address, or the extra addresses routed back to the NAT',
      changes: { nat: { ...nat, ports: Math.min(nat.ports * 4, 65535), low: undefined } },
    });
    // The server's TIME_WAIT lasts at most 60 s + one timer-wheel bucket: a conntrack entry that
    // outlives it only keeps the NAT port from new connections; one that dies sooner frees it
    // while the server still holds it.
    const serverTwSec = Math.ceil(timeWaitMaxMs(input.hz ?? DEFAULT_HZ) / 1000);
    if (input.close === 'server-first' && nat.conntrackTimeWaitSec !== serverTwSec) {
      fixes.push({
        id: 'conntrack-tw-timeout',
        fix: `sysctl net.netfilter.nf_conntrack_tcp_timeout_time_wait=${serverTwSec} (the NAT router; just over the server's TIME_WAIT)`,
        caveat:
          "per network namespace; shorter than the server's TIME_WAIT, it frees NAT ports the server still holds",
        changes: { nat: { ...nat, conntrackTimeWaitSec: serverTwSec } },
      });
    }
    if (input.close === 'server-first') {
      fixes.push({
        id: 'client-first-close',
        fix: 'let the client close first behind the NAT (the NAT then evicts its own TIME_WAIT entries, and the server holds none)',
        caveat:
          'the client host holds the TIME_WAIT sockets; needs a protocol where the client ends the exchange',
        changes: { close: 'client-first' },
      });
    }
  }
  const hostSustainable =
    baseline.maxSustainableRate === null ? null : baseline.maxSustainableRate * input.destinations;
  if (hostSustainable !== null) {
    // Fewest requests per connection (keep-alive or a pool) that the model says never fails.
    let k = Math.max(2, Math.ceil(input.rate / Math.max(hostSustainable, 1e-9)));
    k = Math.min(k, 1_000_000);
    fixes.push({
      id: 'reuse-connections',
      fix: `reuse each connection for ${k} requests (keep-alive or a connection pool)`,
      caveat: 'the protocol must allow several requests per connection',
      changes: { rate: input.rate / k, requestsPerConnection: k },
    });
  }
  return fixes;
}

function effectOf(base: PredictFigures, fix: PredictFigures): FixPrediction['effect'] {
  const b0 = firstTroubleSec(base);
  const f0 = firstTroubleSec(fix);
  if (b0 !== null) {
    if (f0 === null) return 'fixes';
    if (f0 > b0) return 'delays';
    return f0 < b0 ? 'worse' : 'no-effect';
  }
  if (f0 !== null) return 'worse';
  const b = base.maxSustainableRate ?? Infinity;
  const f = fix.maxSustainableRate ?? Infinity;
  return f > b ? 'headroom' : f < b ? 'worse' : 'no-effect';
}

/** Order: fixes first; then the later failure; then the higher sustainable rate; then fewer TIME_WAIT. */
function compareFixes(a: FixPrediction, b: FixPrediction): number {
  const order = { fixes: 0, delays: 1, headroom: 2, 'no-effect': 3, worse: 4 };
  if (order[a.effect] !== order[b.effect]) return order[a.effect] - order[b.effect];
  const fa = firstTroubleSec(a) ?? Infinity;
  const fb = firstTroubleSec(b) ?? Infinity;
  if (fa !== fb) return fb - fa;
  const ra = a.maxSustainableRate ?? Infinity;
  const rb = b.maxSustainableRate ?? Infinity;
  if (ra !== rb) return rb - ra;
  return a.timeWaitSteadyState - b.timeWaitSteadyState;
}

/** The workload's first failure alone (seconds; null: never within its duration), from one run. */
export function forecastFirstFailureSec(input: PredictInput): number | null {
  return runFigures(input, new CoarseNote()).firstFailureSec;
}

/** The prediction for a workload and each fix, ranked. */
export function predict(input: PredictInput): Prediction {
  const base = figures(input);
  const fixes: FixPrediction[] = candidateFixes(input, base).map((spec) => {
    const { requestsPerConnection: _k, ...changes } = spec.changes;
    const fig = figures({ ...input, ...changes });
    // A reused connection carries k requests: its sustainable rate counts requests, not connections.
    if (spec.changes.requestsPerConnection && fig.maxSustainableRate !== null) {
      fig.maxSustainableRate *= spec.changes.requestsPerConnection;
    }
    return {
      id: spec.id,
      fix: spec.fix,
      caveat: spec.caveat,
      changes: spec.changes,
      ...fig,
      effect: effectOf(base, fig),
      rank: 0,
    };
  });
  fixes.sort(compareFixes);
  fixes.forEach((f, i) => (f.rank = i + 1));
  return { input, ...base, fixes };
}
