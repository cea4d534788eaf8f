/**
 * Live TCP state transitions, as bcc's tcpstates shows them, plus the two things it cannot show:
 *
 * - the TIME-WAIT phase. `sock:inet_sock_set_state` fires for full sockets only; a socket that
 *   closes first hands its last phase to a minisocket and reports FIN-WAIT-2 -> CLOSE (or
 *   CLOSING -> CLOSE). After such a close the tracer looks the 4-tuple up as a minisocket in a
 *   sock_diag dump, emits a synthetic `-> TIME-WAIT` transition (source "sock_diag", with the
 *   kernel's idiag_expires), polls until it leaves the table, and emits its end: at its expiry,
 *   early (killed by a segment from the peer: RST assassination), or reused by a new connection.
 * - failed connect() attempts. A failed port allocation shows as CLOSE -> SYN-SENT with local port
 *   0, straight followed by SYN-SENT -> CLOSE with local port 0; `syscalls:sys_exit_connect`
 *   (filtered in the kernel to ret < 0, EINPROGRESS excluded) in the same task carries the errno.
 *   Paired by pid, they give process, destination and errno.
 *
 * State names are ss's (ESTAB, SYN-SENT, FIN-WAIT-1, TIME-WAIT, ...), except CLOSE, which ss
 * lists as UNCONN. Times are CLOCK_MONOTONIC milliseconds (the instance's trace_clock is set to
 * "mono", the clock of process.hrtime), so tracepoint and sock_diag events share one time line;
 * `time` adds the wall-clock ISO time.
 */
import { readFileSync } from 'node:fs';
import { RunError } from '../common/errors.js';
import { errnoName } from '../sockets/errno.js';
import type { Endpoint } from './sockdiag.js';
import { tcpStateName } from './sockdiag-states.js';
import {
  findTracefs,
  parseFields,
  parseSyscallReturn,
  parseTraceLine,
  readEventFormat,
  TraceInstance,
  type TraceLine,
} from './tracefs.js';
import { lookupMinisockets, tupleKey, type MinisocketLookup, type TupleQuery } from './trace-diag.js';

export type { MinisocketLookup, MinisocketFound, TupleQuery } from './trace-diag.js';
export { lookupMinisockets } from './trace-diag.js';

/** One state change of one socket. */
export interface Transition {
  kind: 'transition';
  /** CLOCK_MONOTONIC ms (same clock as process.hrtime). */
  timeMs: number;
  /** Wall-clock time of the same instant. */
  time: string;
  /** Thread id and command of the task the kernel ran in (softirq work shows whoever was on the CPU). */
  pid: number;
  task: string;
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
  /** client: seen from SYN-SENT; server: from SYN-RECV; unknown: was open before the trace. */
  role: 'client' | 'server' | 'unknown';
  pid: number;
  task: string;
  phases: Phase[];
  /** Whether this side closed first (it went through FIN-WAIT-1). */
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

export interface TraceOptions {
  /** Only sockets with this local or remote port (filtered in the kernel). */
  port?: number;
  /** Stop after this long (always bounded: default 10 s). */
  durationMs?: number;
  /** Called for every event as it happens, in order. */
  onEvent?: (event: TraceEvent) => void;
  /** Where minisockets are looked up; default: sock_diag in this process's network namespace. */
  lookup?: MinisocketLookup;
  /** sock_diag poll interval for TIME-WAIT phases (default 200 ms). */
  pollMs?: number;
  /** Whether to mount tracefs when it is not mounted (default true). */
  mount?: boolean;
}

export interface TraceResult {
  /** The tracefs instance used (removed by now). */
  instance: string;
  port: number | null;
  startedMs: number;
  endedMs: number;
  transitions: Transition[];
  connections: ConnectionTimeline[];
  failedConnects: FailedConnect[];
  /** Whether failed connect() errnos could be traced (syscalls:sys_exit_connect present). */
  connectErrnos: boolean;
  /** Events the kernel dropped because the ring buffer was full ("[LOST n EVENTS]" lines). */
  lostEvents: number;
}

export interface RunningTrace {
  readonly instance: string;
  /** CLOCK_MONOTONIC ms when the events were enabled. */
  readonly startedMs: number;
  /** Resolves when the trace ends (duration, stop(), or error); the instance is removed by then. */
  readonly done: Promise<TraceResult>;
  /** End the trace now (idempotent); resolves like `done`. */
  stop(): Promise<TraceResult>;
}

/** Hard bound on one trace (1 hour), whatever the caller asks. */
export const MAX_TRACE_MS = 3_600_000;
const DEFAULT_TRACE_MS = 10_000;
/** Bound on what one trace keeps in memory. */
const MAX_KEPT = 200_000;
/** Bound on connections (and connecting pids) followed at once. */
const MAX_OPEN = 50_000;
const EINPROGRESS = 115;
/**
 * How long the minisocket logic waits for a trace event that explains what a lookup saw (a
 * reusing connect(), the peer's FIN): 3 trace_pipe polls.
 */
const REUSE_GRACE_MS = 150;

function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** "TCP_FIN_WAIT1" -> "FIN-WAIT-1" through the kernel's own state number (ss naming). */
function stateNamer(symbols: Map<number, string> | undefined): (tcpName: string) => string {
  const byName = new Map<string, number>();
  for (const [n, name] of symbols ?? []) byName.set(name, n);
  return (tcpName) => {
    const n = byName.get(tcpName);
    if (n === undefined) return tcpName.replace(/^TCP_/, '');
    const ss = tcpStateName(n);
    return ss === 'UNCONN' ? 'CLOSE' : ss === 'UNKNOWN' ? tcpName.replace(/^TCP_/, '') : ss;
  };
}

const commCache = new Map<number, string>();
/** trace_pipe prints "<...>" when the task's name fell out of saved_cmdlines; ask /proc then. */
function taskName(task: string, pid: number): string {
  if (task !== '<...>') return task;
  let name = commCache.get(pid);
  if (name === undefined) {
    try {
      name = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      name = task;
    }
    if (commCache.size > 10_000) commCache.clear();
    commCache.set(pid, name);
  }
  return name;
}

interface Conn {
  timeline: ConnectionTimeline;
  /** Waiting for its minisocket: the close time and the state it closed from. */
  tw?: {
    closeMs: number;
    fromState: string;
    lastSeenMs?: number;
    seen: boolean;
    lookups: number;
    /** First lookup that found a TIME-WAIT gone before its timer (classified one poll later). */
    goneEarlyMs?: number;
    /** First lookup that found it in TIME-WAIT, and the timer it reported then. */
    firstTw?: { atMs: number; expiresMs: number; expectedEndMs: number };
  };
}

interface Attempt {
  pid: number;
  task: string;
  family: 4 | 6;
  remote: Endpoint;
  /** 0 unless the socket was bound before connect(). */
  localPort: number;
  timeMs: number;
  /** Its SYN-SENT -> CLOSE was seen, with this local port. */
  failedPort?: number;
  paired: boolean;
}

/**
 * Start tracing. Resolves once the tracefs instance exists and its events are enabled, so the
 * caller can start the traffic it wants to see right after.
 */
export async function startTrace(opts: TraceOptions = {}): Promise<RunningTrace> {
  const durationMs = Math.min(opts.durationMs ?? DEFAULT_TRACE_MS, MAX_TRACE_MS);
  const pollMs = opts.pollMs ?? 200;
  const lookup = opts.lookup ?? lookupMinisockets;
  const root = await findTracefs({ mount: opts.mount ?? true });
  const format = await readEventFormat(root, 'sock', 'inet_sock_set_state');
  if (!format) throw new RunError('tracefs: this kernel has no sock:inet_sock_set_state tracepoint');
  for (const label of [
    'family',
    'sport',
    'dport',
    'saddr',
    'daddr',
    'saddrv6',
    'daddrv6',
    'oldstate',
    'newstate',
  ]) {
    if (!format.labels.includes(label)) {
      throw new RunError(`tracefs: sock:inet_sock_set_state prints no '${label}' on this kernel`);
    }
  }
  const stateOf = stateNamer(format.symbols.get('newstate'));
  const inst = await TraceInstance.create(root);
  let connectErrnos = false;
  try {
    await inst.setClock('mono');
    // Unfiltered, a busy host makes tens of thousands of transitions a second: give bursts room.
    if (opts.port === undefined) await inst.setBufferKb(8192);
    const port = opts.port;
    // Kernel-side filters keep the pipe quiet on a busy host; TCP only (MPTCP/SCTP share the event).
    const portFilter = port === undefined ? '' : ` && (sport == ${port} || dport == ${port})`;
    await inst.enableEvent('sock', 'inet_sock_set_state', `protocol == 6${portFilter}`);
    if (inst.hasEvent('syscalls', 'sys_exit_connect')) {
      await inst.enableEvent('syscalls', 'sys_exit_connect', `ret < 0 && ret != -${EINPROGRESS}`);
      connectErrnos = true;
    }
  } catch (err) {
    await inst.remove().catch(() => undefined);
    throw err;
  }

  const startedMs = nowMs();
  const wallOffset = Date.now() - startedMs;
  const iso = (ms: number): string => new Date(ms + wallOffset).toISOString();

  const transitions: Transition[] = [];
  const connections: ConnectionTimeline[] = [];
  const failedConnects: FailedConnect[] = [];
  const conns = new Map<string, Conn>();
  const attempts: Attempt[] = [];
  const lastAttemptByPid = new Map<number, Attempt>();
  /** sys_exit_connect failures that arrived before their attempt's SYN-SENT -> CLOSE. */
  const earlyExits = new Map<number, { code: number; timeMs: number }>();
  /** When each 4-tuple sent its FIN from CLOSE-WAIT (entered LAST-ACK). */
  const finSent = new Map<string, number>();

  const emit = (ev: TraceEvent): void => {
    const list: TraceEvent[] =
      ev.kind === 'transition' ? transitions : ev.kind === 'connection' ? connections : failedConnects;
    if (list.length < MAX_KEPT) list.push(ev as never);
    opts.onEvent?.(ev);
  };

  const finish = (conn: Conn, complete = true): void => {
    const key = tupleKey(conn.timeline);
    if (conns.get(key) === conn) conns.delete(key);
    conn.timeline.complete = complete;
    emit(conn.timeline);
  };

  const enter = (conn: Conn, state: string, timeMs: number, source: Phase['source']): number | undefined => {
    const phases = conn.timeline.phases;
    const last = phases[phases.length - 1];
    let inOld: number | undefined;
    if (last) {
      last.endMs = timeMs;
      if (last.startMs !== undefined) last.durationMs = inOld = Math.max(0, timeMs - last.startMs);
    }
    phases.push({ state, startMs: timeMs, source });
    return inOld;
  };

  const endTimeWait = (conn: Conn, timeMs: number, reason: TimeWaitEnd, note?: string): void => {
    const tw = conn.timeline.timeWait!;
    tw.endReason = reason;
    if (reason !== 'trace-ended') {
      tw.endedMs = timeMs;
      const inOld = enter(conn, 'CLOSE', timeMs, 'sock_diag');
      emit({
        kind: 'transition',
        timeMs,
        time: iso(timeMs),
        pid: conn.timeline.pid,
        task: conn.timeline.task,
        family: conn.timeline.family,
        local: conn.timeline.local,
        remote: conn.timeline.remote,
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
    finish(conn, reason !== 'trace-ended');
  };

  const onSockEvent = (line: TraceLine): void => {
    const f = parseFields(line.text);
    const family: 4 | 6 = f['family'] === 'AF_INET6' ? 6 : 4;
    const local = { address: (family === 6 ? f['saddrv6'] : f['saddr']) ?? '', port: Number(f['sport']) };
    const remote = { address: (family === 6 ? f['daddrv6'] : f['daddr']) ?? '', port: Number(f['dport']) };
    const oldState = stateOf(f['oldstate'] ?? '');
    const newState = stateOf(f['newstate'] ?? '');
    const timeMs = line.timestamp * 1000;
    const task = taskName(line.task, line.pid);
    const tuple: TupleQuery = { family, local, remote };

    const key = tupleKey(tuple);
    const minisocket = newState === 'CLOSE' && (oldState === 'FIN-WAIT-2' || oldState === 'CLOSING');
    let inOldStateMs: number | undefined;
    let note: string | undefined;
    let conn: Conn | undefined;
    if (oldState === 'CLOSE' && newState === 'SYN-SENT') {
      // connect() starts; an unbound socket's local port is chosen just after this event.
      const a: Attempt = {
        pid: line.pid,
        task,
        family,
        remote,
        localPort: local.port,
        timeMs,
        paired: false,
      };
      attempts.push(a);
      if (attempts.length > 1000) attempts.shift();
      lastAttemptByPid.delete(line.pid);
      lastAttemptByPid.set(line.pid, a);
      if (lastAttemptByPid.size > MAX_OPEN) lastAttemptByPid.delete(lastAttemptByPid.keys().next().value!);
      if (local.port !== 0) startConn(tuple, 'client', line.pid, task, 'SYN-SENT', timeMs);
    } else if (oldState === 'LISTEN' && newState === 'SYN-RECV') {
      startConn(tuple, 'server', line.pid, task, 'SYN-RECV', timeMs);
    } else if (oldState !== 'LISTEN' && newState !== 'LISTEN') {
      if (oldState === 'SYN-SENT') {
        const i = attempts.findIndex(
          (a) =>
            a.family === family &&
            a.remote.port === remote.port &&
            a.remote.address === remote.address &&
            (a.localPort === 0 || a.localPort === local.port),
        );
        const a = i >= 0 ? attempts.splice(i, 1)[0] : undefined;
        const existing = conns.get(key);
        if (a && local.port !== 0 && (!existing || existing.tw))
          startConn(tuple, 'client', a.pid, a.task, 'SYN-SENT', a.timeMs);
        if (a && newState === 'CLOSE') {
          a.failedPort = local.port;
          if (local.port === 0) note = 'connect() found no free local port';
          const early = earlyExits.get(a.pid);
          if (early && lastAttemptByPid.get(a.pid) === a) {
            earlyExits.delete(a.pid);
            pairFailure(a, early.code, early.timeMs);
          }
        }
      }
      if (newState === 'LAST-ACK') {
        // The peer of this socket gets our FIN now: when it is a FIN-WAIT-2 minisocket, this is
        // the instant it enters TIME-WAIT.
        finSent.set(key, timeMs);
        if (finSent.size > 10_000) finSent.delete(finSent.keys().next().value!);
      }
      if (local.port !== 0) {
        conn = conns.get(key);
        if (conn?.tw) {
          retireForReuse(tuple, timeMs);
          conn = undefined;
        }
        conn ??= startConn(tuple, 'unknown', line.pid, task, oldState, undefined);
        if (minisocket) {
          const last = conn.timeline.phases[conn.timeline.phases.length - 1];
          if (last?.startMs !== undefined) inOldStateMs = Math.max(0, timeMs - last.startMs);
        } else {
          inOldStateMs = enter(conn, newState, timeMs, 'tracepoint');
        }
        if (oldState === 'FIN-WAIT-1' || newState === 'FIN-WAIT-1') conn.timeline.closedFirst = true;
      }
    }
    if (minisocket) note = 'handed to a minisocket: looking for its TIME-WAIT phase';
    emit({
      kind: 'transition',
      timeMs,
      time: iso(timeMs),
      pid: line.pid,
      task,
      family,
      local,
      remote,
      oldState,
      newState,
      inOldStateMs,
      source: 'tracepoint',
      note,
    });
    if (conn && newState === 'CLOSE') {
      if (minisocket) {
        conn.tw = { closeMs: timeMs, fromState: oldState, seen: false, lookups: 0 };
        kick();
      } else {
        finish(conn);
      }
    }
    // A segment for a 4-tuple whose minisocket we watch may change it: our FIN makes a FIN-WAIT-2
    // minisocket enter TIME-WAIT, a new SYN or an RST can end its TIME-WAIT early. Look now.
    if (conns.get(tupleKey({ family, local: remote, remote: local }))?.tw) kick();
  };

  /** A new connection on a 4-tuple still in TIME-WAIT took its place (tw_reuse or SYN to a TW). */
  function retireForReuse(tuple: TupleQuery, timeMs: number): void {
    const old = conns.get(tupleKey(tuple));
    if (!old?.tw) return;
    if (!old.timeline.timeWait && old.tw.firstTw) enterTimeWait(old, old.tw);
    if (old.timeline.timeWait) endTimeWait(old, timeMs, 'reused', 'a new connection took over this 4-tuple');
    else finish(old);
  }

  function startConn(
    tuple: TupleQuery,
    role: ConnectionTimeline['role'],
    pid: number,
    task: string,
    firstState: string,
    firstMs: number | undefined,
  ): Conn {
    retireForReuse(tuple, firstMs ?? nowMs());
    const conn: Conn = {
      timeline: {
        kind: 'connection',
        family: tuple.family,
        local: tuple.local,
        remote: tuple.remote,
        role,
        pid,
        task,
        phases: [{ state: firstState, startMs: firstMs, source: 'tracepoint' }],
        closedFirst: false,
        complete: false,
      },
    };
    conns.set(tupleKey(tuple), conn);
    // Bounded memory on a busy host: the oldest open connection is reported unfinished.
    if (conns.size > MAX_OPEN) finish(conns.values().next().value!, false);
    return conn;
  }

  function pairFailure(a: Attempt, code: number | null, timeMs: number): void {
    a.paired = true;
    emit({
      kind: 'connect-failed',
      timeMs,
      time: iso(timeMs),
      errno: code === null ? null : errnoName(code),
      code,
      pid: a.pid,
      task: a.task,
      family: a.family,
      remote: a.remote,
      localPort: a.failedPort ?? 0,
    });
  }

  const onConnectExit = (line: TraceLine): void => {
    const ret = parseSyscallReturn(line.text);
    if (ret >= 0 || -ret === EINPROGRESS) return;
    const a = lastAttemptByPid.get(line.pid);
    const timeMs = line.timestamp * 1000;
    if (a && !a.paired && a.failedPort !== undefined) pairFailure(a, -ret, timeMs);
    else if (a && !a.paired) earlyExits.set(line.pid, { code: -ret, timeMs });
    // Otherwise a connect() we do not watch (another port, UDP, unix): ignore it.
  };

  /** One sock_diag round for every connection waiting in (or for) its minisocket. */
  const pollMinisockets = async (final = false): Promise<void> => {
    const waiting = [...conns.values()].filter((c) => c.tw);
    if (waiting.length === 0) return;
    const asked = nowMs();
    const found = await lookup(
      waiting.map((c) => ({ family: c.timeline.family, local: c.timeline.local, remote: c.timeline.remote })),
    );
    const seenAt = nowMs();
    const byKey = new Map(found.map((m) => [tupleKey(m), m]));
    for (const conn of waiting) {
      const tw = conn.tw;
      if (!tw || conns.get(tupleKey(conn.timeline)) !== conn) continue;
      tw.lookups++;
      const m = byKey.get(tupleKey(conn.timeline));
      if (m && m.state === 'TIME-WAIT') {
        tw.lastSeenMs = seenAt;
        if (!conn.timeline.timeWait) {
          tw.firstTw ??= { atMs: asked, expiresMs: m.expiresMs, expectedEndMs: seenAt + m.expiresMs };
          if (tw.seen && !peerFinAfterClose(conn, tw) && !final && asked - tw.firstTw.atMs < REUSE_GRACE_MS) {
            continue; // the peer's FIN event may still be on its way through trace_pipe
          }
          enterTimeWait(conn, tw);
        }
        if (final) endTimeWait(conn, seenAt, 'trace-ended');
      } else if (m) {
        tw.seen = true; // orphaned FIN-WAIT-2 minisocket: wait for the peer's FIN
        tw.lastSeenMs = seenAt;
        if (final) finish(conn, false);
      } else {
        // Seen in TIME-WAIT but gone while we waited for the peer's FIN event: it still had one.
        if (!conn.timeline.timeWait && tw.firstTw) enterTimeWait(conn, tw);
        if (conn.timeline.timeWait) endGone(conn, tw, asked, final);
        else {
          // No TIME-WAIT minisocket: none was made (tcp_max_tw_buckets), it lives in another
          // network namespace than the lookup's, or an orphaned FIN-WAIT-2 one timed out or was reset.
          conn.tw = undefined;
          conn.timeline.note = tw.seen
            ? 'its FIN-WAIT-2 minisocket left the table without a TIME-WAIT (timed out or reset)'
            : 'sock_diag found no minisocket for it: another network namespace than the lookup, or tcp_max_tw_buckets reached';
          enter(conn, 'CLOSE', tw.seen ? asked : tw.closeMs, tw.seen ? 'sock_diag' : 'tracepoint');
          finish(conn);
        }
      }
    }
  };

  type Waiting = NonNullable<Conn['tw']>;

  /** When the peer's FIN (its CLOSE-WAIT -> LAST-ACK) was traced after our close, if it was. */
  function peerFinAfterClose(conn: Conn, tw: Waiting): number | undefined {
    const t = conn.timeline;
    const fin = finSent.get(tupleKey({ family: t.family, local: t.remote, remote: t.local }));
    return fin !== undefined && fin >= tw.closeMs ? fin : undefined;
  }

  /**
   * Emit the TIME-WAIT entry. A socket closed on the peer's FIN entered TIME-WAIT at its own close
   * event; one that closed first and was orphaned waited as a FIN-WAIT-2 minisocket until the
   * peer's FIN, when that was traced. Without it, the entry lies between the last lookup that saw
   * FIN-WAIT-2 and the first that saw TIME-WAIT; the later bound is reported.
   */
  function enterTimeWait(conn: Conn, tw: Waiting): void {
    const first = tw.firstTw!;
    const enteredMs = peerFinAfterClose(conn, tw) ?? (tw.seen ? first.atMs : tw.closeMs);
    const { expiresMs, expectedEndMs } = first;
    conn.timeline.timeWait = { enteredMs, expiresMs, expectedEndMs, endReason: 'trace-ended' };
    const inOld = enter(conn, 'TIME-WAIT', enteredMs, 'sock_diag');
    emit({
      kind: 'transition',
      timeMs: enteredMs,
      time: iso(enteredMs),
      pid: conn.timeline.pid,
      task: conn.timeline.task,
      family: conn.timeline.family,
      local: conn.timeline.local,
      remote: conn.timeline.remote,
      oldState: tw.fromState,
      newState: 'TIME-WAIT',
      inOldStateMs: inOld,
      source: 'sock_diag',
      expiresMs,
      note: `minisocket found by sock_diag, ${(expiresMs / 1000).toFixed(1)} s left`,
    });
  }

  /** The TIME-WAIT minisocket left the table: at its timer, or early. */
  function endGone(conn: Conn, tw: Waiting, asked: number, final: boolean): void {
    const expectedEndMs = conn.timeline.timeWait!.expectedEndMs;
    const early = asked < expectedEndMs - Math.max(1000, pollMs * 2);
    if (early && !final && (tw.goneEarlyMs === undefined || asked - tw.goneEarlyMs < REUSE_GRACE_MS)) {
      // A connect() that reuses the 4-tuple (tcp_tw_reuse) kills the minisocket before its trace
      // event is read: give that event time to arrive before calling it an assassination.
      tw.goneEarlyMs ??= asked;
      return;
    }
    const endedMs = tw.goneEarlyMs ?? asked;
    endTimeWait(
      conn,
      endedMs,
      early ? 'early' : 'expired',
      early
        ? `gone ${((expectedEndMs - endedMs) / 1000).toFixed(1)} s before its timer: killed by a segment from the peer (RST)`
        : undefined,
    );
  }

  let resolveDone!: (r: TraceResult) => void;
  let rejectDone!: (e: unknown) => void;
  const done = new Promise<TraceResult>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  let stopping = false;
  const timer = setTimeout(() => void stop(), durationMs);

  // Minisockets are looked up every pollMs, and a few ms after each event that creates or changes
  // one, so that even a short TIME-WAIT (killed early) is seen.
  let lostEvents = 0;
  // A dump costs time proportional to the whole table (tens of ms at 100k TIME-WAIT sockets), so
  // dumps are spaced by at least twice the last one's duration (and 20 ms) however many events
  // ask for one.
  let polling = false;
  let again = false;
  let lastPollStart = 0;
  let lastPollCost = 0;
  const gapMs = (): number => Math.max(20, 2 * lastPollCost);
  const runPoll = (): void => {
    if (stopping) return;
    if (polling) {
      again = true;
      return;
    }
    polling = true;
    lastPollStart = nowMs();
    pollMinisockets()
      .catch((err) => void fail(err))
      .finally(() => {
        polling = false;
        lastPollCost = nowMs() - lastPollStart;
        if (again) {
          again = false;
          kick();
        }
      });
  };
  const poller = setInterval(runPoll, pollMs);
  let kicked: NodeJS.Timeout | undefined;
  function kick(): void {
    const wait = Math.max(3, lastPollStart + gapMs() - nowMs());
    kicked ??= setTimeout(() => {
      kicked = undefined;
      runPoll();
    }, wait);
  }

  const reader = (async () => {
    for await (const raw of inst.lines()) {
      const line = parseTraceLine(raw);
      if (!line) {
        const lost = /\[LOST (\d+) EVENTS\]/.exec(raw);
        if (lost) lostEvents += Number(lost[1]);
        continue;
      }
      if (line.event === 'inet_sock_set_state') onSockEvent(line);
      else if (line.event === 'sys_exit_connect') onConnectExit(line);
    }
  })();
  reader.catch((err) => void fail(err));

  let failed: unknown;
  async function fail(err: unknown): Promise<void> {
    failed ??= err;
    await stop();
  }

  let result: Promise<TraceResult> | undefined;
  function stop(): Promise<TraceResult> {
    if (result) return result;
    stopping = true;
    clearTimeout(timer);
    clearInterval(poller);
    clearTimeout(kicked);
    result = (async () => {
      inst.stop();
      await reader.catch(() => undefined);
      await inst.remove();
      while (polling) await new Promise((r) => setTimeout(r, 10));
      if (!failed) await pollMinisockets(true).catch((err) => (failed ??= err));
      // Attempts whose failure had no syscall exit (sys_exit_connect missing): report them without errno.
      for (const a of lastAttemptByPid.values()) {
        if (!a.paired && a.failedPort === 0 && !connectErrnos) pairFailure(a, null, a.timeMs);
      }
      for (const conn of [...conns.values()]) finish(conn, false);
      // Minisocket lookups interleave with batches of tracepoint lines: restore time order.
      transitions.sort((a, b) => a.timeMs - b.timeMs);
      const r: TraceResult = {
        instance: inst.name,
        port: opts.port ?? null,
        startedMs,
        endedMs: nowMs(),
        transitions,
        connections,
        failedConnects,
        connectErrnos,
        lostEvents,
      };
      if (failed) rejectDone(failed);
      else resolveDone(r);
      return done;
    })();
    return result;
  }

  return { instance: inst.name, startedMs, done, stop };
}
