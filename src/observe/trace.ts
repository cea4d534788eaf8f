/**
 * Live TCP state transitions, as bcc's tcpstates shows them, plus the two things it cannot show:
 * the TIME-WAIT phase (a minisocket no tracepoint reports, looked up with sock_diag) and failed
 * connect() attempts with their errno. What the events mean is decided in trace-timeline.ts
 * (pure, unit-tested); this file is the wiring: a tracefs instance with `sock:inet_sock_set_state`
 * and `syscalls:sys_exit_connect` (filtered in the kernel to ret < 0, EINPROGRESS and ENOENT
 * excluded; plus `sched:sched_process_exec`/`sched_process_fork`, which tell when a task's /proc
 * facts change),
 * binary records read and decoded off the main thread (tracefs.ts readRaw) and fed to the builder,
 * the look-ups it asks for run through sock_diag (or the caller's `lookup`), and one timer set to
 * the builder's next look-up time.
 *
 * State names are ss's (ESTAB, SYN-SENT, FIN-WAIT-1, TIME-WAIT, ...), except CLOSE, which ss
 * lists as UNCONN. Times are CLOCK_MONOTONIC milliseconds (the instance's trace_clock is set to
 * "mono", the clock of process.hrtime), so tracepoint and sock_diag events share one time line;
 * `time` adds the wall-clock ISO time.
 */
import { join } from 'node:path';
import { RunError } from '../common/errors.js';
import { tcpStateName } from './sockdiag-states.js';
import { findTracefs, readEventFormat, TraceInstance } from './tracefs.js';
import type { EventFormat } from './tracefs-format.js';
import {
  KIND_CONNECT_EXIT,
  KIND_RETRANSMIT,
  KIND_STATE,
  KIND_TASK,
  RAW_DPORT,
  RAW_FAMILY,
  RAW_NEW,
  RAW_OLD,
  RAW_RET,
  RAW_SPORT,
  RAW_STRIDE,
  RAW_TID,
  unpackEvent,
  type RawBatch,
  type RawEvent,
  type RawFormats,
} from './tracefs-raw.js';
import { EINPROGRESS, ENOENT } from '../sockets/errno.js';
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
  /**
   * Whether connection timelines keep their phases (default true); `top` reads none, and with
   * keep: false and this false a connection event carries only its last phase.
   */
  phases?: boolean;
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
   * (overrun + dropped), or the ring-buffer pages' missed-events counts where those cannot be read.
   */
  lostEvents: number;
  /** State changes read from the ring buffer (what a loss is measured against: see bench/top). */
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

/** The event's state number -> ss's name ("FIN-WAIT-1"); the format's own name where ss has none. */
function stateNamer(symbols: Map<number, string> | undefined): (state: number) => string {
  const name = (n: number): string => {
    const ss = tcpStateName(n);
    if (ss === 'UNCONN') return 'CLOSE';
    if (ss !== 'UNKNOWN') return ss;
    return symbols?.get(n)?.replace(/^TCP_/, '') ?? String(n);
  };
  // Twice per event: the kernel's few states named once.
  const names = Array.from({ length: 32 }, (_, n) => name(n));
  return (n) => names[n] ?? name(n);
}

/**
 * Event `i` of a batch, a sock:inet_sock_set_state record, as the timeline builder takes it: the
 * process, command and namespace of the task it ran in (the builder decides whether that task owns
 * the socket), and the socket's address (low 53 bits) as its identity.
 */
function stateChangeAt(
  b: RawBatch,
  i: number,
  stateOf: (state: number) => string,
  tasks: TraceTasks,
): StateChange {
  const o = i * RAW_STRIDE;
  const tid = b.ints[o + RAW_TID]!;
  const who = tasks.of(tid);
  return {
    timeMs: b.timeNs[i]! / 1e6,
    sk: (b.sk[2 * i + 1]! % 2 ** 21) * 2 ** 32 + b.sk[2 * i]!,
    pid: who.pid,
    tid,
    task: who.comm,
    netns: who.netns,
    family: b.ints[o + RAW_FAMILY] === 10 ? 6 : 4,
    local: { address: b.addrs[2 * i]!, port: b.ints[o + RAW_SPORT]! },
    remote: { address: b.addrs[2 * i + 1]!, port: b.ints[o + RAW_DPORT]! },
    oldState: stateOf(b.ints[o + RAW_OLD]!),
    newState: stateOf(b.ints[o + RAW_NEW]!),
  };
}

/** A tcp:tcp_retransmit_skb record as syn-retransmits.ts reads the event's fields. */
function retransmitFields(ev: RawEvent): Record<string, string> {
  const v6 = ev.family === 10;
  return {
    family: v6 ? 'AF_INET6' : 'AF_INET',
    state: String(ev.oldState),
    sport: String(ev.sport),
    dport: String(ev.dport),
    [v6 ? 'saddrv6' : 'saddr']: ev.local,
    [v6 ? 'daddrv6' : 'daddr']: ev.remote,
    err: String(ev.ret),
  };
}

/** A private tracefs instance with the events enabled, and how to name the event's states. */
async function openInstance(opts: TraceOptions): Promise<{
  inst: TraceInstance;
  stateOf: (state: number) => string;
  formats: RawFormats;
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
  let connectExit: EventFormat | undefined;
  let retransmit: EventFormat | undefined;
  const taskEvents: Pick<RawFormats, 'exec' | 'fork'> = {};
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
      connectExit = await readEventFormat(root, 'syscalls', 'sys_exit_connect');
      if (connectExit)
        // ENOENT is a unix socket's missing path (nscd, syslog), never a TCP connect()'s errno.
        await inst.enableEvent(
          'syscalls',
          'sys_exit_connect',
          `ret < 0 && ret != -${EINPROGRESS} && ret != -${ENOENT}`,
        );
    }
    // SYN retransmits: stalled and failed connects (syn-retransmits.ts).
    if (inst.hasEvent('tcp', 'tcp_retransmit_skb')) {
      retransmit = await readEventFormat(root, 'tcp', 'tcp_retransmit_skb');
      if (retransmit) {
        await inst.enableEvent('tcp', 'tcp_retransmit_skb', synRetransmitFilter(port));
        synRetransmits = true;
      }
    }
    // A task's command changes at execve() and a tid is reused by a later fork(): both events tell
    // TraceTasks that what it read of that tid is stale (a shell script that execs the client
    // would otherwise keep the shell's name). Few a second, even on a busy host.
    for (const [key, event] of [
      ['exec', 'sched_process_exec'],
      ['fork', 'sched_process_fork'],
    ] as const) {
      if (!inst.hasEvent('sched', event)) continue;
      const f = await readEventFormat(root, 'sched', event);
      if (!f) continue;
      await inst.enableEvent('sched', event);
      taskEvents[key] = f;
    }
  } catch (err) {
    await inst.remove().catch(() => undefined);
    throw err;
  }
  return {
    inst,
    stateOf,
    formats: { state: format, connectExit, retransmit, ...taskEvents },
    synRetransmits,
  };
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

/** Where a batch's records go. */
interface Feed {
  builder: TimelineBuilder;
  tasks: TraceTasks;
  stateOf: (state: number) => string;
  syn: SynRetransmitTracker;
  emit: (events: TraceEvent[]) => void;
  emitSlow: (events: SlowConnect[]) => void;
}

/** Feed one batch of decoded records, in order; returns how many state changes it held. */
function feedBatch(batch: RawBatch, to: Feed): number {
  let states = 0;
  for (let i = 0; i < batch.n; i++) {
    const kind = batch.ints[i * RAW_STRIDE];
    if (kind === KIND_STATE) {
      states++;
      to.emit(to.builder.stateChange(stateChangeAt(batch, i, to.stateOf, to.tasks)));
      continue;
    }
    if (kind === KIND_TASK) {
      to.tasks.forget(batch.ints[i * RAW_STRIDE + RAW_RET]!);
      to.tasks.forget(batch.ints[i * RAW_STRIDE + RAW_OLD]!);
      continue;
    }
    const ev = unpackEvent(batch, i);
    if (ev.kind === KIND_RETRANSMIT) {
      const r = synRetransmitFromFields(retransmitFields(ev), ev.timeNs / 1e6);
      if (r) to.emitSlow(to.syn.retransmit(r));
    } else if (ev.kind === KIND_CONNECT_EXIT) {
      // Paired by thread, with no /proc read: many failed connect()s are not TCP (a unix socket's).
      to.emit(to.builder.connectReturn({ timeMs: ev.timeNs / 1e6, tid: ev.tid, ret: ev.ret }));
    }
  }
  return states;
}

/**
 * Start tracing. Resolves once the tracefs instance exists and its events are enabled, so the
 * caller can start the traffic it wants to see right after.
 */
export async function startTrace(opts: TraceOptions = {}): Promise<RunningTrace> {
  const durationMs = Math.min(opts.durationMs ?? DEFAULT_TRACE_MS, MAX_TRACE_MS);
  const { inst, stateOf, formats, synRetransmits } = await openInstance(opts);
  const tasks = new TraceTasks(join(inst.root, 'saved_cmdlines'));
  const lookup = opts.lookup ?? tasks.lookup;
  const connectErrnos = formats.connectExit !== undefined;
  const bufferKb = inst.bufferKb();

  const startedMs = nowMs();
  const builder = new TimelineBuilder({
    now: nowMs,
    wallOffsetMs: Date.now() - startedMs,
    pollMs: opts.pollMs,
    connectErrnos,
    listenerOwner: tasks.listenerOwner,
    phases: opts.keep === false && opts.phases === false ? 'last' : 'all',
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

  let missed = 0;
  let eventsRead = 0;
  let lostAtEnd: number | undefined;
  const lostEvents = (): number => lostAtEnd ?? Math.max(inst.lostEvents()?.events ?? 0, missed);
  const feed: Feed = { builder, tasks, stateOf, syn, emit, emitSlow };
  const onBatch = (batch: RawBatch, missedSoFar: number): void => {
    missed = missedSoFar;
    eventsRead += feedBatch(batch, feed);
    lookups.schedule();
  };
  let raw: ReturnType<TraceInstance['readRaw']>;
  try {
    raw = inst.readRaw(formats, onBatch);
  } catch (err) {
    // Not readable here (a format the parser refuses, no per_cpu files): nothing is left behind.
    clearTimeout(timer);
    await lookups.stop();
    await inst.remove().catch(() => undefined);
    throw err;
  }
  const reader = raw.done;
  reader.then((r) => (missed = Math.max(missed, r.missed))).catch(() => undefined);
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

  // Ready when the reader reads: a worker still starting would put the first events behind.
  await raw.ready;
  return { instance: inst.name, startedMs, done, stop, lostEvents };
}
