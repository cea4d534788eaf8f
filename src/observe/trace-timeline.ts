/**
 * The tracer's bookkeeping, without I/O: fed with parsed tracepoint events (state changes, failed
 * connect() returns) and with the results of minisocket look-ups, it returns the transitions,
 * connection timelines and failed connects they imply, and says when it wants the next look-up.
 * Time comes from an injected clock, so every race it settles (a look-up that sees an effect
 * before the trace event that explains it) can be replayed in a unit test. `startTrace`
 * (trace.ts) wires it to tracefs, sock_diag and timers.
 *
 * - TIME-WAIT: `sock:inet_sock_set_state` fires for full sockets only; a socket that closes
 *   first hands its last phase to a minisocket and reports FIN-WAIT-2 -> CLOSE (or CLOSING ->
 *   CLOSE). The builder then asks for look-ups of that 4-tuple, emits a synthetic `-> TIME-WAIT`
 *   transition (source "sock_diag", with the kernel's idiag_expires) once one finds it, and its
 *   end once it is gone: at its timer ("expired"), early (killed by a segment from the peer: RST
 *   assassination), or taken by a new connection ("reused").
 * - Failed connect(): a failed port allocation shows as CLOSE -> SYN-SENT with local port 0,
 *   straight followed by SYN-SENT -> CLOSE with local port 0; `syscalls:sys_exit_connect` in the
 *   same task carries the errno. Paired by pid, they give process, destination and errno.
 *
 * Each connection keeps what a per-process view needs: pid and task, netns (when the caller
 * knows it), role (client = connect() side, server = accept() side), whether it closed first
 * (each such close is a TIME-WAIT on this host), and its TIME-WAIT entry and end.
 *
 * Owner: a tracepoint reports whichever task was on the CPU. Only the transitions the kernel
 * makes inside a syscall of the socket's holder (IN_SYSCALL: connect(), listen(), close(),
 * shutdown()) name it; every other one may run in softirq, in the peer's task on loopback or in
 * ksoftirqd. So a connection belongs to the task of its connect(), an accepted one to its
 * listener's holder until its own close() names the process that really holds it, and the
 * rest is marked unknown. The same goes for the namespace an event's task is in (the caller's
 * `netns`): a hint that is exact only for IN_SYSCALL transitions; connections are found by
 * 4-tuple, and the hint only chooses between namespaces that share one.
 */
import { EINPROGRESS, errnoName } from '../sockets/errno.js';
import type { Endpoint } from './sockdiag.js';
import { canonicalAddress, tupleKey, type MinisocketFound, type TupleQuery } from './trace-diag.js';

/** One state change of one socket. */
export interface Transition {
  kind: 'transition';
  /** CLOCK_MONOTONIC ms (same clock as process.hrtime). */
  timeMs: number;
  /** Wall-clock time of the same instant. */
  time: string;
  /** The connection's owner as known at this event (see ConnectionTimeline.pidFrom); 0 and "?" if unknown. */
  pid: number;
  task: string;
  /** Network namespace inode of the socket, when known. */
  netns?: number;
  family: 4 | 6;
  local: Endpoint;
  remote: Endpoint;
  oldState: string;
  newState: string;
  /** How long the socket was in oldState, when its entry was seen in this trace. */
  inOldStateMs?: number;
  /** "tracepoint" (sock:inet_sock_set_state) or "sock_diag" (a minisocket phase looked up). */
  source: 'tracepoint' | 'sock_diag';
  /** For sock_diag transitions into TIME-WAIT: the kernel's idiag_expires when first seen. */
  expiresMs?: number;
  /** For the end of TIME-WAIT: why it ended, and when its timer said it would. */
  endReason?: TimeWaitEnd;
  expectedEndMs?: number;
  note?: string;
}

/** How a TIME-WAIT phase ended. */
export type TimeWaitEnd = 'expired' | 'early' | 'reused' | 'trace-ended';

/** A connect() that failed, with what the process asked for. */
export interface FailedConnect {
  kind: 'connect-failed';
  timeMs: number;
  time: string;
  /** errno name and number from sys_exit_connect; null when that event is not available. */
  errno: string | null;
  code: number | null;
  pid: number;
  task: string;
  family: 4 | 6;
  remote: Endpoint;
  /** 0 when no local port could be allocated (EADDRNOTAVAIL). */
  localPort: number;
  /** Network namespace inode, when the events fed in carried one. */
  netns?: number;
}

/** One phase of a connection's life. */
export interface Phase {
  state: string;
  /** Entry time; undefined when the trace started while the socket was already in this state. */
  startMs?: number;
  endMs?: number;
  durationMs?: number;
  source: 'tracepoint' | 'sock_diag';
}

/** A connection's whole timeline, reported once it is over (or when the trace ends). */
export interface ConnectionTimeline {
  kind: 'connection';
  family: 4 | 6;
  local: Endpoint;
  remote: Endpoint;
  /** client: seen from SYN-SENT (connect()); server: from SYN-RECV (accept()); unknown: was open before the trace. */
  role: 'client' | 'server' | 'unknown';
  /** The process holding the socket (0 and "?" when unknown), and how that is known (see PidFrom). */
  pid: number;
  task: string;
  pidFrom: PidFrom;
  /** Network namespace inode, when the events fed in carried one. */
  netns?: number;
  phases: Phase[];
  /** Whether this side closed first (it went through FIN-WAIT-1): the active close. */
  closedFirst: boolean;
  /** The TIME-WAIT phase, when this side had one. */
  timeWait?: {
    enteredMs: number;
    /** idiag_expires when first seen, and the end time it implies. */
    expiresMs: number;
    expectedEndMs: number;
    /** When it was seen gone (within one poll interval), or undefined if still there at trace end. */
    endedMs?: number;
    endReason: TimeWaitEnd;
  };
  /** Whether the connection was still going when the trace ended. */
  complete: boolean;
  /** Why the timeline has no TIME-WAIT phase although this side closed into a minisocket. */
  note?: string;
}

export type TraceEvent = Transition | FailedConnect | ConnectionTimeline;

/**
 * How a connection's pid is known. syscall: a connect(), close() or shutdown() of it ran in that
 * task. listener: accepted, and its listener is held by that task (a pre-forked server may
 * accept in another process: its close() corrects it). unknown: open before the trace, or its
 * listener's holder was not found.
 */
export type PidFrom = 'syscall' | 'listener' | 'unknown';

/** Who holds a listening socket. */
export interface ListenerOwner {
  pid: number;
  task: string;
  netns?: number;
}

/**
 * A parsed `sock:inet_sock_set_state` event; states in ss's names (ESTAB, FIN-WAIT-1, CLOSE, ...).
 * pid: the process (tgid) of the task it ran in; netns: that task's namespace (a hint, see above).
 */
export interface StateChange extends TupleQuery {
  timeMs: number;
  /**
   * The socket's identity while it lives (the event's skaddr): events of one socket share it
   * whatever task they ran in, so it ties a softirq event (whose netns is a hint) to the
   * connection its syscall events placed in the right namespace. Reused once the socket is freed.
   * A number: the address's low 53 bits (kernel addresses differ there on any real machine).
   */
  sk?: number;
  pid: number;
  /** The thread, when it differs from pid: a connect() and its return pair by thread. */
  tid?: number;
  task: string;
  oldState: string;
  newState: string;
}

/** A parsed `syscalls:sys_exit_connect` event: the thread and connect()'s return value. */
export interface ConnectReturn {
  timeMs: number;
  /** The thread that called connect() (its attempt's SYN-SENT ran in it). */
  tid: number;
  ret: number;
}

export interface TimelineOptions {
  /** CLOCK_MONOTONIC ms, the clock of the events' timeMs. */
  now: () => number;
  /** Date.now() minus now() at the same instant, for the ISO `time` fields (default 0). */
  wallOffsetMs?: number;
  /** Periodic look-up interval while minisockets are watched (default 200 ms). */
  pollMs?: number;
  /** Whether failed connect() returns are fed in; without them failures are reported without errno. */
  connectErrnos?: boolean;
  /**
   * Who holds a listening socket that was open before the trace (no listen() seen), asked once
   * per listener: its address and port as an accepted connection shows them, and the netns hint.
   */
  listenerOwner?: (local: Endpoint, netns: number | undefined) => ListenerOwner | undefined;
  /**
   * 'all' (default): each timeline keeps its phases. 'last': only the current one (a caller that
   * reads no timeline, such as top's counter: tens of thousands of connections watched in
   * TIME-WAIT keep a phase object per state change alive otherwise).
   */
  phases?: 'all' | 'last';
}

/** A look-up the builder asked for: pass `queries` to a MinisocketLookup, its answer to endLookup(). */
export interface LookupRound {
  readonly queries: TupleQuery[];
  /** now() when it was begun. */
  readonly askedMs: number;
}

/** Bound on connections (and connecting pids) followed at once. */
const MAX_OPEN = 50_000;
/**
 * How long the minisocket logic waits for a trace event that explains what a lookup saw (a
 * reusing connect(), the peer's FIN): 3 trace_pipe polls.
 */
export const REUSE_GRACE_MS = 150;
/** Delay of a look-up asked for by an event, so that a burst of events shares one dump. */
const KICK_DELAY_MS = 3;

/** Waiting for its minisocket: the close time and the state it closed from. */
interface Waiting {
  closeMs: number;
  fromState: string;
  /** A look-up found it as an orphaned FIN-WAIT-2 minisocket. */
  seen: boolean;
  /** First lookup that found a TIME-WAIT gone before its timer (classified one poll later). */
  goneEarlyMs?: number;
  /** First lookup that found it in TIME-WAIT, and the timer it reported then. */
  firstTw?: { atMs: number; expiresMs: number; expectedEndMs: number };
}

interface Conn {
  timeline: ConnectionTimeline;
  /** tupleKey(timeline), which never changes, and whether it is in `conns` (open). */
  key: string;
  open: boolean;
  tw?: Waiting;
  /** The socket's skaddr while the full socket lives (see StateChange.sk). */
  sk?: number;
}

interface Attempt {
  pid: number;
  /** The thread that called connect() (tid, else pid): its return comes in the same thread. */
  thread: number;
  task: string;
  family: 4 | 6;
  remote: Endpoint;
  netns?: number;
  /** 0 unless the socket was bound before connect(). */
  localPort: number;
  timeMs: number;
  /** Its SYN-SENT -> CLOSE was seen, with this local port. */
  failedPort?: number;
  paired: boolean;
  sk?: number;
}

interface KeyMemo {
  local: Endpoint | undefined;
  remote: Endpoint | undefined;
  family: 4 | 6;
  key: string;
}

/** The same 4-tuple seen from the other end (the peer socket, on loopback or in the same namespace). */
function reversed(t: TupleQuery): TupleQuery {
  return { family: t.family, local: t.remote, remote: t.local, netns: t.netns };
}

/**
 * Transitions made inside a syscall of the socket's holder, in its task (see the file comment):
 * CLOSE>SYN-SENT, CLOSE>LISTEN, LISTEN>CLOSE, ESTAB>FIN-WAIT-1, CLOSE-WAIT>LAST-ACK.
 */
export function inSyscall(oldState: string, newState: string): boolean {
  // Per event: compared, not looked up by a built 'old>new'.
  switch (oldState) {
    case 'CLOSE':
      return newState === 'SYN-SENT' || newState === 'LISTEN';
    case 'LISTEN':
      return newState === 'CLOSE';
    case 'ESTAB':
      return newState === 'FIN-WAIT-1';
    case 'CLOSE-WAIT':
      return newState === 'LAST-ACK';
    default:
      return false;
  }
}

/** Listener map keys: its address and port; an accepted connection also matches the wildcard's. */
function listenerKeys(local: Endpoint): string[] {
  const port = local.port;
  return [`${canonicalAddress(local.address)}|${port}`, `0.0.0.0|${port}`, `${ANY6}|${port}`];
}

/** '::' as canonicalAddress spells it (expanded once, not per accepted connection). */
const ANY6 = canonicalAddress('::');

export class TimelineBuilder {
  /** Open connections by 4-tuple; more than one only where namespaces share a 4-tuple. */
  private readonly conns = new Map<string, Conn[]>();
  /** Open connections by their socket's skaddr (StateChange.sk), while the full socket lives. */
  private readonly bySk = new Map<number, Conn>();
  private isoMs = NaN;
  private isoText = '';
  /** Open connections with a minisocket phase to look up (conn.tw set). */
  private readonly watched = new Set<Conn>();
  private openCount = 0;
  /** How many watched connections have each local port. */
  private readonly watchedPorts = new Map<number, number>();
  /** Listening sockets seen (listen() traced, or asked of opts.listenerOwner), by address|port. */
  private readonly listeners = new Map<string, ListenerOwner[]>();
  private readonly attempts: Attempt[] = [];
  private readonly lastAttemptByThread = new Map<number, Attempt>();
  /** sys_exit_connect failures that arrived before their attempt's SYN-SENT -> CLOSE. */
  private readonly earlyExits = new Map<number, { code: number; timeMs: number }>();
  /** When each 4-tuple sent its FIN from CLOSE-WAIT (entered LAST-ACK). */
  private readonly finSent = new Map<string, number>();
  private out: TraceEvent[] = [];
  private readonly keyMemo: KeyMemo = { local: undefined, remote: undefined, family: 4, key: '' };
  private readonly reversedMemo: KeyMemo = { local: undefined, remote: undefined, family: 4, key: '' };
  private readonly now: () => number;
  private readonly pollMs: number;
  // Look-up schedule: every pollMs, and KICK_DELAY_MS after an event that creates or changes a
  // watched minisocket. A dump costs time proportional to the whole table (tens of ms at 100k
  // TIME-WAIT sockets), so dumps are spaced by at least twice the last one's cost (and 20 ms).
  private tickAt: number;
  private kickAt: number | undefined;
  private lastLookupMs = -Infinity;
  private lastCostMs = 0;
  private inFlight: { round: LookupRound; waiting: Conn[] } | undefined;

  constructor(private readonly opts: TimelineOptions) {
    this.now = opts.now;
    this.pollMs = opts.pollMs ?? 200;
    this.tickAt = this.now() + this.pollMs;
  }

  /** Feed one state change; returns what it produced, in order. */
  stateChange(ev: StateChange): TraceEvent[] {
    const { local, oldState, newState, timeMs } = ev;
    const minisocket = newState === 'CLOSE' && (oldState === 'FIN-WAIT-2' || oldState === 'CLOSING');
    let inOldStateMs: number | undefined;
    let note: string | undefined;
    // A failed port allocation (SYN-SENT -> CLOSE, local port 0) happens inside connect() too.
    const syscall =
      inSyscall(oldState, newState) || (oldState === 'SYN-SENT' && newState === 'CLOSE' && local.port === 0);
    let conn: Conn | undefined;
    // A socket starting its life: whatever connection had its address before is gone.
    if (oldState === 'CLOSE' && ev.sk !== undefined) this.bySk.delete(ev.sk);
    if (oldState === 'CLOSE' && newState === 'SYN-SENT') {
      this.connectStarted(ev);
    } else if (oldState === 'CLOSE' && newState === 'LISTEN') {
      this.listenerOpened(ev);
    } else if (oldState === 'LISTEN' && newState === 'CLOSE') {
      this.listenerClosed(ev);
    } else if (oldState === 'LISTEN' && newState === 'SYN-RECV') {
      const holder = this.listenerOf(ev);
      conn = this.startConn(
        { ...ev, netns: holder?.netns ?? ev.netns },
        'server',
        holder ?? { pid: 0, task: '?' },
        holder ? 'listener' : 'unknown',
        'SYN-RECV',
        timeMs,
      );
      if (ev.sk !== undefined) this.bind(conn, ev.sk);
    } else if (oldState !== 'LISTEN' && newState !== 'LISTEN') {
      if (oldState === 'SYN-SENT') note = this.connectEnded(ev);
      if (newState === 'LAST-ACK') {
        // The peer of this socket gets our FIN now: when it is a FIN-WAIT-2 minisocket, this is
        // the instant it enters TIME-WAIT.
        this.finSent.set(this.key(ev), timeMs);
        if (this.finSent.size > 10_000) this.finSent.delete(this.finSent.keys().next().value!);
      }
      if (local.port !== 0) {
        const same = this.sameSocket(ev);
        conn = same ?? this.find(ev);
        // A syscall in another namespace than this connection's: another socket on the same 4-tuple.
        if (!same && conn && syscall && ev.netns !== undefined && conn.timeline.netns !== undefined) {
          if (conn.timeline.netns !== ev.netns) conn = this.findExact(ev);
        }
        if (conn?.tw) {
          this.retireForReuse(conn.timeline, timeMs);
          conn = undefined;
        }
        conn ??= syscall
          ? this.startConn(ev, 'unknown', ev, 'syscall', oldState, undefined)
          : this.startConn(ev, 'unknown', { pid: 0, task: '?' }, 'unknown', oldState, undefined);
        if (syscall) {
          // close()/shutdown() runs in the task that holds the socket: the owner from now on.
          const t = conn.timeline;
          t.pid = ev.pid;
          t.task = ev.task;
          t.pidFrom = 'syscall';
          conn.timeline.netns = ev.netns ?? conn.timeline.netns;
          if (ev.sk !== undefined) this.bind(conn, ev.sk);
        }
        if (minisocket) {
          const last = conn.timeline.phases[conn.timeline.phases.length - 1];
          if (last?.startMs !== undefined) inOldStateMs = Math.max(0, timeMs - last.startMs);
        } else {
          inOldStateMs = this.enter(conn, newState, timeMs, 'tracepoint');
        }
        if (oldState === 'FIN-WAIT-1' || newState === 'FIN-WAIT-1') conn.timeline.closedFirst = true;
      }
    }
    if (minisocket) note = 'handed to a minisocket: looking for its TIME-WAIT phase';
    // Without a connection (listeners, connect() attempts) only syscall transitions name a task.
    const who = conn?.timeline ?? (syscall ? ev : { pid: 0, task: '?', netns: undefined });
    this.emit({
      kind: 'transition',
      timeMs,
      time: this.iso(timeMs),
      pid: who.pid,
      task: who.task,
      netns: who.netns,
      family: ev.family,
      local,
      remote: ev.remote,
      oldState,
      newState,
      inOldStateMs,
      source: 'tracepoint',
      note,
    });
    if (conn && newState === 'CLOSE') {
      this.unbind(conn);
      if (minisocket) {
        conn.tw = { closeMs: timeMs, fromState: oldState, seen: false };
        this.watch(conn);
        this.kick();
      } else {
        this.finish(conn);
      }
    }
    // A segment for a 4-tuple whose minisocket we watch may change it: our FIN makes a FIN-WAIT-2
    // minisocket enter TIME-WAIT, a new SYN or an RST can end its TIME-WAIT early. Look now.
    // (Only a watched connection has a minisocket: skip the key where none has this local port.)
    if (this.watchedPorts.has(ev.remote.port) && this.findIn(this.reversedKey(ev), ev.netns)?.tw) {
      this.kick();
    }
    return this.take();
  }

  /** Feed one connect() return (only failures other than EINPROGRESS matter). */
  connectReturn(ev: ConnectReturn): TraceEvent[] {
    if (ev.ret >= 0 || -ev.ret === EINPROGRESS) return [];
    const thread = ev.tid;
    const a = this.lastAttemptByThread.get(thread);
    if (a && !a.paired && a.failedPort !== undefined) this.pairFailure(a, -ev.ret, ev.timeMs);
    else if (a && !a.paired) this.earlyExits.set(thread, { code: -ev.ret, timeMs: ev.timeMs });
    // Otherwise a connect() we do not watch (another port, UDP, unix): ignore it.
    return this.take();
  }

  /**
   * When the next look-up should begin (now() ms), or undefined while one is in flight. A timer
   * that fires calls beginLookup(), which may find nothing to look up.
   */
  nextLookupAt(): number | undefined {
    if (this.inFlight) return undefined;
    const due = Math.min(this.kickAt ?? Infinity, this.tickAt);
    return Math.max(due, this.lastLookupMs + Math.max(20, 2 * this.lastCostMs));
  }

  /** Begin a look-up of every watched minisocket; undefined when none is watched. */
  beginLookup(): LookupRound | undefined {
    if (this.inFlight) throw new Error('a minisocket look-up is already in flight');
    const askedMs = this.now();
    this.kickAt = undefined;
    this.tickAt = askedMs + this.pollMs;
    this.lastLookupMs = askedMs;
    const waiting = [...this.watched].filter((c) => c.tw);
    if (waiting.length === 0) {
      this.lastCostMs = 0;
      return undefined;
    }
    const queries = waiting.map(({ timeline: t }) => ({
      family: t.family,
      local: t.local,
      remote: t.remote,
      netns: t.netns,
    }));
    const round = { queries, askedMs };
    this.inFlight = { round, waiting };
    return round;
  }

  /**
   * The minisockets the look-up found (those queried and not found are gone). Events fed while it
   * was in flight count: a connection replaced meanwhile is left alone. `final` (the trace ends):
   * nothing waits for a later event any more.
   */
  endLookup(round: LookupRound, found: MinisocketFound[], final = false): TraceEvent[] {
    if (this.inFlight?.round !== round) throw new Error('endLookup: not the look-up in flight');
    const { waiting } = this.inFlight;
    this.inFlight = undefined;
    const asked = round.askedMs;
    const seenAt = this.now();
    const answers = this.answersOf(waiting, found);
    for (let i = 0; i < waiting.length; i++) {
      const conn = waiting[i]!;
      const tw = conn.tw;
      if (!tw || !conn.open) continue;
      const m = answers[i];
      if (m && m.state === 'TIME-WAIT') {
        if (!conn.timeline.timeWait) {
          tw.firstTw ??= { atMs: asked, expiresMs: m.expiresMs, expectedEndMs: seenAt + m.expiresMs };
          const graceLeft = asked - tw.firstTw.atMs < REUSE_GRACE_MS;
          // The peer's FIN event may still be on its way through trace_pipe: after an orphaned
          // FIN-WAIT-2, or, seen straight in TIME-WAIT after a FIN-WAIT-2 close (not CLOSING,
          // which had the FIN), when no FIN of the peer was traced yet (a loaded reader can be
          // behind the look-up by more than the close-to-FIN time).
          const finAwaited =
            tw.seen ||
            (tw.fromState === 'FIN-WAIT-2' &&
              this.finSent.get(this.reversedKey(conn.timeline)) === undefined);
          if (finAwaited && !this.peerFinAfterClose(conn, tw) && !final && graceLeft) continue;
          this.enterTimeWait(conn, tw);
        }
        if (final) this.endTimeWait(conn, seenAt, 'trace-ended');
      } else if (m) {
        tw.seen = true; // orphaned FIN-WAIT-2 minisocket: wait for the peer's FIN
        if (final) this.finish(conn, false);
      } else {
        // Seen in TIME-WAIT but gone while we waited for the peer's FIN event: it still had one.
        if (!conn.timeline.timeWait && tw.firstTw) this.enterTimeWait(conn, tw);
        if (conn.timeline.timeWait) this.endGone(conn, tw, asked, final);
        else this.noTimeWait(conn, tw, asked);
      }
    }
    this.lastCostMs = this.now() - asked;
    return this.take();
  }

  /**
   * The look-up's answer for each waiting connection: the minisocket found on its 4-tuple in its
   * namespace (a look-up answers in the namespace of each query and echoes its netns; a namespace
   * holds a 4-tuple once). In-process look-ups answer with the queries' own endpoint objects, so a
   * round of tens of thousands is matched by identity, without a string key per connection; keys
   * are built only where identity cannot decide (copies from another process, a 4-tuple shared).
   */
  private answersOf(waiting: Conn[], found: MinisocketFound[]): (MinisocketFound | undefined)[] {
    const byLocal = new Map<Endpoint, MinisocketFound>();
    for (const m of found) byLocal.set(m.local, m);
    const answers: (MinisocketFound | undefined)[] = new Array(waiting.length);
    const claimed = new Set<MinisocketFound>();
    const open: boolean[] = new Array(waiting.length);
    for (let i = 0; i < waiting.length; i++) {
      const conn = waiting[i]!;
      const t = conn.timeline;
      open[i] = conn.open && conn.tw !== undefined;
      if (!open[i]) continue;
      const m = byLocal.get(t.local);
      const alone = (this.conns.get(conn.key)?.length ?? 0) <= 1;
      if (m && alone && m.remote === t.remote && m.family === t.family && m.netns === t.netns) {
        answers[i] = m;
        claimed.add(m);
      }
    }
    let byKey: Map<string, MinisocketFound> | undefined;
    for (let i = 0; i < waiting.length; i++) {
      if (!open[i] || answers[i]) continue;
      const conn = waiting[i]!;
      // Every answer is some other connection's: none is this one's, unless its 4-tuple is shared.
      if (claimed.size === found.length && (this.conns.get(conn.key)?.length ?? 0) <= 1) continue;
      byKey ??= new Map(found.map((m) => [`${tupleKey(m)}|${m.netns}`, m]));
      answers[i] = byKey.get(`${conn.key}|${conn.timeline.netns}`);
    }
    return answers;
  }

  /** The trace is over: report what is still open, unfinished. Call after the final look-up. */
  end(): TraceEvent[] {
    // Attempts whose failure had no syscall exit (sys_exit_connect missing): report them without errno.
    for (const a of this.lastAttemptByThread.values()) {
      if (!a.paired && a.failedPort === 0 && !this.opts.connectErrnos) this.pairFailure(a, null, a.timeMs);
    }
    for (const conn of this.all()) this.finish(conn, false);
    return this.take();
  }

  private emit(ev: TraceEvent): void {
    this.out.push(ev);
  }

  private take(): TraceEvent[] {
    const out = this.out;
    this.out = [];
    return out;
  }

  private iso(ms: number): string {
    // Events come many to a millisecond: format each millisecond once (Date keeps whole ms).
    const t = Math.floor(ms + (this.opts.wallOffsetMs ?? 0));
    if (t !== this.isoMs) {
      this.isoMs = t;
      this.isoText = new Date(t).toISOString();
    }
    return this.isoText;
  }

  private kick(): void {
    this.kickAt ??= this.now() + KICK_DELAY_MS;
  }

  /** CLOSE -> SYN-SENT: connect() starts; an unbound socket's local port is chosen just after. */
  private connectStarted(ev: StateChange): void {
    const thread = ev.tid ?? ev.pid;
    const a: Attempt = {
      pid: ev.pid,
      thread,
      task: ev.task,
      family: ev.family,
      remote: ev.remote,
      localPort: ev.local.port,
      timeMs: ev.timeMs,
      paired: false,
      netns: ev.netns,
      sk: ev.sk,
    };
    this.attempts.push(a);
    if (this.attempts.length > 1000) this.attempts.shift();
    // A failed connect() the thread made before this one (a unix socket's, say) is not its errno.
    this.earlyExits.delete(thread);
    this.lastAttemptByThread.delete(thread);
    this.lastAttemptByThread.set(thread, a);
    if (this.lastAttemptByThread.size > MAX_OPEN) {
      this.lastAttemptByThread.delete(this.lastAttemptByThread.keys().next().value!);
    }
    if (ev.local.port !== 0) this.startConn(ev, 'client', ev, 'syscall', 'SYN-SENT', ev.timeMs);
  }

  /** SYN-SENT -> anything: match the attempt; a failure may pair with its errno. Returns a note. */
  private connectEnded(ev: StateChange): string | undefined {
    const { family, local, remote } = ev;
    const matches = (a: Attempt): boolean =>
      a.family === family &&
      a.remote.port === remote.port &&
      a.remote.address === remote.address &&
      (a.localPort === 0 || a.localPort === local.port);
    // The same socket is exact; the event's namespace is a hint (softirq): it only prefers one of
    // several matching attempts.
    let i = ev.sk === undefined ? -1 : this.attempts.findIndex((a) => matches(a) && a.sk === ev.sk);
    if (i < 0) i = this.attempts.findIndex((a) => matches(a) && a.netns === ev.netns);
    if (i < 0) i = this.attempts.findIndex(matches);
    const a = i >= 0 ? this.attempts.splice(i, 1)[0] : undefined;
    if (!a) return undefined;
    const existing = this.findExact({ ...ev, netns: a.netns });
    if (local.port !== 0 && (!existing || existing.tw)) {
      this.startConn({ ...ev, netns: a.netns }, 'client', a, 'syscall', 'SYN-SENT', a.timeMs);
    } else if (existing && ev.sk !== undefined) this.bind(existing, ev.sk);
    if (ev.newState !== 'CLOSE') {
      // Connected: no errno is to come for it, so the thread's next failed connect() of another
      // socket (before its next attempt) must not wait to be paired with this one's successor.
      if (this.lastAttemptByThread.get(a.thread) === a) this.lastAttemptByThread.delete(a.thread);
      return undefined;
    }
    a.failedPort = local.port;
    const early = this.earlyExits.get(a.thread);
    if (early && this.lastAttemptByThread.get(a.thread) === a) {
      this.earlyExits.delete(a.thread);
      this.pairFailure(a, early.code, early.timeMs);
    }
    return local.port === 0 ? 'connect() found no free local port' : undefined;
  }

  private pairFailure(a: Attempt, code: number | null, timeMs: number): void {
    a.paired = true;
    this.emit({
      kind: 'connect-failed',
      timeMs,
      time: this.iso(timeMs),
      errno: code === null ? null : errnoName(code),
      code,
      pid: a.pid,
      task: a.task,
      family: a.family,
      remote: a.remote,
      localPort: a.failedPort ?? 0,
      netns: a.netns,
    });
  }

  private startConn(
    tuple: TupleQuery,
    role: ConnectionTimeline['role'],
    who: { pid: number; task: string },
    pidFrom: PidFrom,
    firstState: string,
    firstMs: number | undefined,
  ): Conn {
    const old = this.findExact(tuple);
    if (old) this.retireForReuse(old.timeline, firstMs ?? this.now());
    const conn: Conn = {
      key: this.key(tuple),
      open: false,
      timeline: {
        kind: 'connection',
        family: tuple.family,
        local: tuple.local,
        remote: tuple.remote,
        role,
        pid: who.pid,
        task: who.task,
        pidFrom,
        netns: tuple.netns,
        phases: [{ state: firstState, startMs: firstMs, source: 'tracepoint' }],
        closedFirst: false,
        complete: false,
      },
    };
    this.put(conn);
    const sk = (tuple as { sk?: number }).sk;
    if (sk !== undefined) this.bind(conn, sk);
    // Bounded memory on a busy host: the oldest open connection is reported unfinished.
    if (this.openCount > MAX_OPEN) this.finish(this.conns.values().next().value![0]!, false);
    return conn;
  }

  /** The open connection on this 4-tuple; among several (namespaces), the one in t.netns, else the newest. */
  private find(t: TupleQuery): Conn | undefined {
    return this.findIn(this.key(t), t.netns);
  }

  private findIn(key: string, netns: number | undefined): Conn | undefined {
    const list = this.conns.get(key);
    if (!list) return undefined;
    for (const c of list) if (c.timeline.netns === netns) return c;
    return list[list.length - 1];
  }

  /**
   * tupleKey(t), remembered for the last endpoints asked about: one event asks several times
   * (its connection, the reuse check, the peer), through copies that share its endpoint objects.
   */
  private key(t: TupleQuery): string {
    const m = this.keyMemo;
    if (m.local !== t.local || m.remote !== t.remote || m.family !== t.family) {
      m.local = t.local;
      m.remote = t.remote;
      m.family = t.family;
      m.key = tupleKey(t);
    }
    return m.key;
  }

  /** tupleKey of the same 4-tuple seen from the other end (the peer socket). */
  private reversedKey(t: TupleQuery): string {
    const m = this.reversedMemo;
    if (m.local !== t.local || m.remote !== t.remote || m.family !== t.family) {
      m.local = t.local;
      m.remote = t.remote;
      m.family = t.family;
      m.key = tupleKey(reversed(t));
    }
    return m.key;
  }

  /** The open connection on this 4-tuple in exactly t.netns. */
  private findExact(t: TupleQuery): Conn | undefined {
    return this.conns.get(this.key(t))?.find((c) => c.timeline.netns === t.netns);
  }

  private holds(conn: Conn): boolean {
    return conn.open;
  }

  private put(conn: Conn): void {
    const key = conn.key;
    conn.open = true;
    const list = this.conns.get(key);
    if (list) list.push(conn);
    else this.conns.set(key, [conn]);
    this.openCount++;
  }

  /** The open connection of the event's socket (skaddr), when known and on the same 4-tuple. */
  private sameSocket(ev: StateChange): Conn | undefined {
    const conn = ev.sk === undefined ? undefined : this.bySk.get(ev.sk);
    if (!conn?.open) return undefined;
    const t = conn.timeline;
    const same =
      t.local.port === ev.local.port &&
      t.remote.port === ev.remote.port &&
      t.family === ev.family &&
      t.local.address === ev.local.address &&
      t.remote.address === ev.remote.address;
    return same ? conn : undefined;
  }

  private bind(conn: Conn, sk: number): void {
    if (conn.sk !== undefined && conn.sk !== sk && this.bySk.get(conn.sk) === conn) this.bySk.delete(conn.sk);
    conn.sk = sk;
    this.bySk.set(sk, conn);
  }

  private unbind(conn: Conn): void {
    if (conn.sk !== undefined && this.bySk.get(conn.sk) === conn) this.bySk.delete(conn.sk);
    conn.sk = undefined;
  }

  private watch(conn: Conn): void {
    if (this.watched.has(conn)) return;
    this.watched.add(conn);
    const port = conn.timeline.local.port;
    this.watchedPorts.set(port, (this.watchedPorts.get(port) ?? 0) + 1);
  }

  private drop(conn: Conn): void {
    this.unbind(conn);
    if (this.watched.delete(conn)) {
      const port = conn.timeline.local.port;
      const n = this.watchedPorts.get(port)! - 1;
      if (n > 0) this.watchedPorts.set(port, n);
      else this.watchedPorts.delete(port);
    }
    conn.open = false;
    const key = conn.key;
    const list = this.conns.get(key);
    const i = list?.indexOf(conn) ?? -1;
    if (!list || i < 0) return;
    list.splice(i, 1);
    if (list.length === 0) this.conns.delete(key);
    this.openCount--;
  }

  private all(): Conn[] {
    return [...this.conns.values()].flat();
  }

  /** listen() ran in the task that holds the socket. */
  private listenerOpened(ev: StateChange): void {
    const key = listenerKeys(ev.local)[0]!;
    const list = (this.listeners.get(key) ?? []).filter((l) => l.netns !== ev.netns);
    list.push({ pid: ev.pid, task: ev.task, netns: ev.netns });
    this.listeners.set(key, list);
    if (this.listeners.size > MAX_OPEN) this.listeners.delete(this.listeners.keys().next().value!);
  }

  private listenerClosed(ev: StateChange): void {
    const key = listenerKeys(ev.local)[0]!;
    const list = this.listeners.get(key)?.filter((l) => l.netns !== ev.netns);
    if (list?.length) this.listeners.set(key, list);
    else this.listeners.delete(key);
  }

  /** The holder of the listener an accepted connection came from; asked of opts once per listener. */
  private listenerOf(ev: StateChange): ListenerOwner | undefined {
    const found = listenerKeys(ev.local).flatMap((k) => this.listeners.get(k) ?? []);
    const known = found.filter((l) => l.pid > 0);
    const holder = known.find((l) => l.netns === ev.netns) ?? known[0];
    if (holder || found.length > 0 || !this.opts.listenerOwner) return holder;
    const asked = this.opts.listenerOwner(ev.local, ev.netns);
    // Remembered, found or not (pid 0), so a busy listener is asked about once.
    const entry = asked ?? { pid: 0, task: '?', netns: ev.netns };
    this.listeners.set(listenerKeys(ev.local)[0]!, [entry]);
    return asked;
  }

  /** A new connection on a 4-tuple still in TIME-WAIT took its place (tw_reuse or SYN to a TW). */
  private retireForReuse(tuple: TupleQuery, timeMs: number): void {
    const old = this.findExact(tuple);
    if (!old?.tw) return;
    if (!old.timeline.timeWait && old.tw.firstTw) this.enterTimeWait(old, old.tw);
    if (old.timeline.timeWait) {
      this.endTimeWait(old, timeMs, 'reused', 'a new connection took over this 4-tuple');
    } else {
      this.finish(old);
    }
  }

  private finish(conn: Conn, complete = true): void {
    this.drop(conn);
    conn.timeline.complete = complete;
    this.emit(conn.timeline);
  }

  /** Start a phase; returns how long the previous one lasted, when its start is known. */
  private enter(conn: Conn, state: string, timeMs: number, source: Phase['source']): number | undefined {
    const phases = conn.timeline.phases;
    const last = phases[phases.length - 1];
    let inOld: number | undefined;
    if (last) {
      last.endMs = timeMs;
      if (last.startMs !== undefined) last.durationMs = inOld = Math.max(0, timeMs - last.startMs);
    }
    const phase: Phase = { state, startMs: timeMs, source };
    if (this.opts.phases === 'last' && last) phases[phases.length - 1] = phase;
    else phases.push(phase);
    return inOld;
  }

  /** When the peer's FIN (its CLOSE-WAIT -> LAST-ACK) was traced after our close, if it was. */
  private peerFinAfterClose(conn: Conn, tw: Waiting): number | undefined {
    const fin = this.finSent.get(this.reversedKey(conn.timeline));
    return fin !== undefined && fin >= tw.closeMs ? fin : undefined;
  }

  /**
   * Emit the TIME-WAIT entry. A socket closed on the peer's FIN entered TIME-WAIT at its own close
   * event; one that closed first and was orphaned waited as a FIN-WAIT-2 minisocket until the
   * peer's FIN, when that was traced. Without it, the entry lies between the last lookup that saw
   * FIN-WAIT-2 and the first that saw TIME-WAIT; the later bound is reported.
   */
  private enterTimeWait(conn: Conn, tw: Waiting): void {
    const first = tw.firstTw!;
    const enteredMs = this.peerFinAfterClose(conn, tw) ?? (tw.seen ? first.atMs : tw.closeMs);
    const { expiresMs, expectedEndMs } = first;
    const t = conn.timeline;
    t.timeWait = { enteredMs, expiresMs, expectedEndMs, endReason: 'trace-ended' };
    const inOld = this.enter(conn, 'TIME-WAIT', enteredMs, 'sock_diag');
    this.emit({
      kind: 'transition',
      timeMs: enteredMs,
      time: this.iso(enteredMs),
      pid: t.pid,
      task: t.task,
      netns: t.netns,
      family: t.family,
      local: t.local,
      remote: t.remote,
      oldState: tw.fromState,
      newState: 'TIME-WAIT',
      inOldStateMs: inOld,
      source: 'sock_diag',
      expiresMs,
      note: `minisocket found by sock_diag, ${(expiresMs / 1000).toFixed(1)} s left`,
    });
  }

  private endTimeWait(conn: Conn, timeMs: number, reason: TimeWaitEnd, note?: string): void {
    const t = conn.timeline;
    const tw = t.timeWait!;
    tw.endReason = reason;
    if (reason !== 'trace-ended') {
      tw.endedMs = timeMs;
      const inOld = this.enter(conn, 'CLOSE', timeMs, 'sock_diag');
      this.emit({
        kind: 'transition',
        timeMs,
        time: this.iso(timeMs),
        pid: t.pid,
        task: t.task,
        netns: t.netns,
        family: t.family,
        local: t.local,
        remote: t.remote,
        oldState: 'TIME-WAIT',
        newState: 'CLOSE',
        inOldStateMs: inOld,
        source: 'sock_diag',
        endReason: reason,
        expectedEndMs: tw.expectedEndMs,
        note,
      });
    }
    conn.tw = undefined;
    this.finish(conn, reason !== 'trace-ended');
  }

  /** The TIME-WAIT minisocket left the table: at its timer, or early. */
  private endGone(conn: Conn, tw: Waiting, asked: number, final: boolean): void {
    const expectedEndMs = conn.timeline.timeWait!.expectedEndMs;
    const early = asked < expectedEndMs - Math.max(1000, this.pollMs * 2);
    if (early && !final && (tw.goneEarlyMs === undefined || asked - tw.goneEarlyMs < REUSE_GRACE_MS)) {
      // A connect() that reuses the 4-tuple (tcp_tw_reuse) kills the minisocket before its trace
      // event is read: give that event time to arrive before calling it an assassination.
      tw.goneEarlyMs ??= asked;
      return;
    }
    const endedMs = tw.goneEarlyMs ?? asked;
    this.endTimeWait(
      conn,
      endedMs,
      early ? 'early' : 'expired',
      early
        ? `gone ${((expectedEndMs - endedMs) / 1000).toFixed(1)} s before its timer: killed by a segment from the peer (RST)`
        : undefined,
    );
  }

  /**
   * No TIME-WAIT minisocket: none was made (tcp_max_tw_buckets), it lives in another network
   * namespace than the lookup's, or an orphaned FIN-WAIT-2 one timed out or was reset.
   */
  private noTimeWait(conn: Conn, tw: Waiting, asked: number): void {
    conn.tw = undefined;
    conn.timeline.note = tw.seen
      ? 'its FIN-WAIT-2 minisocket left the table without a TIME-WAIT (timed out or reset)'
      : 'sock_diag found no minisocket for it: another network namespace than the lookup, or tcp_max_tw_buckets reached';
    this.enter(conn, 'CLOSE', tw.seen ? asked : tw.closeMs, tw.seen ? 'sock_diag' : 'tracepoint');
    this.finish(conn);
  }
}
