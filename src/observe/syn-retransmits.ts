/**
 * Stalled and failed connects as what they are on the client: SYN retransmissions and the time a
 * connect spent in SYN-SENT. Behind a NAT (issue 14) a SYN that conntrack dropped, or that met
 * the server's TIME_WAIT on a reused NAT port, shows on the client only as a SYN sent again
 * (after 1 s, 3 s, ... or, on an unacceptable ACK, at once) and a connect that took that long or
 * gave up. No errno says so for a nonblocking connect.
 *
 * The source is `tcp:tcp_retransmit_skb`, which fires for SYN retransmits too (the socket is in
 * SYN_SENT). Its format on 6.18: `skbaddr skaddr family sport dport saddr daddr saddrv6 daddrv6
 * state err`. Since 6.12 it fires for every attempt, with `err` (0: sent; -EBUSY, -ENOMEM, ...:
 * not sent, before the kernel counts it), so `err == 0` is what TcpExtTCPSynRetrans counts;
 * older kernels have no `err` and trace only sent ones. twlab filters it in the kernel to
 * `state == 2` (TCP_SYN_SENT, read from the event's format).
 *
 * `SynRetransmitTracker` is pure (no I/O, no timers): it is fed the SYN retransmits and the
 * tracer's tracepoint transitions (the `SYN-SENT -> X` of a connect, whose `inOldStateMs` is the
 * time since connect(), when the trace saw it start), and it reports one `SlowConnect` per
 * connect that sent its SYN again, stayed in SYN-SENT at least `stallMs`, or ended in SYN-SENT
 * (closed with a local port: timed out, reset, or abandoned by its process). Retransmits are
 * matched by 4-tuple (the connect's local port is known once its SYN is out). A retransmit read
 * after its connect's end (per-CPU buffers read in batches) is still counted in the totals and
 * added to that connect's record when it is at most LATE_MS later.
 */
import type { Endpoint } from './sockdiag.js';
import { canonicalAddress } from './trace-diag.js';
import type { Transition } from './trace-timeline.js';

/** TCP_SYN_SENT in include/net/tcp_states.h (the event's format prints it by name). */
export const TCP_SYN_SENT = 2;
/** The default: a connect that took this long stalled (the churn's `stalls.overMs`). */
export const DEFAULT_STALL_MS = 500;
/** Bound on connects followed at once (retransmits waiting for their connect's end). */
const MAX_PENDING = 50_000;
/** How long after its end a connect still takes late retransmits (in event time). */
const LATE_MS = 2_000;

/** One tcp:tcp_retransmit_skb event of a socket in SYN-SENT. */
export interface SynRetransmitEvent {
  /** CLOCK_MONOTONIC ms. */
  timeMs: number;
  family: 4 | 6;
  local: Endpoint;
  remote: Endpoint;
  /** The kernel's err (0: the SYN was sent again); 0 where the kernel has no such field. */
  err: number;
}

/** A connect that stalled, retransmitted its SYN, or ended in SYN-SENT. */
export interface SlowConnect {
  kind: 'slow-connect';
  /** When it left SYN-SENT (or the trace ended). */
  timeMs: number;
  time: string;
  /** The connect()'s process, as the tracer knew it (0 and "?" when unknown). */
  pid: number;
  task: string;
  netns?: number;
  family: 4 | 6;
  local: Endpoint;
  remote: Endpoint;
  /** When connect() put it in SYN-SENT, if the trace saw that; then durationMs is known. */
  startMs?: number;
  durationMs?: number;
  /** SYNs sent again (err 0), and attempts the kernel could not send (err != 0). */
  synRetransmits: number;
  failedRetransmits: number;
  /** Each retransmit's time after connect() (or after the first one seen, without startMs), ms. */
  retransmitsAtMs: number[];
  /**
   * established: the handshake completed (a stall when durationMs >= stallMs); closed: it left
   * SYN-SENT for CLOSE with its SYN out (the kernel's timeout, a reset, or the process gave up);
   * unfinished: still in SYN-SENT when the trace ended.
   */
  outcome: 'established' | 'closed' | 'unfinished';
  /** durationMs >= stallMs. */
  stalled: boolean;
}

/** The totals a trace reports. */
export interface SynRetransmitSummary {
  /** Whether tcp:tcp_retransmit_skb was traced (absent: counts are 0 and mean nothing). */
  traced: boolean;
  stallMs: number;
  /** SYN retransmits sent (err 0): what TcpExtTCPSynRetrans counts. */
  synRetransmits: number;
  /** Retransmit attempts the kernel did not send (err != 0). */
  failedRetransmits: number;
  /** Connects reported (SlowConnect), by outcome. */
  connects: { established: number; closed: number; unfinished: number };
  /** Established connects that took stallMs or more, and the longest of them. */
  stalled: number;
  longestStallMs: number | null;
  /** Connects that ended in SYN-SENT, and the longest time one spent there. */
  longestClosedMs: number | null;
}

/** The parts of a tracer transition the tracker reads. */
export type ConnectTransition = Pick<
  Transition,
  | 'timeMs'
  | 'pid'
  | 'task'
  | 'netns'
  | 'family'
  | 'local'
  | 'remote'
  | 'oldState'
  | 'newState'
  | 'inOldStateMs'
  | 'source'
>;

function key(family: number, local: Endpoint, remote: Endpoint): string {
  return `${family}|${canonicalAddress(local.address)}|${local.port}|${canonicalAddress(remote.address)}|${remote.port}`;
}

/**
 * A tcp_retransmit_skb event's `key=value` text (as trace_pipe prints it) -> an event, or
 * undefined when the socket was not in SYN-SENT (the kernel filter should have kept those out).
 */
export function synRetransmitFromFields(
  f: Record<string, string>,
  timeMs: number,
): SynRetransmitEvent | undefined {
  if (f['state'] !== undefined && f['state'] !== 'TCP_SYN_SENT' && f['state'] !== String(TCP_SYN_SENT)) {
    return undefined;
  }
  const family: 4 | 6 = f['family'] === 'AF_INET6' ? 6 : 4;
  return {
    timeMs,
    family,
    local: { address: (family === 6 ? f['saddrv6'] : f['saddr']) ?? '', port: Number(f['sport']) },
    remote: { address: (family === 6 ? f['daddrv6'] : f['daddr']) ?? '', port: Number(f['dport']) },
    err: f['err'] === undefined ? 0 : Number(f['err']),
  };
}

/** The kernel-side filter for tcp:tcp_retransmit_skb: SYN-SENT only, and the trace's port. */
export function synRetransmitFilter(port: number | undefined): string {
  return port === undefined
    ? `state == ${TCP_SYN_SENT}`
    : `state == ${TCP_SYN_SENT} && (sport == ${port} || dport == ${port})`;
}

interface Pending {
  firstMs: number;
  /** Absolute times of the retransmits sent, and the count not sent. */
  sentAt: number[];
  failed: number;
}

export interface SynRetransmitOptions {
  /** Date.now() minus the events' clock at the same instant, for `time` (default 0). */
  wallOffsetMs?: number;
  /** A connect that took this long stalled (default 500 ms). */
  stallMs?: number;
}

interface Recent {
  endMs: number;
  c: SlowConnect | undefined;
}

export class SynRetransmitTracker {
  private readonly pending = new Map<string, Pending>();
  /** Connects that left SYN-SENT lately (their record, if reported), by 4-tuple: late retransmits. */
  private readonly recent = new Map<string, Recent>();
  /** recent's entries in the order they were set (superseded ones skipped), from recentHead on. */
  private readonly recentOrder: { k: string; r: Recent }[] = [];
  private recentHead = 0;
  private readonly stallMs: number;
  private readonly wallOffsetMs: number;
  private sent = 0;
  private failed = 0;
  private readonly counts = { established: 0, closed: 0, unfinished: 0 };
  private stalled = 0;
  private longestStallMs: number | null = null;
  private longestClosedMs: number | null = null;

  constructor(opts: SynRetransmitOptions = {}) {
    this.stallMs = opts.stallMs ?? DEFAULT_STALL_MS;
    this.wallOffsetMs = opts.wallOffsetMs ?? 0;
  }

  /** Feed one SYN retransmit. Returns nothing: a connect is reported when it ends. */
  retransmit(ev: SynRetransmitEvent): SlowConnect[] {
    const sent = ev.err === 0;
    if (sent) this.sent++;
    else this.failed++;
    const k = key(ev.family, ev.local, ev.remote);
    const ended = this.recent.get(k);
    if (ended && ev.timeMs <= ended.endMs) {
      // Read after its connect's end: it belongs to that connect (counted above in any case).
      const done = ended.c;
      if (!done) return [];
      if (sent) {
        done.synRetransmits++;
        done.retransmitsAtMs.push(ev.timeMs - (done.startMs ?? ev.timeMs));
        done.retransmitsAtMs.sort((a, b) => a - b);
      } else done.failedRetransmits++;
      return [];
    }
    let p = this.pending.get(k);
    if (!p) {
      p = { firstMs: ev.timeMs, sentAt: [], failed: 0 };
      this.pending.set(k, p);
      if (this.pending.size > MAX_PENDING) this.pending.delete(this.pending.keys().next().value!);
    }
    if (sent) p.sentAt.push(ev.timeMs);
    else p.failed++;
    return [];
  }

  /** Feed one tracer transition; a connect leaving SYN-SENT may be reported. */
  transition(t: ConnectTransition): SlowConnect[] {
    if (t.source !== 'tracepoint' || t.oldState !== 'SYN-SENT' || t.local.port === 0) return [];
    const k = key(t.family, t.local, t.remote);
    const p = this.pending.get(k);
    this.pending.delete(k);
    const durationMs = t.inOldStateMs;
    const outcome = t.newState === 'CLOSE' ? 'closed' : 'established';
    const stalled = durationMs !== undefined && durationMs >= this.stallMs;
    const c =
      !p && !stalled && outcome === 'established' ? undefined : this.record(t, p, durationMs, outcome);
    this.recent.delete(k);
    const r = { endMs: t.timeMs, c };
    this.recent.set(k, r);
    this.recentOrder.push({ k, r });
    this.pruneRecent(t.timeMs);
    return c ? [c] : [];
  }

  /** The trace ended: connects still in SYN-SENT with retransmits are reported as unfinished. */
  end(endMs: number): SlowConnect[] {
    const out: SlowConnect[] = [];
    for (const [k, p] of this.pending) {
      const [family, laddr, lport, raddr, rport] = k.split('|');
      out.push(
        this.record(
          {
            timeMs: endMs,
            pid: 0,
            task: '?',
            family: family === '6' ? 6 : 4,
            local: { address: laddr!, port: Number(lport) },
            remote: { address: raddr!, port: Number(rport) },
          },
          p,
          undefined,
          'unfinished',
        ),
      );
    }
    this.pending.clear();
    return out;
  }

  summary(traced: boolean): SynRetransmitSummary {
    return {
      traced,
      stallMs: this.stallMs,
      synRetransmits: this.sent,
      failedRetransmits: this.failed,
      connects: { ...this.counts },
      stalled: this.stalled,
      longestStallMs: this.longestStallMs,
      longestClosedMs: this.longestClosedMs,
    };
  }

  private record(
    t: Pick<ConnectTransition, 'timeMs' | 'pid' | 'task' | 'netns' | 'family' | 'local' | 'remote'>,
    p: Pending | undefined,
    durationMs: number | undefined,
    outcome: SlowConnect['outcome'],
  ): SlowConnect {
    const startMs = durationMs === undefined ? undefined : t.timeMs - durationMs;
    const from = startMs ?? p?.firstMs ?? t.timeMs;
    const stalled = outcome === 'established' && durationMs !== undefined && durationMs >= this.stallMs;
    const c: SlowConnect = {
      kind: 'slow-connect',
      timeMs: t.timeMs,
      time: new Date(t.timeMs + this.wallOffsetMs).toISOString(),
      pid: t.pid,
      task: t.task,
      netns: t.netns,
      family: t.family,
      local: t.local,
      remote: t.remote,
      startMs,
      durationMs,
      synRetransmits: p?.sentAt.length ?? 0,
      failedRetransmits: p?.failed ?? 0,
      retransmitsAtMs: (p?.sentAt ?? []).map((at) => Math.max(0, at - from)),
      outcome,
      stalled,
    };
    this.counts[outcome]++;
    if (stalled) {
      this.stalled++;
      this.longestStallMs = Math.max(this.longestStallMs ?? 0, durationMs!);
    }
    if (outcome === 'closed' && durationMs !== undefined) {
      this.longestClosedMs = Math.max(this.longestClosedMs ?? 0, durationMs);
    }
    return c;
  }

  private pruneRecent(nowMs: number): void {
    // The map's own order, oldest first, kept beside it: iterating a Map from its start walks
    // over every entry deleted since its last rehash (here: one per connect), per connect.
    const q = this.recentOrder;
    while (this.recentHead < q.length) {
      const { k, r } = q[this.recentHead]!;
      if (this.recent.get(k) === r) {
        if (r.endMs >= nowMs - LATE_MS && this.recent.size <= MAX_PENDING) break;
        this.recent.delete(k);
      }
      this.recentHead++;
    }
    if (this.recentHead > 1024 && this.recentHead * 2 > q.length) {
      q.splice(0, this.recentHead);
      this.recentHead = 0;
    }
  }
}
