/**
 * The exporter's metrics: a prom-client Registry of twlab's own whose collect() reads a fresh
 * census at scrape time (nothing is cached between scrapes): of the namespace the exporter runs in,
 * or, with `namespaces`, of every network namespace on the host (host-scrape.ts), each sample's
 * series labelled with its netns and owner.
 *
 * Cardinality is bounded whatever the table holds: per-destination series are the top N by port
 * pressure plus one `other` series (local="other", remote="other") that folds in the rest
 * (ports summed, the highest ratio, the shortest time to exhaustion); namespaces are the top N by
 * risk plus one netns="other"; states are the fixed ss names; sysctls and TcpExt counters are
 * fixed lists.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { takeCensus, TimeLeft, type PressureEntry } from '../observe/census.js';
import { DOCTOR_SYSCTLS } from '../observe/doctor.js';
import { readSysctls } from '../observe/sysctl.js';
import { TCPEXT_KEYS } from '../observe/counters.js';
import { tcpStateName } from '../observe/sockdiag-states.js';
import { TCP_CT_STATES, type ConntrackSummary } from '../observe/conntrack-types.js';
import { histogramOf, TIME_WAIT_BUCKETS_SEC } from './time-wait-histogram.js';
import { NETNS_LABELS, scrapeHost, type HostScrape, type HostScrapeOptions } from './host-scrape.js';
import { foldOther, OTHER, sampleOf, worstOf, type NamespaceSample } from './sample.js';

export interface ExporterMetricsOptions {
  /** Destinations exported one by one (the rest go to `other`); default 10. */
  top?: number;
  /** Census source, for tests and the /proc fallback. */
  source?: 'auto' | 'netlink' | 'procfs';
  /** Window for the recent TIME_WAIT rate, in seconds (the census's default: 10). */
  rateWindowSec?: number;
  /** Every network namespace (or one, `only`) instead of the exporter's own; see host-scrape.ts. */
  namespaces?: Omit<HostScrapeOptions, 'source' | 'rateWindowSec'>;
}

export const DEFAULT_TOP = 10;

/** States exported even at 0, so a series does not vanish when a state empties (ss names). */
const STATES = [1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12].map(tcpStateName);

/** What one scrape read. */
export interface Snapshot {
  /** One per exported namespace: the exporter's own alone and unlabelled without `namespaces`. */
  samples: NamespaceSample[];
  /** With `namespaces`: what was found, skipped and folded. */
  host?: Omit<HostScrape, 'samples'>;
  ms: number;
}

const TW_HIST_NAME = 'twlab_time_wait_remaining_seconds';
const TW_HIST_HELP = 'TIME_WAIT sockets by time left on their timer (idiag_expires), in seconds';

/**
 * prom-client's Histogram (type, registration, exposition format), fed bucket counts made in
 * one pass of the table instead of an observe() per socket (~1 us each, 100 ms at 100k sockets).
 */
class PrecountedHistogram extends Histogram {
  constructor(
    registry: Registry,
    private readonly read: () => Promise<Snapshot>,
    labelNames: readonly string[],
  ) {
    super({
      name: TW_HIST_NAME,
      help: TW_HIST_HELP,
      buckets: [...TIME_WAIT_BUCKETS_SEC],
      labelNames,
      registers: [registry],
    });
  }
  override async get(): ReturnType<Histogram['get']> {
    const bucket = `${TW_HIST_NAME}_bucket`;
    const values = (await this.read()).samples.flatMap(({ labels, histogram: h }) => [
      ...TIME_WAIT_BUCKETS_SEC.map((le, i) => ({
        labels: { ...labels, le },
        value: h.buckets[i]!,
        metricName: bucket,
      })),
      { labels: { ...labels, le: '+Inf' }, value: h.count, metricName: bucket },
      { labels, value: h.sum, metricName: `${TW_HIST_NAME}_sum` },
      { labels, value: h.count, metricName: `${TW_HIST_NAME}_count` },
    ]);
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

/**
 * A Registry whose every scrape takes a census of the namespace this process runs in, or with
 * `namespaces`, of every namespace on the host.
 *
 * Long (~210 lines) on purpose: one block per metric (name, help, labels, collect), each short, all
 * reading the one snapshot per scrape that this closure holds; split up, that state would have to
 * be passed to every block.
 */
// eslint-disable-next-line max-lines-per-function -- long on purpose, as said above
export function createExporterRegistry(opts: ExporterMetricsOptions = {}): {
  registry: Registry;
  last(): Snapshot | undefined;
  /** Nothing to stop any more; kept for callers that close it. */
  close(): Promise<void>;
} {
  const top = opts.top ?? DEFAULT_TOP;
  const hostWide = opts.namespaces;
  const registry = new Registry();
  let snap: Snapshot | undefined;
  let pending: Promise<Snapshot> | undefined;
  const census = {
    ...(opts.source ? { source: opts.source } : {}),
    ...(opts.rateWindowSec ? { rateWindowSec: opts.rateWindowSec } : {}),
  };

  const takeOwn = (): Omit<Snapshot, 'ms'> => {
    const timeLeft = new TimeLeft();
    const taken = takeCensus({ top: Number.MAX_SAFE_INTEGER, ...census, timeLeft });
    return { samples: [sampleOf(taken, histogramOf(timeLeft), readSysctls(DOCTOR_SYSCTLS))] };
  };
  // Synchronous from the first setns to the last return: see host-scrape.ts.
  const takeHost = (ns: NonNullable<ExporterMetricsOptions['namespaces']>): Omit<Snapshot, 'ms'> => {
    const { samples, ...host } = scrapeHost({ ...ns, ...census });
    return { samples, host };
  };

  // One census per scrape, shared by every metric's collect() (they run in the same tick).
  const read = (): Promise<Snapshot> => {
    if (!pending) {
      pending = Promise.resolve().then(() => {
        const t0 = performance.now();
        const taken = hostWide ? takeHost(hostWide) : takeOwn();
        snap = { ...taken, ms: performance.now() - t0 };
        return snap;
      });
      // Cleared once every collect() of this scrape has had it.
      void pending.finally(() => setImmediate(() => (pending = undefined)));
    }
    return pending;
  };

  /** Each metric's own label names, after the namespace's in --all-namespaces mode. */
  const labelNames = (own: string[]): string[] => (hostWide ? [...NETNS_LABELS, ...own] : own);
  const where = hostWide ? 'each network namespace (netns label)' : 'this network namespace';

  new Gauge({
    name: 'twlab_tcp_sockets',
    help: `TCP sockets of ${where} by state (ss names), from a sock_diag census at scrape time`,
    labelNames: labelNames(['state']),
    registers: [registry],
    async collect() {
      const { samples } = await read();
      this.reset();
      for (const { labels, byState } of samples)
        for (const s of STATES) this.set({ ...labels, state: s }, byState[s] ?? 0);
    },
  });

  new PrecountedHistogram(registry, read, labelNames([]));

  const perDest = (name: string, help: string, value: (p: PressureEntry) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: labelNames(['local', 'remote']),
      registers: [registry],
      async collect() {
        const { samples } = await read();
        this.reset();
        for (const { labels, pressure } of samples) {
          const folded = foldOther(pressure, top);
          for (const p of folded.top) this.set({ ...labels, local: p.local, remote: p.remote }, value(p));
          if (folded.other) this.set({ ...labels, local: OTHER, remote: OTHER }, value(folded.other));
        }
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

  /** One series per sample (namespace); none for a sample where `value` is undefined. */
  const perNetns = (name: string, help: string, value: (s: NamespaceSample) => number | undefined): void => {
    new Gauge({
      name,
      help,
      labelNames: labelNames([]),
      registers: [registry],
      async collect() {
        const { samples } = await read();
        this.reset();
        for (const s of samples) {
          const v = value(s);
          if (v !== undefined) this.set(s.labels, v);
        }
      },
    });
  };
  perNetns(
    'twlab_netns_port_exhaustion_seconds',
    'Seconds until connect() fails towards the destination of the namespace that runs out first, at the recent TIME_WAIT rate (+Inf: none at this rate); for alerts',
    (s) => worstOf(s.pressure).secondsToExhaustion ?? Infinity,
  );
  perNetns(
    'twlab_netns_ports_held_ratio',
    "The largest share of the namespace's usable ephemeral ports held towards one destination (0-1); for alerts",
    (s) => worstOf(s.pressure).ratio,
  );
  perNetns(
    'twlab_port_destinations',
    'Destinations with ephemeral ports held (only the top N have their own series)',
    (s) => s.destinations,
  );
  perNetns(
    'twlab_ephemeral_ports_usable',
    'ip_local_port_range size minus ip_local_reserved_ports',
    (s) => s.usable,
  );
  perNetns('twlab_sockstat_tw', 'TIME_WAIT buckets (/proc/net/sockstat "tw")', (s) => s.sockstat.tw);
  perNetns(
    'twlab_sockstat_orphan',
    'Orphaned TCP sockets (/proc/net/sockstat "orphan", kernel-wide)',
    (s) => s.sockstat.orphan,
  );
  perNetns(
    'twlab_sockstat_inuse',
    'TCP sockets in use (/proc/net/sockstat "inuse", IPv4, excludes TIME_WAIT)',
    (s) => s.sockstat.inuse,
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
  single('twlab_census_duration_seconds', 'How long the census of this scrape took', (s) => s.ms / 1000);
  if (hostWide) {
    single('twlab_netns_seen', 'Network namespaces found on the host at this scrape', (s) => s.host!.seen);
    single(
      'twlab_netns_unreadable_processes',
      'Processes whose network namespace could not be opened at this scrape (a container without CAP_SYS_PTRACE misses most)',
      (s) => s.host!.unreadablePids,
    );
    single(
      'twlab_netns_folded',
      'Network namespaces beyond --max-namespaces, summed in the netns="other" series',
      (s) => s.host!.folded,
    );
    new Gauge({
      name: 'twlab_netns_skipped',
      help: 'Network namespaces that could not be read at this scrape: gone (exited meanwhile), denied (no CAP_SYS_ADMIN), failed',
      labelNames: ['reason'],
      registers: [registry],
      async collect() {
        const { host } = await read();
        this.reset();
        for (const reason of ['gone', 'denied', 'failed'] as const)
          this.set({ reason }, host!.skipped.filter((k) => k.reason === reason).length);
      },
    });
  }

  new Gauge({
    name: 'twlab_sysctl',
    help: `Teardown-related sysctls of ${where} (only those this kernel has; ip_local_port_range as .low/.high)`,
    labelNames: labelNames(['name']),
    registers: [registry],
    async collect() {
      const { samples } = await read();
      this.reset();
      for (const { labels, sysctls } of samples)
        for (const [key, text] of Object.entries(sysctls)) {
          const name = key.includes('.') ? key : `net.ipv4.${key}`;
          if (key === 'ip_local_port_range') {
            const [low, high] = text.split(' ').map(Number);
            this.set({ ...labels, name: `${name}.low` }, low!);
            this.set({ ...labels, name: `${name}.high` }, high!);
          } else if (/^-?\d+$/.test(text)) this.set({ ...labels, name }, Number(text));
        }
    },
  });

  new Counter({
    name: 'twlab_tcpext_total',
    help: 'Kernel TcpExt counters (/proc/net/netstat) for teardown: TW, TWKilled, TWRecycled, TCPTimeWaitOverflow, aborts, listen drops',
    labelNames: labelNames(['name']),
    registers: [registry],
    async collect() {
      const { samples } = await read();
      this.reset();
      for (const { labels, tcpExt } of samples)
        for (const k of TCPEXT_KEYS) {
          const v = tcpExt[k];
          if (v !== undefined) this.inc({ ...labels, name: k }, v);
        }
    },
  });

  addConntrackMetrics(registry, read, labelNames, top);

  return { registry, last: () => snap, close: () => Promise.resolve() };
}

/** conntrack's statistics exported as counters (fixed list: bounded labels). */
const CONNTRACK_STATS = {
  found: 'found',
  invalid: 'invalid',
  insert_failed: 'insertFailed',
  drop: 'drop',
  early_drop: 'earlyDrop',
  error: 'error',
  search_restart: 'searchRestart',
  clash_resolve: 'clashResolve',
  chaintoolong: 'chainTooLong',
} as const;

/**
 * Series for namespaces whose conntrack table has entries (a NAT, a firewall); none otherwise.
 * Labels stay bounded: conntrack's fixed TCP states and protocols seen, the top N NAT
 * destinations, a fixed list of counters.
 */
function addConntrackMetrics(
  registry: Registry,
  read: () => Promise<Snapshot>,
  labelNames: (own: string[]) => string[],
  top: number,
): void {
  const gauge = (
    name: string,
    help: string,
    own: string[],
    fill: (set: (labels: Record<string, string>, v: number) => void, ct: ConntrackSummary) => void,
  ): void => {
    new Gauge({
      name,
      help,
      labelNames: labelNames(own),
      registers: [registry],
      async collect() {
        const { samples } = await read();
        this.reset();
        for (const { labels, conntrack } of samples)
          if (conntrack) fill((l, v) => this.set({ ...labels, ...l }, v), conntrack);
      },
    });
  };
  gauge(
    'twlab_conntrack_entries',
    'Conntrack entries of the namespace by protocol',
    ['protocol'],
    (set, ct) => {
      for (const [protocol, n] of Object.entries(ct.byProtocol)) set({ protocol }, n);
    },
  );
  gauge(
    'twlab_conntrack_tcp_entries',
    "Conntrack's TCP entries by its state (conntrack names: ESTABLISHED, TIME_WAIT, ...)",
    ['state'],
    (set, ct) => {
      for (const state of TCP_CT_STATES) set({ state }, ct.tcpByState[state] ?? 0);
    },
  );
  gauge('twlab_conntrack_max', 'nf_conntrack_max: one limit for the whole kernel', [], (set, ct) => {
    if (ct.max !== null) set({}, ct.max);
  });
  gauge(
    'twlab_conntrack_nat_ports_held',
    `Source-NAT ports held by conntrack entries towards a destination from a NAT address; the top ${top}`,
    ['protocol', 'nat_address', 'destination'],
    (set, ct) => {
      for (const n of ct.natPorts.slice(0, top))
        set({ protocol: n.protocol, nat_address: n.natAddress, destination: n.destination }, n.portsUsed);
    },
  );
  new Counter({
    name: 'twlab_conntrack_stat_total',
    help: "Conntrack's statistics summed over CPUs (conntrack -S): insert_failed, drop and early_drop show trouble",
    labelNames: labelNames(['name']),
    registers: [registry],
    async collect() {
      const { samples } = await read();
      this.reset();
      for (const { labels, conntrack } of samples)
        if (conntrack)
          for (const [name, key] of Object.entries(CONNTRACK_STATS))
            this.inc({ ...labels, name }, conntrack.stats[key]);
    },
  });
}
