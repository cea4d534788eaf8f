/**
 * The churn engine's per-iteration records, kept in fixed memory whatever the run's length:
 * a log-linear latency histogram (exact below 1.024 ms, within 0.1% above) and a bitmap of local
 * ports. Both are plain typed arrays so a worker thread can hand them back without copying.
 */

/** Microseconds below this are counted exactly, one bucket per microsecond. */
const LINEAR = 1024;
/** Groups above the linear part: [1024, 2048) us, [2048, 4096) us, ... up to 2^32 us (~71 min). */
const GROUPS = 22;
export const LATENCY_BUCKETS = LINEAR * (GROUPS + 1);

/**
 * A successful iteration this slow stalled: a lost or wrongly answered SYN costs the client a 1 s
 * retransmission, far above any healthy latency on loopback or the sandbox's links.
 */
export const STALL_MS = 500;

/** The bucket of a latency in microseconds (clamped to [0, 2^32) us). */
export function latencyBucket(us: number): number {
  const v = us <= 0 ? 0 : us >= 0xffffffff ? 0xffffffff : Math.floor(us);
  if (v < LINEAR) return v;
  // Group g >= 1 holds [2^(g+9), 2^(g+10)); dropping g-1 low bits leaves 1024 steps per group.
  const g = 31 - Math.clz32(v) - 9;
  return LINEAR * g + ((v >>> (g - 1)) - LINEAR);
}

/** The lowest latency (us) a bucket holds: the inverse of latencyBucket up to its resolution. */
export function bucketLowUs(bucket: number): number {
  if (bucket < LINEAR) return bucket;
  const g = Math.floor(bucket / LINEAR);
  return (LINEAR + (bucket % LINEAR)) * 2 ** (g - 1);
}

export class LatencyHistogram {
  readonly counts: Uint32Array;
  total = 0;
  sumUs = 0;
  maxUs = 0;

  constructor(counts?: Uint32Array) {
    this.counts = counts ?? new Uint32Array(LATENCY_BUCKETS);
    if (counts) for (const c of counts) this.total += c;
  }

  record(us: number): void {
    this.counts[latencyBucket(us)]!++;
    this.total++;
    this.sumUs += us;
    if (us > this.maxUs) this.maxUs = us;
  }

  /** The q-quantile (0..1) in microseconds, nearest-rank; 0 when nothing was recorded. */
  quantileUs(q: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let b = 0; b < this.counts.length; b++) {
      seen += this.counts[b]!;
      if (seen >= rank) return bucketLowUs(b);
    }
    return this.maxUs;
  }
}

/** Distinct local ports seen, one byte per port (64 KiB). */
export class PortSet {
  readonly seen: Uint8Array;
  size = 0;

  constructor(seen?: Uint8Array) {
    this.seen = seen ?? new Uint8Array(65536);
    if (seen) for (const s of seen) this.size += s;
  }

  add(port: number): void {
    if (this.seen[port] === 0) {
      this.seen[port] = 1;
      this.size++;
    }
  }

  /** Lowest and highest port seen, or null when none. */
  bounds(): { low: number; high: number } | null {
    if (this.size === 0) return null;
    let low = 0;
    while (this.seen[low] === 0) low++;
    let high = 65535;
    while (this.seen[high] === 0) high--;
    return { low, high };
  }
}
