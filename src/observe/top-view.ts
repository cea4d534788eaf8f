/**
 * `twlab top`'s view of one interval: the per-process counts (top.ts) joined with what each
 * namespace's census says of their destinations (ports held of that namespace's range, seconds
 * to exhaustion: per destination and namespace, not per process) and with the namespace's owner,
 * most at risk first. Pure: the census entries and owners are looked up by the caller.
 */
import type { Owner } from './namespaces.js';
import type { PressureEntry } from './census.js';
import { failedTotal, type Counts, type DestinationCounts, type ProcessCounts } from './top.js';

export interface TopDestination extends DestinationCounts {
  /** Ports of the range held towards it in the namespace now (any state), and the range's size. */
  portsHeld: number | null;
  rangeSize: number | null;
  /** When connect() to it runs out at the namespace's current rate; null: not at this rate / unknown. */
  secondsToExhaustion: number | null;
}

export interface TopProcess extends Counts {
  pid: number;
  comm: string;
  netns: number | null;
  owner: Owner | null;
  timeWaitAlive: number;
  /** Per second over the last interval. */
  rates: {
    connects: number;
    failedConnects: number;
    activeCloses: number;
    passiveCloses: number;
    accepts: number;
  };
  destinations: TopDestination[];
}

export interface TopDocument {
  durationMs: number;
  intervalMs: number;
  processes: TopProcess[];
  /** State changes read, in the final document (a loopback connection makes 10: 5 a side). */
  eventsRead?: number;
  /** Events the ring buffer lost: the counts above are short by what they carried. */
  lost: { events: number; reason: string | null };
  /** Processes past the row bound, not counted. */
  droppedRows: number;
}

/** Census look-ups of one interval: a namespace's pressure entries and owner. */
export interface NetnsFacts {
  pressure(netns: number | null): readonly PressureEntry[] | undefined;
  owner(netns: number | null): Owner | null;
}

/** Most at risk first: soonest exhaustion, then failed connects, TIME-WAIT held, active closes, connects. */
export function byRisk(a: TopProcess, b: TopProcess): number {
  const soonest = (p: TopProcess): number =>
    Math.min(...p.destinations.map((d) => d.secondsToExhaustion ?? Infinity), Infinity);
  return (
    soonest(a) - soonest(b) ||
    failedTotal(b) - failedTotal(a) ||
    b.timeWaitAlive - a.timeWaitAlive ||
    b.activeCloses - a.activeCloses ||
    b.connects - a.connects ||
    a.pid - b.pid
  );
}

/** Orders a user can pick (top's keys): risk (the default), connects/s, failed connects, TIME-WAIT held. */
export const SORTS = {
  risk: byRisk,
  connects: (a: TopProcess, b: TopProcess) => b.rates.connects - a.rates.connects || byRisk(a, b),
  failed: (a: TopProcess, b: TopProcess) => failedTotal(b) - failedTotal(a) || byRisk(a, b),
  timeWait: (a: TopProcess, b: TopProcess) => b.timeWaitAlive - a.timeWaitAlive || byRisk(a, b),
} as const;
export type SortKey = keyof typeof SORTS;

export function topView(
  counts: readonly ProcessCounts[],
  intervalS: number,
  facts: NetnsFacts,
  sort: SortKey = 'risk',
): TopProcess[] {
  const per = (n: number): number => Math.round((n / intervalS) * 10) / 10;
  const out = counts.map((c): TopProcess => {
    const pressure = new Map((facts.pressure(c.netns) ?? []).map((p) => [p.remote, p]));
    return {
      pid: c.pid,
      comm: c.comm,
      netns: c.netns,
      owner: facts.owner(c.netns),
      connects: c.connects,
      failedConnects: c.failedConnects,
      activeCloses: c.activeCloses,
      passiveCloses: c.passiveCloses,
      accepts: c.accepts,
      timeWaitCreated: c.timeWaitCreated,
      timeWaitAlive: c.timeWaitAlive,
      rates: {
        connects: per(c.interval.connects),
        failedConnects: per(failedTotal(c.interval)),
        activeCloses: per(c.interval.activeCloses),
        passiveCloses: per(c.interval.passiveCloses),
        accepts: per(c.interval.accepts),
      },
      destinations: c.destinations.map((d) => {
        const p = pressure.get(d.remote);
        return {
          ...d,
          portsHeld: p?.inUse ?? null,
          rangeSize: p?.rangeSize ?? null,
          secondsToExhaustion: p?.secondsToExhaustion ?? null,
        };
      }),
    };
  });
  return out.sort(SORTS[sort]);
}
