/**
 * TIME_WAIT time left as histogram buckets, from the census's own pass: takeCensus fills a
 * TimeLeft (a counter per millisecond of time left), and the buckets are read off it, so the
 * histogram costs no dump of its own. A second dump would walk the kernel's TCP hash tables again,
 * and those are shared by every network namespace: with -A, one walk per namespace of every
 * socket on the host (measured: the histogram's walks cost more than the census's).
 */
import { TimeLeft } from '../observe/census.js';

/** Upper bounds in seconds; TIME_WAIT starts at 60 s (TCP_TIMEWAIT_LEN). */
export const TIME_WAIT_BUCKETS_SEC = [1, 5, 10, 15, 20, 30, 40, 50, 60] as const;

export interface BucketCounts {
  /** Cumulative count per bound of TIME_WAIT_BUCKETS_SEC (Prometheus' `le` semantics). */
  buckets: Float64Array;
  /** Sum of time left, in seconds. */
  sum: number;
  count: number;
}

/** The buckets of what a census counted into `t`. */
export function histogramOf(t: TimeLeft): BucketCounts {
  return {
    buckets: Float64Array.from(TIME_WAIT_BUCKETS_SEC, (le) => t.atMost(le * 1000)),
    sum: t.sumMs() / 1000,
    count: t.count,
  };
}

/** The buckets of per-socket time left in ms (for tests). */
export function bucketize(expiresMs: Iterable<number>): BucketCounts {
  const t = new TimeLeft();
  for (const ms of expiresMs) t.add(ms);
  return histogramOf(t);
}
