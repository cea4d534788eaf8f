/**
 * The exporter's metrics: a prom-client Registry of twlab's own whose collect() reads a fresh
 * census of this namespace at scrape time (nothing is cached between scrapes beyond MIN_AGE_MS).
 *
 * Cardinality is bounded whatever the table holds: per-destination series are the top N by port
 * pressure plus one `other` series (local="other", remote="other") that folds in the rest
 * (ports summed, the highest ratio, the shortest time to exhaustion); states are the fixed ss
 * names; sysctls and TcpExt counters are fixed lists.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { takeCensus, type CensusResult, type PressureEntry } from '../observe/census.js';
import { DOCTOR_SYSCTLS } from '../observe/doctor.js';
import { readSysctls } from '../observe/sysctl.js';
import { TCPEXT_KEYS } from '../observe/counters.js';
import { tcpStateName } from '../observe/sockdiag-states.js';
import { TIME_WAIT_BUCKETS_SEC, type BucketCounts } from './time-wait-histogram.js';
import { HistogramThread } from './histogram-thread.js';

export interface ExporterMetricsOptions {
  /** Destinations exported one by one (the rest go to `other`); default 10. */
  top?: number;
  /** Census source, for tests and the /proc fallback. */
  source?: 'auto' | 'netlink' | 'procfs';
}

/** The label value of the series that folds every destination beyond the top N. */
export const OTHER = 'other';
export const DEFAULT_TOP = 10;

/** States exported even at 0, so a series does not vanish when a state empties (ss names). */
const STATES = [1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12].map(tcpStateName);

/** What one scrape read: the census plus the TIME_WAIT histogram. */
export interface Snapshot {
  census: CensusResult;
  histogram: BucketCounts;
  sysctls: Record<string, string>;
  ms: number;
}

const TW_HIST_NAME = 'twlab_time_wait_remaining_seconds';
const TW_HIST_HELP = 'TIME_WAIT sockets by time left on their timer (idiag_expires), in seconds';

/**
 * prom-client's Histogram (type, registration, exposition format), fed bucket counts made in
 * one pass of the table instead of an observe() per socket (~1 us each, 100 ms at 100k sockets).
 */
class PrecountedHistogram extends Histogram {
  private counts: BucketCounts = {
    buckets: new Float64Array(TIME_WAIT_BUCKETS_SEC.length),
    sum: 0,
    count: 0,
  };
  constructor(
    registry: Registry,
    private readonly read: () => Promise<Snapshot>,
  ) {
    super({
      name: TW_HIST_NAME,
      help: TW_HIST_HELP,
      buckets: [...TIME_WAIT_BUCKETS_SEC],
      registers: [registry],
    });
  }
  override async get(): ReturnType<Histogram['get']> {
    this.counts = (await this.read()).histogram;
    const bucket = `${TW_HIST_NAME}_bucket`;
    const values = [
      ...TIME_WAIT_BUCKETS_SEC.map((le, i) => ({
        labels: { le },
        value: this.counts.buckets[i]!,
        metricName: bucket,
      })),
      { labels: { le: '+Inf' }, value: this.counts.count, metricName: bucket },
      { labels: {}, value: this.counts.sum, metricName: `${TW_HIST_NAME}_sum` },
      { labels: {}, value: this.counts.count, metricName: `${TW_HIST_NAME}_count` },
    ];
    // The shape prom-client's own Histogram.get() returns (its types do not allow le: '+Inf').
    return {
      name: TW_HIST_NAME,
      help: TW_HIST_HELP,
      type: 'histogram',
      aggregator: 'sum',
      values,
    } as unknown as Awaited<ReturnType<Histogram['get']>>;
  }
  // The Registry formats from this one when a metric has it (prom-client 15's Histogram does).
  async getForPromString(): ReturnType<Histogram['get']> {
    return this.get();
  }
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
  let ratio = 0;
  let ratePerSec = 0;
  let soonest: number | null = null;
  for (const p of rest) {
    inUse += p.inUse;
    timeWait += p.timeWait;
    ratio = Math.max(ratio, p.ratio);
    ratePerSec += p.ratePerSec;
    if (p.secondsToExhaustion !== null && (soonest === null || p.secondsToExhaustion < soonest))
      soonest = p.secondsToExhaustion;
  }
  return {
    top: head,
    other: {
      remote: OTHER,
      local: OTHER,
      inUse,
      timeWait,
      rangeSize: rest[0]!.rangeSize,
      ratio,
      ratePerSec,
      secondsToExhaustion: soonest,
    },
  };
}

/** A Registry whose every scrape takes a census of the namespace this process runs in. */
export function createExporterRegistry(opts: ExporterMetricsOptions = {}): {
  registry: Registry;
  last(): Snapshot | undefined;
  /** Stops the histogram worker. */
  close(): Promise<void>;
} {
  const top = opts.top ?? DEFAULT_TOP;
  const registry = new Registry();
  let snap: Snapshot | undefined;
  let pending: Promise<Snapshot> | undefined;
  const histograms = new HistogramThread(opts.source);

  // One census per scrape, shared by every metric's collect() (they run in the same tick).
  const read = (): Promise<Snapshot> => {
    if (!pending) {
      pending = Promise.resolve().then(async () => {
        const t0 = performance.now();
        // The histogram's dump runs on the worker while this thread takes the census.
        const histogramDone = histograms.request();
        const census = takeCensus({
          top: Number.MAX_SAFE_INTEGER,
          ...(opts.source ? { source: opts.source } : {}),
        });
        const histogram = await histogramDone;
        const sysctls = readSysctls(DOCTOR_SYSCTLS);
        snap = { census, histogram, sysctls, ms: performance.now() - t0 };
        return snap;
      });
      // Cleared once every collect() of this scrape has had it.
      void pending.finally(() => setImmediate(() => (pending = undefined)));
    }
    return pending;
  };

  new Gauge({
    name: 'twlab_tcp_sockets',
    help: 'TCP sockets of this network namespace by state (ss names), from a sock_diag census at scrape time',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const { census } = await read();
      this.reset();
      for (const s of STATES) this.set({ state: s }, census.byState[s] ?? 0);
    },
  });

  new PrecountedHistogram(registry, read);

  const perDest = (name: string, help: string, value: (p: PressureEntry) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['local', 'remote'],
      registers: [registry],
      async collect() {
        const { census } = await read();
        const folded = foldOther(census.pressure, top);
        this.reset();
        for (const p of folded.top) this.set({ local: p.local, remote: p.remote }, value(p));
        if (folded.other) this.set({ local: OTHER, remote: OTHER }, value(folded.other));
      },
    });
  };
  perDest(
    'twlab_port_pressure_ratio',
    `Ephemeral ports held towards (local address, remote address:port) / usable ports; top ${top} destinations by ratio, the rest as local="other" (highest ratio among them)`,
    (p) => p.ratio,
  );
  perDest(
    'twlab_ports_in_use',
    'Ephemeral ports held towards the destination (any state); "other" sums the rest',
    (p) => p.inUse,
  );
  perDest(
    'twlab_port_exhaustion_seconds',
    'Seconds until connect() to the destination fails at the recent TIME_WAIT rate (+Inf: not at this rate); "other" is the soonest of the rest',
    (p) => p.secondsToExhaustion ?? Infinity,
  );
  perDest(
    'twlab_time_wait_rate_per_second',
    'New TIME_WAIT sockets per second towards the destination, from their age over the census window',
    (p) => p.ratePerSec,
  );

  const single = (name: string, help: string, value: (s: Snapshot) => number): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        this.set(value(await read()));
      },
    });
  };
  single(
    'twlab_port_destinations',
    'Destinations with ephemeral ports held (only the top N have their own series)',
    (s) => s.census.pressureDestinations,
  );
  single(
    'twlab_ephemeral_ports_usable',
    'ip_local_port_range size minus ip_local_reserved_ports',
    (s) => s.census.portRange.usable,
  );
  single(
    'twlab_sockstat_tw',
    'TIME_WAIT buckets (/proc/net/sockstat "tw")',
    (s) => s.census.counters.sockstat.tw,
  );
  single(
    'twlab_sockstat_orphan',
    'Orphaned TCP sockets (/proc/net/sockstat "orphan", kernel-wide)',
    (s) => s.census.counters.sockstat.orphan,
  );
  single(
    'twlab_sockstat_inuse',
    'TCP sockets in use (/proc/net/sockstat "inuse", IPv4, excludes TIME_WAIT)',
    (s) => s.census.counters.sockstat.inuse,
  );
  single('twlab_census_duration_seconds', 'How long the census of this scrape took', (s) => s.ms / 1000);

  new Gauge({
    name: 'twlab_sysctl',
    help: 'Teardown-related sysctls of this namespace (only those this kernel has; ip_local_port_range as .low/.high)',
    labelNames: ['name'],
    registers: [registry],
    async collect() {
      const { sysctls } = await read();
      this.reset();
      for (const [key, text] of Object.entries(sysctls)) {
        const name = key.includes('.') ? key : `net.ipv4.${key}`;
        if (key === 'ip_local_port_range') {
          const [low, high] = text.split(' ').map(Number);
          this.set({ name: `${name}.low` }, low!);
          this.set({ name: `${name}.high` }, high!);
        } else if (/^-?\d+$/.test(text)) this.set({ name }, Number(text));
      }
    },
  });

  new Counter({
    name: 'twlab_tcpext_total',
    help: 'Kernel TcpExt counters (/proc/net/netstat) for teardown: TW, TWKilled, TWRecycled, TCPTimeWaitOverflow, aborts, listen drops',
    labelNames: ['name'],
    registers: [registry],
    async collect() {
      const { census } = await read();
      this.reset();
      for (const k of TCPEXT_KEYS) {
        const v = census.counters.tcpExt[k];
        if (v !== undefined) this.inc({ name: k }, v);
      }
    },
  });

  return { registry, last: () => snap, close: () => histograms.close() };
}
