/**
 * The census: one pass over the kernel's TCP table (sockdiag.ts) that counts sockets per state,
 * summarises TIME_WAIT time left, and measures ephemeral-port pressure per destination.
 *
 * Port pressure, per (remote address:port, local address): the ports of ip_local_port_range
 * (minus ip_local_reserved_ports) that sockets of any state hold towards that destination, i.e.
 * the 4-tuples connect() cannot pick again. Sockets whose local port is a listening port are the
 * server side of accepted connections, not ephemeral allocations, and are left out.
 *
 * Rate of new TIME_WAIT sockets (method, and its limits): a TIME_WAIT socket entered that state
 * TIME_WAIT_LEN - expires ago, so the sockets with expires >= TIME_WAIT_LEN - W entered it within
 * the last W seconds; their count / W is the recent rate. It sees only connections that reached
 * TIME_WAIT on this side (not those the peer closed first, nor ones reset or killed early); it
 * underestimates when the churn began less than W ago, and averages over W.
 * Seconds to exhaustion: from now on, ports are taken at that rate and freed as the current
 * TIME_WAIT sockets expire (each new one frees itself TIME_WAIT_LEN later); the first moment the
 * ports held reach the usable count is the answer. null when the rate is 0 or when the held count
 * levels off below the range (never at this rate).
 */
import { conntrackCount, readConntrack } from './conntrack.js';
import type { ConntrackSummary } from './conntrack-types.js';
import { DIAG, WORD, wordsOf } from './sockdiag-layout.js';
import { openTcpDump, type DumpSource, type DumpOptions } from './sockdiag.js';
import { ephemeralPorts, type EphemeralPorts } from './sysctl.js';
import { readCounters, type Counters } from './counters.js';
import { TCP_LISTEN, TCP_TIME_WAIT, tcpStateName } from './sockdiag-states.js';
import { bytesToIpv6 } from '../sockets/sockaddr.js';
import { AF_INET6 } from '../sockets/constants.js';
import type { PortRange } from '../common/parse.js';
import { TCP_TIMEWAIT_LEN_MS } from '../common/kernel-constants.js';

/** TCP_TIMEWAIT_LEN (include/net/tcp.h): the TIME_WAIT timer a socket starts with. */
const TIME_WAIT_LEN_MS = TCP_TIMEWAIT_LEN_MS;

export interface CensusOptions {
  /** Kernel state numbers to count (sockdiag-states.ts); all when omitted. */
  states?: readonly number[];
  /** Count only sockets whose local or remote port is this. */
  port?: number;
  family?: 4 | 6;
  source?: DumpOptions['source'];
  /** Window W for the TIME_WAIT rate, in seconds (default 10, at most 60). */
  rateWindowSec?: number;
  /** How many pressure entries to list, highest ratio first (default 20). */
  top?: number;
  /** Port range and reserved ports; read from this namespace when omitted. */
  ports?: EphemeralPorts;
  /**
   * Read the table and counters from /proc/net files of this directory (another process's
   * /proc/PID/net) instead of netlink in the calling thread's namespace.
   */
  procNet?: string;
  /** Fill this accumulator with TIME_WAIT time left (the exporter buckets it); a fresh one if omitted. */
  timeLeft?: TimeLeft;
}

export interface PressureEntry {
  /** "198.51.100.2:8080" or "[::1]:8080". */
  remote: string;
  /** Local address. */
  local: string;
  /** Ephemeral ports held towards this destination (any state). */
  inUse: number;
  /** Of these, in TIME-WAIT. */
  timeWait: number;
  /** Usable ephemeral ports: range size minus reserved ports. */
  rangeSize: number;
  ratio: number;
  /** New TIME_WAIT sockets per second towards this destination (see the method above). */
  ratePerSec: number;
  /** Seconds until connect() to this destination fails at that rate; null: not at this rate. */
  secondsToExhaustion: number | null;
}

export interface CensusResult {
  total: number;
  byState: Record<string, number>;
  timeWait: {
    count: number;
    remainingMs: { min: number | null; p50: number | null; max: number | null };
    /** New TIME_WAIT sockets per second over the rate window, all destinations. */
    ratePerSec: number;
  };
  pressure: PressureEntry[];
  /** Destinations with any ports held (pressure lists the `top` of them). */
  pressureDestinations: number;
  portRange: { low: number; high: number; reserved: PortRange[]; usable: number };
  rate: { method: 'time-wait-age'; windowSec: number; timeWaitLenMs: number };
  source: DumpSource;
  fallbackReason?: string;
  counters: Counters;
  filter: { states?: string[]; port?: number };
  /** Only when this namespace's conntrack table has entries (e.g. it NATs). */
  conntrack?: ConntrackSummary;
}

interface Dest {
  remote: string;
  local: string;
  inUse: number;
  timeWait: number;
  recent: number;
  expires: GrowableU32;
}

/** A Uint32Array that grows by doubling: a number per socket without boxing or a giant array. */
class GrowableU32 {
  private data = new Uint32Array(256);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const bigger = new Uint32Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = v;
  }
  /** The values in ascending order (a view; sorts in place, numerically). */
  sorted(): Uint32Array {
    return this.data.subarray(0, this.length).sort();
  }
}

/**
 * TIME_WAIT time left over all sockets: count, min, median and max without keeping or sorting a
 * value per socket. One counter per millisecond up to TCP_TIMEWAIT_LEN, the most the kernel
 * reports (inet_twsk_diag_fill: the timer's remaining jiffies), and one per second over them so a
 * rank is found in ~1,000 steps rather than 60,000; anything larger is kept aside exactly, so the
 * median stays exact.
 */
export class TimeLeft {
  private readonly perMs = new Uint32Array(TIME_WAIT_LEN_MS + 1);
  private readonly perSecond = new Uint32Array(Math.ceil((TIME_WAIT_LEN_MS + 1) / 1000));
  private readonly above = new GrowableU32();
  count = 0;
  min = Infinity;
  max = 0;
  add(ms: number): void {
    if (ms <= TIME_WAIT_LEN_MS) {
      this.perMs[ms]!++;
      this.perSecond[(ms / 1000) | 0]!++;
    } else this.above.push(ms);
    this.count++;
    if (ms < this.min) this.min = ms;
    if (ms > this.max) this.max = ms;
  }
  /** The k-th smallest value, 1 <= k <= count. */
  nth(k: number): number {
    let seen = 0;
    for (let second = 0; second < this.perSecond.length; second++) {
      if (seen + this.perSecond[second]! < k) {
        seen += this.perSecond[second]!;
        continue;
      }
      const end = Math.min(second * 1000 + 1000, this.perMs.length);
      for (let ms = second * 1000; ms < end; ms++) {
        seen += this.perMs[ms]!;
        if (seen >= k) return ms;
      }
    }
    return this.above.sorted()[k - seen - 1]!;
  }
  /** How many values are at most `ms` (a histogram's cumulative `le` count). */
  atMost(ms: number): number {
    if (ms > TIME_WAIT_LEN_MS) return this.count - this.above.sorted().filter((v) => v > ms).length;
    const whole = Math.floor((ms + 1) / 1000);
    let n = 0;
    for (let second = 0; second < whole; second++) n += this.perSecond[second]!;
    for (let v = whole * 1000; v <= ms; v++) n += this.perMs[v]!;
    return n;
  }
  /** The sum of all values, exact. */
  sumMs(): number {
    let sum = 0;
    for (let v = 1; v < this.perMs.length; v++) sum += v * this.perMs[v]!;
    for (const v of this.above.sorted()) sum += v;
    return sum;
  }
}

/** Take the census of the TCP table of the namespace this process runs in. */
export function takeCensus(opts: CensusOptions = {}): CensusResult {
  const ports = opts.ports ?? ephemeralPorts();
  const windowSec = Math.min(Math.max(opts.rateWindowSec ?? 10, 0.001), TIME_WAIT_LEN_MS / 1000);
  const recentFrom = TIME_WAIT_LEN_MS - windowSec * 1000;
  // Listeners come first in both sources (the kernel walks the listening hash before the
  // established one, per family, and /proc/net/tcp prints them in that order), so when LISTEN is
  // among the states dumped they are known before any socket that uses their port. Otherwise a
  // LISTEN-only dump (cheap over netlink: the kernel skips the established hash) finds them.
  const listensInPass = !opts.states || opts.states.includes(TCP_LISTEN);
  const listening = listensInPass ? new Uint8Array(65536) : listeningPorts(opts);

  const byNumber = new Array<number>(16).fill(0);
  const tw = opts.timeLeft ?? new TimeLeft();
  let twRecent = 0;
  const dests = new Destinations();
  const port = opts.port ?? -1;
  const ephemeral = ports.bitmap;

  const dump = openTcpDump({
    ...(opts.states ? { states: opts.states } : {}),
    ...(opts.family ? { family: opts.family } : {}),
    ...(opts.source ? { source: opts.source } : {}),
    ...(opts.procNet ? { procNet: opts.procNet } : {}),
  });
  // The hot loop (one call per socket). A census is a short process, so this code runs mostly
  // before V8 optimises it: it reads whole words (WORD), keeps new destinations in a separate
  // function, and allocates nothing for a known destination.
  let words: Int32Array = new Int32Array(0);
  let wordsOfBuf: Buffer | undefined;
  // sockstat counts this namespace's own TCP sockets (hashed ones, and TIME-WAIT and FIN-WAIT-2
  // minisockets), so none there means an empty table. Skipping the dump then matters on a host of
  // many namespaces: the established hash is one table shared by all of them (262,144 buckets
  // here), and every dump walks all of it to find this namespace's sockets, ~1 ms for nothing.
  const counters = readCounters(opts.procNet);
  const { inuse, tw: twBuckets, inuse6 } = counters.sockstat;
  // Every figure describes the same filtered set: total counts what passes the port filter.
  let total = 0;
  if (inuse + twBuckets + inuse6 === 0) dump.close();
  else
    dump.scan((buf, off) => {
      if (buf !== wordsOfBuf) {
        wordsOfBuf = buf;
        words = wordsOf(buf);
      }
      const i = off >> 2;
      const ports2 = words[i + WORD.ports]!; // two be16 ports, as stored
      const sport = ((ports2 & 0xff) << 8) | ((ports2 >>> 8) & 0xff);
      const dport = ((ports2 >>> 8) & 0xff00) | (ports2 >>> 24);
      if (port >= 0 && sport !== port && dport !== port) return;
      total++;
      const head = words[i + WORD.head]!;
      const state = (head >>> 8) & 0xff;
      byNumber[state & 15]!++;
      let expires = 0;
      const isTw = state === TCP_TIME_WAIT;
      if (isTw) {
        expires = words[i + WORD.expires]! >>> 0;
        tw.add(expires);
        if (expires >= recentFrom) twRecent++;
      }
      if (state === TCP_LISTEN) {
        listening[sport] = 1;
        return;
      }
      if (dport === 0 || ephemeral[sport] !== 1 || listening[sport] === 1) return;
      const dest =
        (head & 0xff) === AF_INET6
          ? dests.of6(buf, off, dport)
          : dests.of4(buf, off, dport, words[i + WORD.dst]!, words[i + WORD.src]!);
      dest.inUse++;
      if (isTw) {
        dest.timeWait++;
        dest.expires.push(expires);
        if (expires >= recentFrom) dest.recent++;
      }
    });

  const byState: Record<string, number> = {};
  byNumber.forEach((n, s) => {
    if (n > 0) byState[tcpStateName(s)] = n;
  });
  const twCount = tw.count;
  const all = dests.all();
  // Every destination has the same usable range, so the highest ratio is the most ports in use.
  // Plain string order breaks ties: localeCompare would load ICU collation (~10 ms, once).
  const pressure = all
    .sort((a, b) => b.inUse - a.inUse || (a.remote < b.remote ? -1 : a.remote > b.remote ? 1 : 0))
    .slice(0, opts.top ?? 20)
    .map((d) => pressureOf(d, ports.usable, windowSec));

  return {
    total,
    byState,
    timeWait: {
      count: twCount,
      remainingMs: {
        min: twCount ? tw.min : null,
        p50: twCount ? tw.nth(Math.ceil(twCount / 2)) : null,
        max: twCount ? tw.max : null,
      },
      ratePerSec: round(twRecent / windowSec),
    },
    pressure,
    pressureDestinations: all.length,
    portRange: {
      low: ports.range.low,
      high: ports.range.high,
      reserved: ports.reserved,
      usable: ports.usable,
    },
    rate: { method: 'time-wait-age', windowSec, timeWaitLenMs: TIME_WAIT_LEN_MS },
    source: dump.source,
    ...(dump.fallbackReason ? { fallbackReason: dump.fallbackReason } : {}),
    counters,
    filter: censusFilter(opts),
    ...conntrackSection(opts.procNet),
  };
}

/**
 * The namespace's conntrack table (a NAT, a firewall), when it has entries: one small file read
 * decides, so a census of a namespace without conntrack pays nothing more.
 */
function conntrackSection(procNet: string | undefined): { conntrack?: ConntrackSummary } {
  if (!conntrackCount(procNet)) return {};
  return { conntrack: readConntrack(procNet ? { procNet } : {}) };
}

/** The filter a census applied, as its document reports it. */
export function censusFilter(opts: Pick<CensusOptions, 'states' | 'port'>): CensusResult['filter'] {
  return {
    ...(opts.states ? { states: opts.states.map(tcpStateName) } : {}),
    ...(opts.port !== undefined ? { port: opts.port } : {}),
  };
}

function newDest(remote: string, local: string): Dest {
  return { remote, local, inUse: 0, timeWait: 0, recent: 0, expires: new GrowableU32() };
}

/**
 * The destinations seen, keyed by (remote address, remote port, local address). IPv4 keys stay
 * small integers (the port, and each address word as an int32), so a lookup allocates nothing;
 * a 64-entry direct-mapped cache in front of the maps answers most lookups, since a table dump
 * interleaves a few busy destinations. IPv6 keys are hex strings (rare in a churn census).
 */
class Destinations {
  private readonly v4 = new Map<number, Map<number, Map<number, Dest>>>();
  private readonly v6 = new Map<string, Dest>();
  private readonly cache = {
    remote: new Int32Array(64),
    local: new Int32Array(64),
    port: new Int32Array(64).fill(-1),
    dest: new Array<Dest | undefined>(64).fill(undefined),
  };

  /** The IPv4 destination of the record at `off` (addresses as stored words), created when new. */
  of4(buf: Buffer, off: number, dport: number, remote: number, local: number): Dest {
    const c = this.cache;
    const h = (remote ^ (local >>> 7) ^ Math.imul(dport, 0x9e3779b1)) >>> 26;
    if (c.remote[h] === remote && c.local[h] === local && c.port[h] === dport) return c.dest[h]!;
    const dest = this.find4(buf, off, dport, remote, local);
    c.remote[h] = remote;
    c.local[h] = local;
    c.port[h] = dport;
    c.dest[h] = dest;
    return dest;
  }

  of6(buf: Buffer, off: number, dport: number): Dest {
    const key = buf.toString('hex', off + DIAG.src, off + DIAG.ifindex) + dport;
    let dest = this.v6.get(key);
    if (!dest) {
      const remote = `[${bytesToIpv6(buf.subarray(off + DIAG.dst, off + DIAG.dst + 16))}]:${dport}`;
      dest = newDest(remote, bytesToIpv6(buf.subarray(off + DIAG.src, off + DIAG.src + 16)));
      this.v6.set(key, dest);
    }
    return dest;
  }

  all(): Dest[] {
    const all = [...this.v6.values()];
    for (const byRemote of this.v4.values())
      for (const byLocal of byRemote.values()) all.push(...byLocal.values());
    return all;
  }

  private find4(buf: Buffer, off: number, dport: number, remote: number, local: number): Dest {
    let byRemote = this.v4.get(dport);
    if (!byRemote) this.v4.set(dport, (byRemote = new Map()));
    let byLocal = byRemote.get(remote);
    if (!byLocal) byRemote.set(remote, (byLocal = new Map()));
    let dest = byLocal.get(local);
    if (!dest) {
      const d = off + DIAG.dst;
      const s = off + DIAG.src;
      dest = newDest(
        `${buf[d]}.${buf[d + 1]}.${buf[d + 2]}.${buf[d + 3]}:${dport}`,
        `${buf[s]}.${buf[s + 1]}.${buf[s + 2]}.${buf[s + 3]}`,
      );
      byLocal.set(local, dest);
    }
    return dest;
  }
}

/** Local ports that have a listener (any address), as a 65536-entry table: not ephemeral. */
function listeningPorts(opts: CensusOptions): Uint8Array {
  const set = new Uint8Array(65536);
  const dump = openTcpDump({
    states: [TCP_LISTEN],
    ...(opts.family ? { family: opts.family } : {}),
    ...(opts.source ? { source: opts.source } : {}),
    ...(opts.procNet ? { procNet: opts.procNet } : {}),
  });
  dump.scan((buf, off) => void (set[buf.readUInt16BE(off + DIAG.sport)] = 1));
  return set;
}

function pressureOf(d: Dest, usable: number, windowSec: number): PressureEntry {
  const rate = d.recent / windowSec;
  return {
    remote: d.remote,
    local: d.local,
    inUse: d.inUse,
    timeWait: d.timeWait,
    rangeSize: usable,
    ratio: usable > 0 ? round(d.inUse / usable) : 1,
    ratePerSec: round(rate),
    secondsToExhaustion: secondsToExhaustion(d.inUse, d.expires.sorted(), rate, usable),
  };
}

/**
 * First t >= 0 with held(t) >= usable (expiries given in ascending order), where held(t) = inUse + rate*t - (current TIME_WAIT
 * sockets expired by t), for t up to TIME_WAIT_LEN; after that held(t) is flat (each new socket
 * frees itself TIME_WAIT_LEN after it came), so no crossing by then means never. null if never.
 */
export function secondsToExhaustion(
  inUse: number,
  sortedExpiresMs: ArrayLike<number>,
  rate: number,
  usable: number,
): number | null {
  if (inUse >= usable) return 0;
  if (!(rate > 0)) return null;
  const n = sortedExpiresMs.length;
  const at = (k: number): number => Math.min(sortedExpiresMs[k]!, TIME_WAIT_LEN_MS) / 1000;
  const end = TIME_WAIT_LEN_MS / 1000;
  for (let k = 0; k <= n; k++) {
    const from = k === 0 ? 0 : at(k - 1);
    const to = k < n ? at(k) : end;
    const t = (usable - inUse + k) / rate;
    if (t >= from && t < to) return round(t);
    if (k === n && t <= end && t >= from) return round(t);
  }
  return null;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
