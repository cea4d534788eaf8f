/**
 * What the exporter's metrics are made from: one sample per exported network namespace (the
 * exporter's own in single-namespace mode, with no labels; in --all-namespaces mode the top N
 * namespaces with `netns` and owner labels, plus one `netns="other"` sample folding the rest).
 */
import type { CensusResult, PressureEntry } from '../observe/census.js';
import type { ConntrackSummary } from '../observe/conntrack-types.js';
import { TIME_WAIT_BUCKETS_SEC, type BucketCounts } from './time-wait-histogram.js';

/** Label name -> value; a label whose value is unknown is left out (Prometheus: empty = absent). */
export type Labels = Record<string, string>;

export interface NamespaceSample {
  labels: Labels;
  byState: Record<string, number>;
  histogram: BucketCounts;
  /** Every destination, most ports held first (the metrics keep the top N and fold the rest). */
  pressure: PressureEntry[];
  /** Destinations with ports held (pressure may be folded into fewer entries). */
  destinations: number;
  /** Usable ephemeral ports; absent for `other` (each namespace has its own range). */
  usable?: number;
  sockstat: { tw: number; orphan: number; inuse: number };
  tcpExt: Record<string, number>;
  /** Sysctl key -> text, as readSysctls returns them; none for `other`. */
  sysctls: Record<string, string>;
  /** The namespace's conntrack table, when it has entries (census's section). */
  conntrack?: ConntrackSummary;
}

/** The label value of the series that folds everything beyond the top N (destinations, namespaces). */
export const OTHER = 'other';

export function sampleOf(
  census: CensusResult,
  histogram: BucketCounts,
  sysctls: Record<string, string>,
  labels: Labels = {},
): NamespaceSample {
  const { tw, orphan, inuse } = census.counters.sockstat;
  return {
    labels,
    byState: census.byState,
    histogram,
    pressure: census.pressure,
    destinations: census.pressureDestinations,
    usable: census.portRange.usable,
    sockstat: { tw, orphan, inuse },
    tcpExt: census.counters.tcpExt,
    sysctls,
    ...(census.conntrack ? { conntrack: census.conntrack } : {}),
  };
}

/** The top N entries, and one entry folding the others (undefined when there are none). */
export function foldOther(
  pressure: readonly PressureEntry[],
  top: number,
): { top: PressureEntry[]; other?: PressureEntry } {
  const head = pressure.slice(0, top);
  const rest = pressure.slice(top);
  if (rest.length === 0) return { top: head };
  let inUse = 0;
  let timeWait = 0;
  let ratePerSec = 0;
  for (const p of rest) {
    inUse += p.inUse;
    timeWait += p.timeWait;
    ratePerSec += p.ratePerSec;
  }
  return {
    top: head,
    other: {
      remote: OTHER,
      local: OTHER,
      inUse,
      timeWait,
      rangeSize: rest[0]!.rangeSize,
      ...worstOf(rest),
      ratePerSec,
    },
  };
}

/** Of some destinations: the soonest exhaustion (null: none at the recent rate), the largest share held. */
export function worstOf(pressure: readonly PressureEntry[]): {
  secondsToExhaustion: number | null;
  ratio: number;
} {
  let soonest: number | null = null;
  let ratio = 0;
  for (const p of pressure) {
    if (p.secondsToExhaustion !== null && (soonest === null || p.secondsToExhaustion < soonest))
      soonest = p.secondsToExhaustion;
    ratio = Math.max(ratio, p.ratio);
  }
  return { secondsToExhaustion: soonest, ratio };
}

/**
 * One `netns="other"` sample from several: counts and histograms summed, every destination folded
 * into one local="other",remote="other" entry (ports summed, highest ratio, soonest exhaustion:
 * foldOther), orphans (a kernel-wide count every namespace shows alike) the highest, no sysctls
 * and no usable-port count (each namespace has its own).
 */
export function foldNamespaces(samples: readonly NamespaceSample[]): NamespaceSample {
  const byState: Record<string, number> = {};
  const tcpExt: Record<string, number> = {};
  const histogram: BucketCounts = {
    buckets: new Float64Array(TIME_WAIT_BUCKETS_SEC.length),
    sum: 0,
    count: 0,
  };
  const sockstat = { tw: 0, orphan: 0, inuse: 0 };
  let destinations = 0;
  for (const s of samples) {
    for (const [k, v] of Object.entries(s.byState)) byState[k] = (byState[k] ?? 0) + v;
    for (const [k, v] of Object.entries(s.tcpExt)) tcpExt[k] = (tcpExt[k] ?? 0) + v;
    s.histogram.buckets.forEach((v, i) => (histogram.buckets[i]! += v));
    histogram.sum += s.histogram.sum;
    histogram.count += s.histogram.count;
    sockstat.tw += s.sockstat.tw;
    sockstat.inuse += s.sockstat.inuse;
    sockstat.orphan = Math.max(sockstat.orphan, s.sockstat.orphan);
    destinations += s.destinations;
  }
  const other = foldOther(
    samples.flatMap((s) => s.pressure),
    0,
  ).other;
  return {
    labels: { netns: OTHER },
    byState,
    histogram,
    pressure: other ? [other] : [],
    destinations,
    sockstat,
    tcpExt,
    sysctls: {},
  };
}
