/**
 * Live TCP state transitions, as bcc's tcpstates shows them, plus the two things it cannot show:
 * the TIME-WAIT phase (a minisocket no tracepoint reports, looked up with sock_diag) and failed
 * connect() attempts with their errno. What the events mean is decided in trace-timeline.ts
 * (pure, unit-tested); this file is the wiring: a tracefs instance with `sock:inet_sock_set_state`
 * and `syscalls:sys_exit_connect` (filtered in the kernel to ret < 0, EINPROGRESS excluded),
 * trace_pipe lines parsed and fed to the builder, the look-ups it asks for run through sock_diag
 * (or the caller's `lookup`), and one timer set to the builder's next look-up time.
 *
 * State names are ss's (ESTAB, SYN-SENT, FIN-WAIT-1, TIME-WAIT, ...), except CLOSE, which ss
 * lists as UNCONN. Times are CLOCK_MONOTONIC milliseconds (the instance's trace_clock is set to
 * "mono", the clock of process.hrtime), so tracepoint and sock_diag events share one time line;
 * `time` adds the wall-clock ISO time.
 */
import { RunError } from '../common/errors.js';
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
import { EINPROGRESS } from '../sockets/errno.js';
import type { MinisocketLookup } from './trace-diag.js';
import { TraceTasks } from './trace-tasks.js';
import {
  SynRetransmitTracker,
  synRetransmitFilter,
  synRetransmitFromFields,
  type SlowConnect,
  type SynRetransmitSummary,
} from './syn-retransmits.js';
import {
  TimelineBuilder,
  type ConnectionTimeline,
  type FailedConnect,
  type StateChange,
  type TraceEvent,
  type Transition,
} from './trace-timeline.js';

export type { MinisocketLookup, MinisocketFound, TupleQuery } from './trace-diag.js';
export { lookupMinisockets } from './trace-diag.js';
export type { SlowConnect, SynRetransmitSummary } from './syn-retransmits.js';
export type {
  ConnectionTimeline,
  FailedConnect,
  Phase,
  TimeWaitEnd,
  TraceEvent,
  Transition,
} from './trace-timeline.js';

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
  /** Keep the events for the result (default true); `top` counts them through onEvent only. */
  keep?: boolean;
  /** Ring buffer per CPU in KB (default 8192 without --port; the kernel's default with one). */
  bufferKb?: number;
  /** Called for every stalled or failed connect (SYN retransmits, syn-retransmits.ts) as it ends. */
  onSlowConnect?: (c: SlowConnect) => void;
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
  /**
   * Events the ring buffer lost (full before they were read): the instance's per-CPU stats
   * (overrun + dropped), or trace_pipe's "[LOST n EVENTS]" lines where those cannot be read.
   */
  lostEvents: number;
  /** State changes read from trace_pipe (what a loss is measured against: see bench/top). */
  eventsRead: number;
  /** The ring buffer per CPU, KB. */
  bufferKb: number;
  /** Connects that retransmitted their SYN, stalled or ended in SYN-SENT (tcp:tcp_retransmit_skb). */
  slowConnects: SlowConnect[];
  synRetransmits: SynRetransmitSummary;
}

export interface RunningTrace {
  readonly instance: string;
  /** CLOCK_MONOTONIC ms when the events were enabled. */
  readonly startedMs: number;
  /** Resolves when the trace ends (duration, stop(), or error); the instance is removed by then. */
  readonly done: Promise<TraceResult>;
  /** End the trace now (idempotent); resolves like `done`. */
  stop(): Promise<TraceResult>;
  /** Events lost so far (see TraceResult.lostEvents). */
  lostEvents(): number;
}

/** Hard bound on one trace (1 hour), whatever the caller asks. */
export const MAX_TRACE_MS = 3_600_000;
const DEFAULT_TRACE_MS = 10_000;
/** Ring buffer per CPU without a port filter: ~100 bytes an event, 10 events a connection. */
export const DEFAULT_BUFFER_KB = 8192;
/** At the end, how long the events still in the ring buffer may take to be read. */
const DRAIN_MS = 3_000;
/** Bound on what one trace keeps in memory. */
const MAX_KEPT = 200_000;
/** The labels sock:inet_sock_set_state must print for parseStateChange(). */
const STATE_LABELS = [
  'family',
  'sport',
  'dport',
  'saddr',
  'daddr',
  'saddrv6',
  'daddrv6',
  'oldstate',
  'newstate',
];

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

/**
 * A trace_pipe line of sock:inet_sock_set_state as the timeline builder takes it: the process,
 * command and namespace of the task it ran in (the builder decides whether that task owns the socket).
 */
function parseStateChange(
  line: TraceLine,
  stateOf: (tcpName: string) => string,
  tasks: TraceTasks,
): StateChange {
  const f = parseFields(line.text);
  const family: 4 | 6 = f['family'] === 'AF_INET6' ? 6 : 4;
  const who = tasks.of(line.pid, line.task);
  return {
    timeMs: line.timestamp * 1000,
    pid: who.pid,
    tid: line.pid,
    task: who.comm,
    netns: who.netns,
    family,
    local: { address: (family === 6 ? f['saddrv6'] : f['saddr']) ?? '', port: Number(f['sport']) },
    remote: { address: (family === 6 ? f['daddrv6'] : f['daddr']) ?? '', port: Number(f['dport']) },
    oldState: stateOf(f['oldstate'] ?? ''),
    newState: stateOf(f['newstate'] ?? ''),
  };
}

/** A private tracefs instance with the events enabled, and how to name the event's states. */
async function openInstance(opts: TraceOptions): Promise<{
  inst: TraceInstance;
  stateOf: (tcpName: string) => string;
  connectErrnos: boolean;
  synRetransmits: boolean;
}> {
  const root = await findTracefs({ mount: opts.mount ?? true });
  const format = await readEventFormat(root, 'sock', 'inet_sock_set_state');
  if (!format) throw new RunError('tracefs: this kernel has no sock:inet_sock_set_state tracepoint');
  for (const label of STATE_LABELS) {
    if (!format.labels.includes(label)) {
      throw new RunError(`tracefs: sock:inet_sock_set_state prints no '${label}' on this kernel`);
    }
  }
  const stateOf = stateNamer(format.symbols.get('newstate'));
  const inst = await TraceInstance.create(root);
  let connectErrnos = false;
  let synRetransmits = false;
  try {
    await inst.setClock('mono');
    // Unfiltered, a busy host makes tens of thousands of transitions a second: give bursts room.
    const bufferKb = opts.bufferKb ?? (opts.port === undefined ? DEFAULT_BUFFER_KB : undefined);
    if (bufferKb !== undefined) await inst.setBufferKb(bufferKb);
    const port = opts.port;
    // Kernel-side filters keep the pipe quiet on a busy host; TCP only (MPTCP/SCTP share the event).
    const portFilter = port === undefined ? '' : ` && (sport == ${port} || dport == ${port})`;
    await inst.enableEvent('sock', 'inet_sock_set_state', `protocol == 6${portFilter}`);
    if (inst.hasEvent('syscalls', 'sys_exit_connect')) {
      await inst.enableEvent('syscalls', 'sys_exit_connect', `ret < 0 && ret != -${EINPROGRESS}`);
      connectErrnos = true;
    }
    // SYN retransmits: stalled and failed connects (syn-retransmits.ts).
    if (inst.hasEvent('tcp', 'tcp_retransmit_skb')) {
      await inst.enableEvent('tcp', 'tcp_retransmit_skb', synRetransmitFilter(port));
      synRetransmits = true;
    }
  } catch (err) {
    await inst.remove().catch(() => undefined);
    throw err;
  }
  return { inst, stateOf, connectErrnos, synRetransmits };
}

/**
 * Runs the builder's minisocket look-ups: one timer, set to the builder's next look-up time, and
 * one look-up at a time. A failed look-up goes to `fail` (it ends the trace).
 */
function lookupRunner(
  builder: TimelineBuilder,
  lookup: MinisocketLookup,
  emit: (events: TraceEvent[]) => void,
  fail: (err: unknown) => void,
): { schedule(): void; stop(): Promise<void>; final(): Promise<void> } {
  let timer: NodeJS.Timeout | undefined;
  let timerAt: number | undefined;
  let inFlight: Promise<void> | undefined;
  let stopped = false;
  const run = async (final: boolean): Promise<void> => {
    const round = builder.beginLookup();
    if (round) emit(builder.endLookup(round, await lookup(round.queries), final));
  };
  /** (Re)arm the timer when the builder's next look-up time changed (after every event fed). */
  const schedule = (): void => {
    const at = stopped ? undefined : builder.nextLookupAt();
    if (at === timerAt) return;
    clearTimeout(timer);
    timerAt = at;
    timer = at === undefined ? undefined : setTimeout(fire, Math.max(0, at - nowMs()));
  };
  function fire(): void {
    timer = timerAt = undefined;
    inFlight = run(false)
      .catch(fail)
      .finally(() => {
        inFlight = undefined;
        schedule();
      });
    schedule();
  }
  schedule();
  return {
    schedule,
    /** No more timed look-ups; resolves when the one in flight is done. */
    stop: async () => {
      stopped = true;
      schedule();
      await inFlight;
    },
    /** The last look-up, when the trace ends: nothing waits for later events any more. */
    final: () => run(true),
  };
}

/**
 * Start tracing. Resolves once the tracefs instance exists and its events are enabled, so the
 * caller can start the traffic it wants to see right after.
 */
export async function startTrace(opts: TraceOptions = {}): Promise<RunningTrace> {
  const durationMs = Math.min(opts.durationMs ?? DEFAULT_TRACE_MS, MAX_TRACE_MS);
  const tasks = new TraceTasks();
  const lookup = opts.lookup ?? tasks.lookup;
  const { inst, stateOf, connectErrnos, synRetransmits } = await openInstance(opts);
  const bufferKb = inst.bufferKb();

  const startedMs = nowMs();
  const builder = new TimelineBuilder({
    now: nowMs,
    wallOffsetMs: Date.now() - startedMs,
    pollMs: opts.pollMs,
    connectErrnos,
    listenerOwner: tasks.listenerOwner,
  });
  const transitions: Transition[] = [];
  const connections: ConnectionTimeline[] = [];
  const failedConnects: FailedConnect[] = [];
  const syn = new SynRetransmitTracker({ wallOffsetMs: Date.now() - startedMs });
  const slowConnects: SlowConnect[] = [];
  const emitSlow = (events: SlowConnect[]): void => {
    for (const c of events) {
      if (opts.keep !== false && slowConnects.length < MAX_KEPT) slowConnects.push(c);
      opts.onSlowConnect?.(c);
    }
  };
  const emit = (events: TraceEvent[]): void => {
    for (const ev of events) {
      const list: TraceEvent[] =
        ev.kind === 'transition' ? transitions : ev.kind === 'connection' ? connections : failedConnects;
      if (opts.keep !== false && list.length < MAX_KEPT) list.push(ev);
      opts.onEvent?.(ev);
      if (ev.kind === 'transition') emitSlow(syn.transition(ev));
    }
  };

  let resolveDone!: (r: TraceResult) => void;
  let rejectDone!: (e: unknown) => void;
  const done = new Promise<TraceResult>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  const timer = setTimeout(() => void stop(), durationMs);

  const lookups = lookupRunner(builder, lookup, emit, (err) => void fail(err));

  let lostLines = 0;
  let eventsRead = 0;
  let lostAtEnd: number | undefined;
  const lostEvents = (): number => lostAtEnd ?? Math.max(inst.lostEvents()?.events ?? 0, lostLines);
  const reader = (async () => {
    for await (const raw of inst.lines()) {
      const line = parseTraceLine(raw);
      if (!line) {
        const lost = /\[LOST (\d+) EVENTS\]/.exec(raw);
        if (lost) lostLines += Number(lost[1]);
        continue;
      }
      if (line.event === 'inet_sock_set_state') {
        eventsRead++;
        emit(builder.stateChange(parseStateChange(line, stateOf, tasks)));
      } else if (line.event === 'tcp_retransmit_skb') {
        const ev = synRetransmitFromFields(parseFields(line.text), line.timestamp * 1000);
        if (ev) emitSlow(syn.retransmit(ev));
      } else if (line.event === 'sys_exit_connect') {
        emit(
          builder.connectReturn({
            timeMs: line.timestamp * 1000,
            pid: tasks.of(line.pid, line.task).pid,
            tid: line.pid,
            ret: parseSyscallReturn(line.text),
          }),
        );
      }
      lookups.schedule();
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
    clearTimeout(timer);
    const quiet = lookups.stop();
    result = (async () => {
      inst.stop(DRAIN_MS);
      await reader.catch(() => undefined);
      lostAtEnd = lostEvents();
      await inst.remove();
      await quiet;
      if (!failed) await lookups.final().catch((err) => (failed ??= err));
      emit(builder.end());
      emitSlow(syn.end(nowMs()));
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
        lostEvents: lostAtEnd,
        eventsRead,
        bufferKb,
        slowConnects,
        synRetransmits: syn.summary(synRetransmits),
      };
      if (failed) rejectDone(failed);
      else resolveDone(r);
      return done;
    })();
    return result;
  }

  return { instance: inst.name, startedMs, done, stop, lostEvents };
}
