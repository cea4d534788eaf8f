/**
 * Conntrack events of one network namespace, as `conntrack -E` shows them: a ctnetlink socket
 * subscribed to the multicast groups NFNLGRP_CONNTRACK_NEW / _UPDATE / _DESTROY
 * (include/uapi/linux/netfilter/nfnetlink.h: 1, 2, 3; bit g-1 of sockaddr_nl.nl_groups). Read
 * only: nothing is sent to the kernel. net/netfilter/nf_conntrack_netlink.c
 * (ctnetlink_conntrack_event) sends a destroy as IPCTNL_MSG_CT_DELETE, a new entry as
 * IPCTNL_MSG_CT_NEW with NLM_F_CREATE|NLM_F_EXCL, an update as IPCTNL_MSG_CT_NEW without them;
 * the payload is the dump's (one decoder: conntrack-netlink.ts's entryAt), so the original and
 * reply tuples give the NAT port (the reply's destination port under source NAT).
 *
 * The socket is made in the namespace (`netns`: a path such as /proc/PID/ns/net, entered on this
 * thread only for the socket() and bind(); the socket stays bound to it), then read without
 * blocking every `pollMs` from a timer, so the event loop stays free. Bounded: `maxEvents` and
 * `durationMs`. A full receive buffer makes the kernel drop events and say so once with ENOBUFS
 * on the next read: counted in `lost.overruns` (how many events went is not known) and never
 * silent. The kernel sends events only while `net.netfilter.nf_conntrack_events` is 1, or 2 (the
 * default on 6.18: on while someone listens); its value is reported.
 *
 * Events carry no kernel timestamp (unless nf_conntrack_timestamp): `timeMs` is when twlab read
 * them (CLOCK_MONOTONIC), within `pollMs` of the kernel's event.
 */
import { readFileSync } from 'node:fs';
import { RunError, UsageError } from '../common/errors.js';
import { ENOBUFS, EAGAIN, SyscallError } from '../sockets/errno.js';
import { NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSG_NOOP, type NetlinkSocket } from '../sockets/netlink.js';
import { currentNetnsInode, netnsInodeOf, withNetns } from '../sockets/netns.js';
import { NFNL_SUBSYS_CTNETLINK, entryAt, openCtnetlink } from './conntrack-netlink.js';
import { protocolName, sourceNatOf, type Tuple } from './conntrack-types.js';

export type ConntrackEventType = 'new' | 'update' | 'destroy';
export const CONNTRACK_EVENT_TYPES: readonly ConntrackEventType[] = ['new', 'update', 'destroy'];

/** nfnetlink.h: enum nfnetlink_groups. */
const GROUP: Record<ConntrackEventType, number> = { new: 1, update: 2, destroy: 3 };
/** nfnetlink_conntrack.h: enum cntl_msg_types. */
const IPCTNL_MSG_CT_NEW = 0;
const IPCTNL_MSG_CT_DELETE = 2;
/** netlink.h */
const NLM_F_CREATE = 0x400;

export const MAX_EVENTS_LIMIT = 1_000_000;
export const MAX_WATCH_MS = 3_600_000;
const DEFAULT_MAX_EVENTS = 100_000;
const DEFAULT_WATCH_MS = 10_000;
/** As `conntrack -E -b`: room for bursts between two reads. */
const DEFAULT_RCVBUF = 8 * 1024 * 1024;
const DEFAULT_POLL_MS = 20;
/** Datagrams read per poll at most, so one poll never holds the event loop for long. */
const MAX_DATAGRAMS_PER_POLL = 4096;

/** One conntrack event, decoded. */
export interface ConntrackEvent {
  kind: 'conntrack';
  type: ConntrackEventType;
  /** CLOCK_MONOTONIC ms when read (see the file comment), and the wall-clock time. */
  timeMs: number;
  time: string;
  family: 4 | 6;
  protocol: string;
  /** TCP: conntrack's state (SYN_SENT, ESTABLISHED, TIME_WAIT, ...); null for other protocols. */
  state: string | null;
  /** As the first packet went (client -> server, before NAT), and as the replies come back. */
  orig: Tuple;
  reply: Tuple;
  /** Source NAT: the address and port the NAT gave the connection; null without. */
  nat: { address: string; port: number } | null;
  /** Seconds until the entry expires (new and update events). */
  timeoutS?: number;
}

export interface ConntrackEventsOptions {
  /** Which events (default new and destroy: updates are many, one per state change). */
  types?: ConntrackEventType[];
  /** The namespace to watch: a path such as /proc/PID/ns/net (default: this thread's). */
  netns?: string;
  /** Stop after this long (default 10 s, at most 1 hour). */
  durationMs?: number;
  /** Stop after this many events (default 100,000, at most 1,000,000). */
  maxEvents?: number;
  /** Socket receive buffer asked for, bytes (default 8 MiB; SO_RCVBUFFORCE as root). */
  receiveBufferBytes?: number;
  /** Read interval (default 20 ms). */
  pollMs?: number;
  /** Keep the events for the result (default true). */
  keep?: boolean;
  /** Remote callers: stream each event through emit (default true); 'subscribed' is always sent. */
  stream?: boolean;
  /** A name for stopConntrackEvents() (a remote caller stops a watch in its host by it). */
  id?: string;
  /** Only entries with this port in either tuple (filtered here: the kernel sends all). */
  port?: number;
}

export interface ConntrackEventsResult {
  /** The namespace's inode, the events sysctl there ("2": on while someone listens), the types. */
  netns: number;
  eventsSysctl: string | null;
  types: ConntrackEventType[];
  counts: Record<ConntrackEventType, number>;
  events: ConntrackEvent[];
  /** ENOBUFS reads: each says the kernel dropped one or more events (how many is unknown). */
  lost: { overruns: number };
  stoppedBy: 'duration' | 'count' | 'stop';
  startedMs: number;
  endedMs: number;
  /** The receive buffer the kernel granted (SO_RCVBUF, bytes). */
  receiveBufferBytes: number;
}

/** What a remote watch emits: 'subscribed' once (start the traffic then), then each event. */
export type ConntrackWatchEvent = ConntrackEvent | { kind: 'subscribed'; netns: number; startedMs: number };

export interface RunningConntrackEvents {
  readonly netns: number;
  readonly startedMs: number;
  readonly done: Promise<ConntrackEventsResult>;
  /** End now (idempotent): reads what is queued, then resolves like `done`. */
  stop(): Promise<ConntrackEventsResult>;
}

function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Check the options (UsageError naming the bad one) and fill in the defaults. */
export function planConntrackEvents(opts: ConntrackEventsOptions): Required<
  Omit<ConntrackEventsOptions, 'netns' | 'id' | 'port'>
> & {
  netns?: string;
  id?: string;
  port?: number;
} {
  const types = opts.types ?? ['new', 'destroy'];
  if (types.length === 0)
    throw new UsageError('conntrack events: no event type given (accepted: new, update, destroy)');
  for (const t of types) {
    if (!CONNTRACK_EVENT_TYPES.includes(t))
      throw new UsageError(`conntrack events: unknown type '${String(t)}' (accepted: new, update, destroy)`);
  }
  const durationMs = opts.durationMs ?? DEFAULT_WATCH_MS;
  if (!(durationMs > 0 && durationMs <= MAX_WATCH_MS))
    throw new UsageError(`conntrack events: duration ${durationMs} ms out of range (0, ${MAX_WATCH_MS}]`);
  const maxEvents = opts.maxEvents ?? DEFAULT_MAX_EVENTS;
  if (!(Number.isInteger(maxEvents) && maxEvents >= 1 && maxEvents <= MAX_EVENTS_LIMIT))
    throw new UsageError(`conntrack events: max events ${maxEvents} out of range 1-${MAX_EVENTS_LIMIT}`);
  const pollMs = opts.pollMs ?? DEFAULT_POLL_MS;
  if (!(pollMs >= 1 && pollMs <= 1000))
    throw new UsageError(`conntrack events: poll ${pollMs} ms out of range 1-1000`);
  return {
    types: [...new Set(types)],
    durationMs,
    maxEvents,
    receiveBufferBytes: opts.receiveBufferBytes ?? DEFAULT_RCVBUF,
    pollMs,
    keep: opts.keep ?? true,
    stream: opts.stream ?? true,
    netns: opts.netns,
    id: opts.id,
    port: opts.port,
  };
}

/** Open and subscribe (in `netns` when given). EPERM etc. become one RunError line. */
function subscribe(
  types: ConntrackEventType[],
  netns: string | undefined,
  rcvbuf: number,
): { sock: NetlinkSocket; inode: number; eventsSysctl: string | null; granted: number } {
  const open = (): { sock: NetlinkSocket; eventsSysctl: string | null; granted: number } => {
    const sock = openCtnetlink();
    try {
      sock.subscribe(types.reduce((m, t) => m | (1 << (GROUP[t] - 1)), 0));
      const granted = sock.setReceiveBuffer(rcvbuf);
      let eventsSysctl: string | null = null;
      try {
        eventsSysctl = readFileSync('/proc/sys/net/netfilter/nf_conntrack_events', 'utf8').trim();
      } catch {
        // nf_conntrack not loaded in this namespace (yet): no events until it is.
      }
      return { sock, eventsSysctl, granted };
    } catch (err) {
      sock.close();
      throw err;
    }
  };
  try {
    if (netns === undefined) return { ...open(), inode: currentNetnsInode() };
    return { ...withNetns(netns, open), inode: netnsInodeOf(netns) };
  } catch (err) {
    if (err instanceof SyscallError) {
      const where = netns ?? 'this network namespace';
      throw new RunError(
        `conntrack events in ${where}: ${err.message}` +
          (err.code === 'EPERM' ? ' (needs CAP_NET_ADMIN there)' : ''),
      );
    }
    throw err;
  }
}

/**
 * Decode the netlink messages of one datagram; returns the events (of the wanted types) in order.
 * Exported for tests.
 */
export function decodeDatagram(
  buf: Buffer,
  n: number,
  timeMs: number,
  wallOffsetMs: number,
  wanted: ReadonlySet<ConntrackEventType>,
): ConntrackEvent[] {
  const out: ConntrackEvent[] = [];
  for (let off = 0; off + NLMSG_HDRLEN <= n;) {
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > n) break;
    const t = buf.readUInt16LE(off + 4);
    const flags = buf.readUInt16LE(off + 6);
    if (t !== NLMSG_DONE && t !== NLMSG_ERROR && t !== NLMSG_NOOP && t >> 8 === NFNL_SUBSYS_CTNETLINK) {
      const msg = t & 0xff;
      const type: ConntrackEventType | undefined =
        msg === IPCTNL_MSG_CT_DELETE
          ? 'destroy'
          : msg === IPCTNL_MSG_CT_NEW
            ? flags & NLM_F_CREATE
              ? 'new'
              : 'update'
            : undefined;
      const e = type && wanted.has(type) ? entryAt(buf, off + NLMSG_HDRLEN, len - NLMSG_HDRLEN) : undefined;
      if (type && e) {
        out.push({
          kind: 'conntrack',
          type,
          timeMs,
          time: new Date(timeMs + wallOffsetMs).toISOString(),
          family: e.family,
          protocol: protocolName(e.protocol),
          state: e.state,
          orig: e.orig,
          reply: e.reply,
          nat: sourceNatOf(e),
          ...(type === 'destroy' ? {} : { timeoutS: e.timeoutS }),
        });
      }
    }
    off += (len + 3) & ~3;
  }
  return out;
}

function hasPort(e: ConntrackEvent, port: number): boolean {
  return e.orig.sport === port || e.orig.dport === port || e.reply.sport === port || e.reply.dport === port;
}

/**
 * Start watching; resolves once subscribed (start the traffic after that). `onEvent` gets each
 * event as read. Local use; a sandbox host is watched with watchConntrackEvents through remote().
 */
export function startConntrackEvents(
  options: ConntrackEventsOptions = {},
  onEvent?: (e: ConntrackEvent) => void,
): RunningConntrackEvents {
  const opts = planConntrackEvents(options);
  const wanted = new Set(opts.types);
  const { sock, inode, eventsSysctl, granted } = subscribe(opts.types, opts.netns, opts.receiveBufferBytes);
  const startedMs = nowMs();
  const wallOffsetMs = Date.now() - startedMs;
  const counts: Record<ConntrackEventType, number> = { new: 0, update: 0, destroy: 0 };
  const events: ConntrackEvent[] = [];
  let overruns = 0;
  let total = 0;
  let stoppedBy: ConntrackEventsResult['stoppedBy'] | undefined;
  const buf = Buffer.allocUnsafe(256 * 1024);
  const port = opts.port;

  let resolveDone!: (r: ConntrackEventsResult) => void;
  let rejectDone!: (e: unknown) => void;
  const done = new Promise<ConntrackEventsResult>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  let timer: NodeJS.Timeout | undefined;
  let finished = false;

  /** Read what is queued (bounded per call); false once the count bound is reached. */
  const drain = (): void => {
    for (let i = 0; i < MAX_DATAGRAMS_PER_POLL && total < opts.maxEvents; i++) {
      const n = sock.receiveNow(buf);
      if (n === -EAGAIN) return;
      if (n === -ENOBUFS) {
        overruns++;
        continue;
      }
      if (n < 0) throw new SyscallError('recv', -n, 'ctnetlink events');
      const t = nowMs();
      for (const ev of decodeDatagram(buf, n, t, wallOffsetMs, wanted)) {
        if (total >= opts.maxEvents) break;
        if (port !== undefined && !hasPort(ev, port)) continue;
        total++;
        counts[ev.type]++;
        if (opts.keep) events.push(ev);
        onEvent?.(ev);
      }
    }
    if (total >= opts.maxEvents) stoppedBy ??= 'count';
  };

  const finish = (why: ConntrackEventsResult['stoppedBy'], err?: unknown): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    stoppedBy ??= why;
    try {
      if (!err && stoppedBy !== 'count') drain(); // what was queued before the stop
    } catch (e) {
      err = e;
    }
    sock.close();
    if (err) rejectDone(err);
    else
      resolveDone({
        netns: inode,
        eventsSysctl,
        types: opts.types,
        counts,
        events,
        lost: { overruns },
        stoppedBy: stoppedBy,
        startedMs,
        endedMs: nowMs(),
        receiveBufferBytes: granted,
      });
  };

  const endAt = startedMs + opts.durationMs;
  const tick = (): void => {
    try {
      drain();
    } catch (err) {
      finish('stop', err);
      return;
    }
    if (stoppedBy === 'count') return finish('count');
    const left = endAt - nowMs();
    if (left <= 0) return finish('duration');
    timer = setTimeout(tick, Math.min(opts.pollMs, left));
  };
  timer = setTimeout(tick, opts.pollMs);

  return {
    netns: inode,
    startedMs,
    done,
    stop: () => {
      finish('stop');
      return done;
    },
  };
}

/** Watches started by watchConntrackEvents with an id, in this process. */
const running = new Map<string, RunningConntrackEvents>();

/**
 * Watch until a bound (or stopConntrackEvents(id)) and return the result: the form a sandbox host
 * runs through remote() (`remote(sb.router, CONNTRACK_EVENTS, onEvent).watchConntrackEvents(...)`).
 * `emit` gets `{ kind: 'subscribed' }` once subscribed, then each event (unless `stream: false`).
 */
export async function watchConntrackEvents(
  opts: ConntrackEventsOptions = {},
  emit?: (e: ConntrackWatchEvent) => void,
): Promise<ConntrackEventsResult> {
  const stream = opts.stream ?? true;
  if (opts.id !== undefined && running.has(opts.id))
    throw new UsageError(`conntrack events: a watch named '${opts.id}' is already running here`);
  const watch = startConntrackEvents(opts, stream ? emit : undefined);
  if (opts.id !== undefined) running.set(opts.id, watch);
  emit?.({ kind: 'subscribed', netns: watch.netns, startedMs: watch.startedMs });
  try {
    return await watch.done;
  } finally {
    if (opts.id !== undefined) running.delete(opts.id);
  }
}

/** Stop the watch named `id` in this process; false when there is none (already ended). */
export async function stopConntrackEvents(id: string): Promise<boolean> {
  const watch = running.get(id);
  if (!watch) return false;
  await watch.stop();
  return true;
}
