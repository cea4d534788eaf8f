/**
 * The tracer's timeline builder on recorded event sequences, without root, tracefs or sock_diag:
 * the clock is a number the test moves, look-ups are answered by the test.
 *
 * The event sequences were recorded on Linux 6.18 (trace_pipe of a twlab tracefs instance with
 * sock:inet_sock_set_state and syscalls:sys_exit_connect, while `twlab trace --json` ran beside
 * it): loopback ones inside `twlab sandbox`, the two-host ones between a sandbox's client
 * (198.51.100.1) and server (198.51.100.2) as src/lab/close-sequences.ts drives them. Lines are
 * kept as the kernel ordered them, states in ss's names, times in seconds as trace_pipe printed
 * them; some sequences are trimmed to the connection under test. The look-up answers are what
 * sock_diag reported in those runs (idiag_expires), placed at the times the tracer asked.
 */
import { describe, expect, it } from 'vitest';
import type { MinisocketFound } from '../../src/observe/trace-diag.js';
import {
  REUSE_GRACE_MS,
  TimelineBuilder,
  type ConnectionTimeline,
  type FailedConnect,
  type TimelineOptions,
  type TraceEvent,
  type Transition,
} from '../../src/observe/trace-timeline.js';

/** A state change: [time s, pid, task, local, remote, old state, new state]. */
type StateRow = [number, number, string, string, string, string, string];
/** A sys_exit_connect with ret < 0: [time s, pid, ret]. */
type ExitRow = [number, number, number];
type Row = StateRow | ExitRow;
/** A minisocket sock_diag found: [local, remote, state, idiag_expires ms]. */
type FoundRow = [string, string, string, number];

function endpoint(text: string): { address: string; port: number } {
  const i = text.lastIndexOf(':');
  return { address: text.slice(0, i), port: Number(text.slice(i + 1)) };
}

const ms = (s: number): number => s * 1000;

/** A builder, the clock it reads, and everything it emitted. */
class Replay {
  clock = 0;
  readonly events: TraceEvent[] = [];
  readonly b: TimelineBuilder;

  /** `startS`: the clock when the trace started (the builder's first periodic look-up is pollMs later). */
  constructor(opts: Partial<TimelineOptions> = {}, startS = 0) {
    this.clock = ms(startS);
    this.b = new TimelineBuilder({ now: () => this.clock, connectErrnos: true, ...opts });
  }

  /** Feed rows as trace_pipe delivered them; the clock never runs behind the events read. */
  /** `netns`: the namespace of every row's task, or per row (a softirq row may run in another's). */
  /** `sk`: the socket (skaddr) of each row, when the test gives one. */
  feed(
    rows: Row[],
    netns?: number | ((row: StateRow) => number | undefined),
    sk?: (row: StateRow) => number | undefined,
  ): this {
    for (const row of rows) {
      this.clock = Math.max(this.clock, ms(row[0]));
      if (row.length === 3) {
        this.events.push(...this.b.connectReturn({ timeMs: ms(row[0]), tid: row[1], ret: row[2] }));
        continue;
      }
      const [t, pid, task, local, remote, oldState, newState] = row;
      this.events.push(
        ...this.b.stateChange({
          timeMs: ms(t),
          pid,
          task,
          family: 4,
          local: endpoint(local),
          remote: endpoint(remote),
          oldState,
          newState,
          netns: typeof netns === 'function' ? netns(row) : netns,
          sk: sk?.(row),
        }),
      );
    }
    return this;
  }

  /** One look-up begun at `atMs`, answered `costMs` later with `found`. */
  lookup(atMs: number, found: FoundRow[], opts: { costMs?: number; final?: boolean } = {}): TraceEvent[] {
    this.clock = atMs;
    const round = this.b.beginLookup();
    if (!round) return [];
    this.clock += opts.costMs ?? 1;
    const out = this.b.endLookup(round, this.answer(round.queries, found), opts.final);
    this.events.push(...out);
    return out;
  }

  /** What a look-up of `queries` returns when the table holds `found`. */
  answer(
    queries: { local: { port: number }; remote: { port: number } }[],
    found: FoundRow[],
  ): MinisocketFound[] {
    return found.flatMap(([local, remote, state, expiresMs]) =>
      queries
        .filter((q) => q.local.port === endpoint(local).port && q.remote.port === endpoint(remote).port)
        .map((q) => ({ ...(q as MinisocketFound), state, expiresMs })),
    );
  }

  end(): this {
    this.events.push(...this.b.end());
    return this;
  }

  transitions(localPort: number, remotePort: number): Transition[] {
    return this.events.filter(
      (e): e is Transition =>
        e.kind === 'transition' && e.local.port === localPort && e.remote.port === remotePort,
    );
  }

  timeline(localPort: number, remotePort: number): ConnectionTimeline[] {
    return this.events.filter(
      (e): e is ConnectionTimeline =>
        e.kind === 'connection' && e.local.port === localPort && e.remote.port === remotePort,
    );
  }

  failed(): FailedConnect[] {
    return this.events.filter((e): e is FailedConnect => e.kind === 'connect-failed');
  }
}

const steps = (ts: Transition[]): string[] => ts.map((t) => `${t.oldState}>${t.newState}:${t.source}`);
const phases = (c: ConnectionTimeline): string[] => c.phases.map((p) => `${p.state}:${p.source}`);

// Loopback, client closes first, then (1 s later) RFC 1337 assassination: the server's port
// connects to the client's TIME-WAIT 4-tuple, gets its ACK, answers with an RST that kills it.
const CLIENT_FIRST: StateRow[] = [
  [328.577532, 9975, 'python3', '127.0.0.1:7001', '0.0.0.0:0', 'CLOSE', 'LISTEN'],
  [328.580091, 9975, 'python3', '127.0.0.1:0', '127.0.0.1:7001', 'CLOSE', 'SYN-SENT'],
  [328.58017, 9975, 'python3', '127.0.0.1:41956', '127.0.0.1:7001', 'SYN-SENT', 'ESTAB'],
  [328.580176, 9975, 'python3', '127.0.0.1:7001', '127.0.0.1:41956', 'LISTEN', 'SYN-RECV'],
  [328.58018, 9975, 'python3', '127.0.0.1:7001', '127.0.0.1:41956', 'SYN-RECV', 'ESTAB'],
  [328.580254, 9975, 'python3', '127.0.0.1:41956', '127.0.0.1:7001', 'ESTAB', 'FIN-WAIT-1'],
  [328.580256, 9975, 'python3', '127.0.0.1:7001', '127.0.0.1:41956', 'ESTAB', 'CLOSE-WAIT'],
  [328.624086, 24, 'ksoftirqd/1', '127.0.0.1:41956', '127.0.0.1:7001', 'FIN-WAIT-1', 'FIN-WAIT-2'],
  [328.624092, 24, 'ksoftirqd/1', '127.0.0.1:41956', '127.0.0.1:7001', 'FIN-WAIT-2', 'CLOSE'],
];
const SERVER_CLOSES: StateRow[] = [
  [328.780647, 9975, 'python3', '127.0.0.1:7001', '127.0.0.1:41956', 'CLOSE-WAIT', 'LAST-ACK'],
  [328.780698, 9975, 'python3', '127.0.0.1:7001', '127.0.0.1:41956', 'LAST-ACK', 'CLOSE'],
];
const ASSASSINATION: Row[] = [
  [329.716032, 10023, -2], // ls: a connect() on a unix socket, not ours
  [329.78115, 9975, 'python3', '127.0.0.1:7001', '0.0.0.0:0', 'LISTEN', 'CLOSE'],
  [329.781278, 9975, 'python3', '127.0.0.1:7001', '127.0.0.1:41956', 'CLOSE', 'SYN-SENT'],
  [329.792106, 24, 'ksoftirqd/1', '127.0.0.1:7001', '127.0.0.1:41956', 'SYN-SENT', 'CLOSE'],
];
const CPORT = 41956;

describe('client closes first', () => {
  /** Up to the server's close: the client's minisocket seen in FIN-WAIT-2, then in TIME-WAIT. */
  function closed(): Replay {
    const r = new Replay().feed(CLIENT_FIRST);
    r.lookup(ms(328.627), [['127.0.0.1:41956', '127.0.0.1:7001', 'FIN-WAIT-2', 59_800]]);
    r.feed(SERVER_CLOSES);
    r.lookup(ms(328.784), [['127.0.0.1:41956', '127.0.0.1:7001', 'TIME-WAIT', 59_960]]);
    return r;
  }

  it('enters TIME-WAIT at the peer FIN (its CLOSE-WAIT -> LAST-ACK), on the side that closed first', () => {
    const r = closed();
    expect(steps(r.transitions(CPORT, 7001))).toEqual([
      'SYN-SENT>ESTAB:tracepoint',
      'ESTAB>FIN-WAIT-1:tracepoint',
      'FIN-WAIT-1>FIN-WAIT-2:tracepoint',
      'FIN-WAIT-2>CLOSE:tracepoint',
      'FIN-WAIT-2>TIME-WAIT:sock_diag',
    ]);
    const entered = r.transitions(CPORT, 7001).at(-1)!;
    expect(entered).toMatchObject({ timeMs: ms(328.780647), expiresMs: 59_960, pid: 9975, task: 'python3' });
    expect(entered.inOldStateMs).toBeCloseTo(ms(328.780647) - ms(328.624086), 6);
    expect(r.transitions(CPORT, 7001)[3]!.note).toMatch(/handed to a minisocket/);
    // The server's side is over at its LAST-ACK -> CLOSE: a passive close, accept() side, no TIME-WAIT.
    const [server] = r.timeline(7001, CPORT);
    expect(server).toMatchObject({ role: 'server', closedFirst: false, complete: true, pid: 9975 });
    expect(server!.timeWait).toBeUndefined();
    expect(phases(server!)).toEqual([
      'SYN-RECV:tracepoint',
      'ESTAB:tracepoint',
      'CLOSE-WAIT:tracepoint',
      'LAST-ACK:tracepoint',
      'CLOSE:tracepoint',
    ]);
    // The client's timeline is still open (its TIME-WAIT goes on).
    expect(r.timeline(CPORT, 7001)).toEqual([]);
  });

  it('RST in TIME-WAIT: gone long before its timer is "early", classified once the grace period is over', () => {
    const r = closed().feed(ASSASSINATION);
    // The assassin's own connect() from the server port: a client timeline of its own, no errno
    // (python's connect with a timeout is nonblocking: EINPROGRESS is filtered out).
    expect(r.timeline(7001, CPORT)[1]).toMatchObject({ role: 'client', complete: true });
    expect(phases(r.timeline(7001, CPORT)[1]!)).toEqual(['SYN-SENT:tracepoint', 'CLOSE:tracepoint']);
    const gone = ms(329.834);
    expect(r.lookup(gone, [])).toEqual([]); // gone: wait for a reusing connect() event
    expect(r.lookup(gone + REUSE_GRACE_MS - 1, [])).toEqual([]);
    const out = r.lookup(gone + REUSE_GRACE_MS + 1, []);
    expect(steps(out.filter((e): e is Transition => e.kind === 'transition'))).toEqual([
      'TIME-WAIT>CLOSE:sock_diag',
    ]);
    const [client] = r.timeline(CPORT, 7001);
    expect(client).toMatchObject({ role: 'client', closedFirst: true, complete: true });
    expect(phases(client!)).toEqual([
      'SYN-SENT:tracepoint',
      'ESTAB:tracepoint',
      'FIN-WAIT-1:tracepoint',
      'FIN-WAIT-2:tracepoint',
      'TIME-WAIT:sock_diag',
      'CLOSE:sock_diag',
    ]);
    // Ended when first seen gone; the timer was read 1 ms after the look-up began.
    expect(client!.timeWait).toEqual({
      enteredMs: ms(328.780647),
      expiresMs: 59_960,
      expectedEndMs: ms(328.784) + 1 + 59_960,
      endedMs: ms(329.834),
      endReason: 'early',
    });
    expect(r.transitions(CPORT, 7001).at(-1)!.note).toMatch(
      /^gone 58\.9 s before its timer: killed by a segment/,
    );
    expect(r.end().failed()).toEqual([]);
  });

  it('the end of a TIME-WAIT at its timer is "expired", without a grace period', () => {
    const r = closed();
    expect(r.lookup(ms(388.5), []).filter((e) => e.kind === 'connection')).toHaveLength(1);
    expect(r.timeline(CPORT, 7001)[0]!.timeWait).toMatchObject({ endReason: 'expired', endedMs: ms(388.5) });
  });

  it('a TIME-WAIT still there when the trace ends: "trace-ended", the timeline unfinished', () => {
    const r = closed();
    r.lookup(ms(330), [['127.0.0.1:41956', '127.0.0.1:7001', 'TIME-WAIT', 58_700]], { final: true });
    const [client] = r.end().timeline(CPORT, 7001);
    expect(client).toMatchObject({ complete: false, timeWait: { endReason: 'trace-ended' } });
    expect(client!.timeWait!.endedMs).toBeUndefined();
    expect(phases(client!).at(-1)).toBe('TIME-WAIT:sock_diag');
  });

  it('minisocket gone before the first look-up: no TIME-WAIT, the timeline ends at its close, and says why', () => {
    const r = new Replay().feed(CLIENT_FIRST);
    r.lookup(ms(328.627), []);
    const [client] = r.timeline(CPORT, 7001);
    expect(client).toMatchObject({ closedFirst: true, complete: true });
    expect(client!.timeWait).toBeUndefined();
    expect(client!.note).toMatch(/no minisocket for it: another network namespace/);
    expect(client!.phases.at(-1)).toMatchObject({
      state: 'CLOSE',
      source: 'tracepoint',
      startMs: ms(328.624092),
    });
    expect(steps(r.transitions(CPORT, 7001)).filter((s) => s.endsWith('sock_diag'))).toEqual([]);
  });

  it('a look-up that sees TIME-WAIT before the peer FIN event is read waits for it (grace period)', () => {
    const r = new Replay().feed(CLIENT_FIRST);
    r.lookup(ms(328.627), [['127.0.0.1:41956', '127.0.0.1:7001', 'FIN-WAIT-2', 59_800]]);
    const tw: FoundRow[] = [['127.0.0.1:41956', '127.0.0.1:7001', 'TIME-WAIT', 59_990]];
    // The kernel already moved it; the LAST-ACK event is still in trace_pipe.
    expect(r.lookup(ms(328.79), tw)).toEqual([]);
    r.feed(SERVER_CLOSES);
    const [entered] = r.lookup(ms(328.84), tw);
    expect(entered).toMatchObject({ newState: 'TIME-WAIT', timeMs: ms(328.780647), expiresMs: 59_990 });
  });

  it('first seen already in TIME-WAIT, the peer FIN not yet read (a reader behind): it waits for that FIN', () => {
    const r = new Replay().feed(CLIENT_FIRST);
    const tw: FoundRow[] = [['127.0.0.1:41956', '127.0.0.1:7001', 'TIME-WAIT', 59_990]];
    expect(r.lookup(ms(328.79), tw)).toEqual([]);
    r.feed(SERVER_CLOSES);
    const [entered] = r.lookup(ms(328.85), tw);
    expect(entered).toMatchObject({ newState: 'TIME-WAIT', timeMs: ms(328.780647) });
  });

  it('the peer FIN never traced: after the grace period the entry is the first look-up that saw TIME-WAIT', () => {
    const r = new Replay().feed(CLIENT_FIRST);
    r.lookup(ms(328.627), [['127.0.0.1:41956', '127.0.0.1:7001', 'FIN-WAIT-2', 59_800]]);
    const tw: FoundRow[] = [['127.0.0.1:41956', '127.0.0.1:7001', 'TIME-WAIT', 59_990]];
    expect(r.lookup(ms(328.79), tw)).toEqual([]);
    expect(r.lookup(ms(328.93), tw)).toEqual([]); // 140 ms: still within the grace period
    const [entered] = r.lookup(ms(328.79) + REUSE_GRACE_MS + 1, tw);
    expect(entered).toMatchObject({ newState: 'TIME-WAIT', timeMs: ms(328.79), expiresMs: 59_990 });
  });
});

// Two hosts, the server closes first (lab close-sequences "server-first"). Pid 11666 is the
// client host's agent, 11668 the server's: the kernel runs the server's handshake and its
// FIN-WAIT-1 -> FIN-WAIT-2 in whichever task was on the CPU (here the client's).
const SERVER_FIRST: StateRow[] = [
  [370.158796, 11668, 'node', '0.0.0.0:7011', '0.0.0.0:0', 'CLOSE', 'LISTEN'],
  [370.287494, 11666, 'node', '198.51.100.1:0', '198.51.100.2:7011', 'CLOSE', 'SYN-SENT'],
  [370.287607, 11666, 'node', '198.51.100.1:58084', '198.51.100.2:7011', 'SYN-SENT', 'ESTAB'],
  [370.287613, 11666, 'node', '198.51.100.2:7011', '198.51.100.1:58084', 'LISTEN', 'SYN-RECV'],
  [370.287635, 11666, 'node', '198.51.100.2:7011', '198.51.100.1:58084', 'SYN-RECV', 'ESTAB'],
  [370.317532, 11668, 'node', '198.51.100.2:7011', '198.51.100.1:58084', 'ESTAB', 'FIN-WAIT-1'],
  [370.317587, 11668, 'node', '198.51.100.1:58084', '198.51.100.2:7011', 'ESTAB', 'CLOSE-WAIT'],
  [370.320464, 11666, 'node', '198.51.100.2:7011', '198.51.100.1:58084', 'FIN-WAIT-1', 'FIN-WAIT-2'],
  [370.320471, 11666, 'node', '198.51.100.2:7011', '198.51.100.1:58084', 'FIN-WAIT-2', 'CLOSE'],
  [370.324558, 11666, 'node', '198.51.100.1:58084', '198.51.100.2:7011', 'CLOSE-WAIT', 'LAST-ACK'],
  [370.324594, 11666, 'node', '198.51.100.1:58084', '198.51.100.2:7011', 'LAST-ACK', 'CLOSE'],
  [370.325059, 11668, 'node', '0.0.0.0:7011', '0.0.0.0:0', 'LISTEN', 'CLOSE'],
];

describe('server closes first', () => {
  it('the TIME-WAIT is on the accept() side, entered at the client FIN; the client closes passively', () => {
    const r = new Replay({}, 370.15).feed(SERVER_FIRST.slice(0, 9));
    // Asked for 3 ms after the minisocket close.
    expect(r.b.nextLookupAt()).toBeCloseTo(ms(370.320471) + 3, 6);
    r.lookup(ms(370.3235), [['198.51.100.2:7011', '198.51.100.1:58084', 'FIN-WAIT-2', 59_990]]);
    r.feed(SERVER_FIRST.slice(9));
    r.lookup(ms(370.3275), [['198.51.100.2:7011', '198.51.100.1:58084', 'TIME-WAIT', 59_996]]);
    const [server] = r.end().timeline(7011, 58084);
    // Owned by the listener's holder, then by the task of its own close(): never the client's pid.
    expect(server).toMatchObject({ role: 'server', closedFirst: true, pid: 11668, complete: false });
    expect(server!.pidFrom).toBe('syscall');
    expect(new Set(r.transitions(7011, 58084).map((t) => t.pid))).toEqual(new Set([11668]));
    expect(new Set(r.transitions(58084, 7011).map((t) => t.pid))).toEqual(new Set([11666]));
    expect(server!.timeWait).toMatchObject({ enteredMs: ms(370.324558), endReason: 'trace-ended' });
    const [client] = r.timeline(58084, 7011);
    expect(client).toMatchObject({ role: 'client', closedFirst: false, complete: true, pid: 11666 });
    expect(client!.timeWait).toBeUndefined();
    expect(phases(client!)).toEqual([
      'SYN-SENT:tracepoint',
      'ESTAB:tracepoint',
      'CLOSE-WAIT:tracepoint',
      'LAST-ACK:tracepoint',
      'CLOSE:tracepoint',
    ]);
  });
});

// Two hosts, link down while both close, up 300 ms later: the FINs cross (lab "simultaneous").
const SIMULTANEOUS: StateRow[] = [
  [365.207217, 11546, 'node', '198.51.100.1:0', '198.51.100.2:7010', 'CLOSE', 'SYN-SENT'],
  [365.207367, 11546, 'node', '198.51.100.1:58240', '198.51.100.2:7010', 'SYN-SENT', 'ESTAB'],
  [365.207384, 11546, 'node', '198.51.100.2:7010', '198.51.100.1:58240', 'LISTEN', 'SYN-RECV'],
  [365.207389, 11546, 'node', '198.51.100.2:7010', '198.51.100.1:58240', 'SYN-RECV', 'ESTAB'],
  [365.321482, 11547, 'node', '198.51.100.2:7010', '198.51.100.1:58240', 'ESTAB', 'FIN-WAIT-1'],
  [365.32226, 11546, 'node', '198.51.100.1:58240', '198.51.100.2:7010', 'ESTAB', 'FIN-WAIT-1'],
  [365.709921, 11547, 'node', '0.0.0.0:7010', '0.0.0.0:0', 'LISTEN', 'CLOSE'],
  [365.956111, 11586, 'node', '198.51.100.2:7010', '198.51.100.1:58240', 'FIN-WAIT-1', 'CLOSING'],
  [365.956118, 11586, 'node', '198.51.100.1:58240', '198.51.100.2:7010', 'FIN-WAIT-1', 'CLOSING'],
  [365.956126, 11586, 'node', '198.51.100.1:58240', '198.51.100.2:7010', 'CLOSING', 'CLOSE'],
  [365.95614, 11586, 'node', '198.51.100.2:7010', '198.51.100.1:58240', 'CLOSING', 'CLOSE'],
];

describe('simultaneous close', () => {
  it('both sides closed first, both get a TIME-WAIT entered at their own CLOSING -> CLOSE', () => {
    const r = new Replay({ pollMs: 100 }).feed(SIMULTANEOUS);
    r.lookup(ms(366.0174), [
      ['198.51.100.1:58240', '198.51.100.2:7010', 'TIME-WAIT', 59_880],
      ['198.51.100.2:7010', '198.51.100.1:58240', 'TIME-WAIT', 59_884],
    ]);
    expect(steps(r.transitions(58240, 7010)).slice(-3)).toEqual([
      'FIN-WAIT-1>CLOSING:tracepoint',
      'CLOSING>CLOSE:tracepoint',
      'CLOSING>TIME-WAIT:sock_diag',
    ]);
    const final = r.lookup(
      ms(368.765),
      [
        ['198.51.100.1:58240', '198.51.100.2:7010', 'TIME-WAIT', 57_188],
        ['198.51.100.2:7010', '198.51.100.1:58240', 'TIME-WAIT', 57_192],
      ],
      { final: true },
    );
    expect(final.map((e) => e.kind)).toEqual(['connection', 'connection']);
    r.end();
    for (const [local, remote, role, closeS] of [
      [58240, 7010, 'client', 365.956126],
      [7010, 58240, 'server', 365.95614],
    ] as const) {
      const [c] = r.timeline(local, remote);
      expect(c).toMatchObject({ role, closedFirst: true, complete: false });
      expect(c!.timeWait).toMatchObject({ enteredMs: ms(closeS), endReason: 'trace-ended' });
      expect(phases(c!).slice(-2)).toEqual(['CLOSING:tracepoint', 'TIME-WAIT:sock_diag']);
    }
  });
});

// Two hosts, the client sets SO_LINGER {1, 0} and closes: an RST, no FIN (lab "rst").
const ABORT: StateRow[] = [
  [373.083912, 11717, 'node', '198.51.100.1:0', '198.51.100.2:7012', 'CLOSE', 'SYN-SENT'],
  [373.084079, 11717, 'node', '198.51.100.1:52424', '198.51.100.2:7012', 'SYN-SENT', 'ESTAB'],
  [373.084085, 11717, 'node', '198.51.100.2:7012', '198.51.100.1:52424', 'LISTEN', 'SYN-RECV'],
  [373.08409, 11717, 'node', '198.51.100.2:7012', '198.51.100.1:52424', 'SYN-RECV', 'ESTAB'],
  [373.090908, 11717, 'node', '198.51.100.1:52424', '198.51.100.2:7012', 'ESTAB', 'CLOSE'],
  [373.090923, 11717, 'node', '198.51.100.2:7012', '198.51.100.1:52424', 'ESTAB', 'CLOSE'],
];

it('abortive close (RST): both timelines end at once, nobody closed first, no look-up wanted', () => {
  const r = new Replay().feed(ABORT);
  expect(r.b.beginLookup()).toBeUndefined();
  for (const [local, remote] of [
    [52424, 7012],
    [7012, 52424],
  ]) {
    expect(r.timeline(local!, remote!)[0]).toMatchObject({ closedFirst: false, complete: true });
  }
});

// Loopback, a 2-port range, tcp_tw_reuse=0: two connects take both ports (the listener never
// accepts, the clients close at once), two fail with EADDRNOTAVAIL; then a connect() to another
// port (filtered out of the trace) fails with ECONNREFUSED; the listener closes 0.5 s later,
// resetting its unaccepted peers, whose FIN-WAIT-2 minisockets vanish.
const OUT_OF_PORTS: Row[] = [
  [337.023472, 10337, 'python3', '127.0.0.1:0', '127.0.0.1:7003', 'CLOSE', 'SYN-SENT'],
  [337.023521, 10337, 'python3', '127.0.0.1:50000', '127.0.0.1:7003', 'SYN-SENT', 'ESTAB'],
  [337.023527, 10337, 'python3', '127.0.0.1:7003', '127.0.0.1:50000', 'LISTEN', 'SYN-RECV'],
  [337.023532, 10337, 'python3', '127.0.0.1:7003', '127.0.0.1:50000', 'SYN-RECV', 'ESTAB'],
  [337.023542, 10337, 'python3', '127.0.0.1:50000', '127.0.0.1:7003', 'ESTAB', 'FIN-WAIT-1'],
  [337.023547, 10337, 'python3', '127.0.0.1:7003', '127.0.0.1:50000', 'ESTAB', 'CLOSE-WAIT'],
  [337.023563, 10337, 'python3', '127.0.0.1:0', '127.0.0.1:7003', 'CLOSE', 'SYN-SENT'],
  [337.023569, 10337, 'python3', '127.0.0.1:50001', '127.0.0.1:7003', 'SYN-SENT', 'ESTAB'],
  [337.02357, 10337, 'python3', '127.0.0.1:7003', '127.0.0.1:50001', 'LISTEN', 'SYN-RECV'],
  [337.023571, 10337, 'python3', '127.0.0.1:7003', '127.0.0.1:50001', 'SYN-RECV', 'ESTAB'],
  [337.023576, 10337, 'python3', '127.0.0.1:50001', '127.0.0.1:7003', 'ESTAB', 'FIN-WAIT-1'],
  [337.023577, 10337, 'python3', '127.0.0.1:7003', '127.0.0.1:50001', 'ESTAB', 'CLOSE-WAIT'],
  [337.023586, 10337, 'python3', '127.0.0.1:0', '127.0.0.1:7003', 'CLOSE', 'SYN-SENT'],
  [337.023587, 10337, 'python3', '127.0.0.1:0', '127.0.0.1:7003', 'SYN-SENT', 'CLOSE'],
  [337.023588, 10337, -99],
  [337.023611, 10337, 'python3', '127.0.0.1:0', '127.0.0.1:7003', 'CLOSE', 'SYN-SENT'],
  [337.023612, 10337, 'python3', '127.0.0.1:0', '127.0.0.1:7003', 'SYN-SENT', 'CLOSE'],
  [337.023612, 10337, -99],
  [337.023638, 10337, -111],
  [337.024091, 0, '<idle>', '127.0.0.1:50001', '127.0.0.1:7003', 'FIN-WAIT-1', 'FIN-WAIT-2'],
  [337.024094, 0, '<idle>', '127.0.0.1:50001', '127.0.0.1:7003', 'FIN-WAIT-2', 'CLOSE'],
  [337.024097, 0, '<idle>', '127.0.0.1:50000', '127.0.0.1:7003', 'FIN-WAIT-1', 'FIN-WAIT-2'],
  [337.024098, 0, '<idle>', '127.0.0.1:50000', '127.0.0.1:7003', 'FIN-WAIT-2', 'CLOSE'],
];
const LISTENER_CLOSES: StateRow[] = [
  [337.527526, 10337, 'python3', '127.0.0.1:7003', '0.0.0.0:0', 'LISTEN', 'CLOSE'],
  [337.527532, 10337, 'python3', '127.0.0.1:7003', '127.0.0.1:50000', 'CLOSE-WAIT', 'CLOSE'],
  [337.527574, 10337, 'python3', '127.0.0.1:7003', '127.0.0.1:50001', 'CLOSE-WAIT', 'CLOSE'],
];

// Loopback, nobody listens on 7005: two connect()s refused, each with its own local port.
const REFUSED: Row[] = [
  [346.180075, 10756, 'python3', '127.0.0.1:0', '127.0.0.1:7005', 'CLOSE', 'SYN-SENT'],
  [346.180128, 10756, 'python3', '127.0.0.1:50718', '127.0.0.1:7005', 'SYN-SENT', 'CLOSE'],
  [346.180133, 10756, -111],
  [346.181479, 10756, 'python3', '127.0.0.1:0', '127.0.0.1:7005', 'CLOSE', 'SYN-SENT'],
  [346.181498, 10756, 'python3', '127.0.0.1:50728', '127.0.0.1:7005', 'SYN-SENT', 'CLOSE'],
  [346.1815, 10756, -111],
];

describe('failed connect()', () => {
  it('EADDRNOTAVAIL: each failure with pid, task, destination, local port 0 and the errno time', () => {
    const r = new Replay().feed(OUT_OF_PORTS);
    expect(r.failed()).toEqual(
      [337.023588, 337.023612].map((t) => ({
        kind: 'connect-failed',
        timeMs: ms(t),
        time: new Date(ms(t)).toISOString(),
        errno: 'EADDRNOTAVAIL',
        code: 99,
        pid: 10337,
        task: 'python3',
        family: 4,
        remote: { address: '127.0.0.1', port: 7003 },
        localPort: 0,
        netns: undefined,
      })),
    );
    const zero = r.events.filter((e): e is Transition => e.kind === 'transition' && e.local.port === 0);
    expect(zero.filter((t) => t.oldState === 'SYN-SENT').map((t) => t.note)).toEqual([
      'connect() found no free local port',
      'connect() found no free local port',
    ]);
    // The ECONNREFUSED of a connect() the trace did not see is not paired with anything.
    expect(r.end().failed()).toHaveLength(2);
  });

  it('the two that got a port: orphaned FIN-WAIT-2 minisockets, gone without a TIME-WAIT when the listener resets them', () => {
    const r = new Replay().feed(OUT_OF_PORTS);
    const fw2: FoundRow[] = [
      ['127.0.0.1:50000', '127.0.0.1:7003', 'FIN-WAIT-2', 59_990],
      ['127.0.0.1:50001', '127.0.0.1:7003', 'FIN-WAIT-2', 59_990],
    ];
    r.lookup(ms(337.03), fw2);
    r.lookup(ms(337.23), fw2);
    r.feed(LISTENER_CLOSES);
    r.lookup(ms(337.531), []);
    for (const port of [50000, 50001]) {
      const [c] = r.timeline(port, 7003);
      expect(c).toMatchObject({ role: 'client', closedFirst: true, complete: true, pid: 10337 });
      expect(c!.timeWait).toBeUndefined();
      expect(c!.note).toMatch(/FIN-WAIT-2 minisocket left the table without a TIME-WAIT/);
      expect(phases(c!).slice(-2)).toEqual(['FIN-WAIT-2:tracepoint', 'CLOSE:sock_diag']);
      expect(c!.phases.at(-1)!.startMs).toBe(ms(337.531));
    }
  });

  it('ECONNREFUSED: the local port the kernel had picked, and a client timeline SYN-SENT > CLOSE', () => {
    const r = new Replay().feed(REFUSED);
    expect(r.failed().map((f) => [f.errno, f.code, f.localPort, f.timeMs])).toEqual([
      ['ECONNREFUSED', 111, 50718, ms(346.180133)],
      ['ECONNREFUSED', 111, 50728, ms(346.1815)],
    ]);
    expect(phases(r.timeline(50718, 7005)[0]!)).toEqual(['SYN-SENT:tracepoint', 'CLOSE:tracepoint']);
    expect(r.timeline(50718, 7005)[0]).toMatchObject({ role: 'client', closedFirst: false, complete: true });
  });

  it('an errno read before its SYN-SENT -> CLOSE (another CPU buffer) is paired all the same', () => {
    const [start, fail, exit] = REFUSED as [Row, Row, Row];
    const r = new Replay().feed([start, exit, fail]);
    expect(r.failed()).toMatchObject([{ errno: 'ECONNREFUSED', localPort: 50718, timeMs: ms(346.180133) }]);
  });

  it("a failed connect() of another socket in between (a unix socket's) is not the next attempt's errno", () => {
    const [start, fail, exit] = REFUSED as [Row, Row, Row];
    // Connected first, then ENOENT from the same thread, then the refused attempt and its errno.
    const connected: Row[] = [
      [346.17, 10756, 'python3', '127.0.0.1:0', '127.0.0.1:7005', 'CLOSE', 'SYN-SENT'],
      [346.170001, 10756, 'python3', '127.0.0.1:50700', '127.0.0.1:7005', 'SYN-SENT', 'ESTAB'],
      [346.175, 10756, -2],
    ];
    const r = new Replay().feed([...connected, start, fail, exit]);
    expect(r.failed()).toMatchObject([{ errno: 'ECONNREFUSED', localPort: 50718, timeMs: ms(346.180133) }]);
    // And one before any attempt (the interpreter's own start-up) neither.
    const r2 = new Replay().feed([[346.1, 10756, -2], start, fail, exit]);
    expect(r2.failed()).toMatchObject([{ errno: 'ECONNREFUSED', localPort: 50718 }]);
  });

  it('without sys_exit_connect: the port-allocation failures are reported at the end, errno unknown', () => {
    const r = new Replay({ connectErrnos: false }).feed(
      OUT_OF_PORTS.filter((row) => row.length !== 3).slice(12, 14),
    );
    expect(r.failed()).toEqual([]);
    expect(r.end().failed()).toMatchObject([
      { errno: null, code: null, localPort: 0, pid: 10337, timeMs: ms(337.023586) },
    ]);
  });
});

// Loopback, the only port 50000, tcp_tw_reuse=1: a second connect() 1.5 s later takes over the
// first connection's TIME-WAIT 4-tuple.
const REUSE_FIRST: StateRow[] = [
  [351.192966, 11041, 'python3', '127.0.0.1:0', '127.0.0.1:7007', 'CLOSE', 'SYN-SENT'],
  [351.193036, 11041, 'python3', '127.0.0.1:50000', '127.0.0.1:7007', 'SYN-SENT', 'ESTAB'],
  [351.193042, 11041, 'python3', '127.0.0.1:7007', '127.0.0.1:50000', 'LISTEN', 'SYN-RECV'],
  [351.193046, 11041, 'python3', '127.0.0.1:7007', '127.0.0.1:50000', 'SYN-RECV', 'ESTAB'],
  [351.19308, 11041, 'python3', '127.0.0.1:50000', '127.0.0.1:7007', 'ESTAB', 'FIN-WAIT-1'],
  [351.193084, 11041, 'python3', '127.0.0.1:7007', '127.0.0.1:50000', 'ESTAB', 'CLOSE-WAIT'],
  [351.196055, 0, '<idle>', '127.0.0.1:50000', '127.0.0.1:7007', 'FIN-WAIT-1', 'FIN-WAIT-2'],
  [351.196058, 0, '<idle>', '127.0.0.1:50000', '127.0.0.1:7007', 'FIN-WAIT-2', 'CLOSE'],
  [351.293391, 11041, 'python3', '127.0.0.1:7007', '127.0.0.1:50000', 'CLOSE-WAIT', 'LAST-ACK'],
  [351.293437, 11041, 'python3', '127.0.0.1:7007', '127.0.0.1:50000', 'LAST-ACK', 'CLOSE'],
];
const REUSE_SECOND: StateRow[] = [
  [352.795343, 11041, 'python3', '127.0.0.1:0', '127.0.0.1:7007', 'CLOSE', 'SYN-SENT'],
  [352.795423, 11041, 'python3', '127.0.0.1:50000', '127.0.0.1:7007', 'SYN-SENT', 'ESTAB'],
  [352.79543, 11041, 'python3', '127.0.0.1:7007', '127.0.0.1:50000', 'LISTEN', 'SYN-RECV'],
  [352.795434, 11041, 'python3', '127.0.0.1:7007', '127.0.0.1:50000', 'SYN-RECV', 'ESTAB'],
];
const TW_50000: FoundRow[] = [['127.0.0.1:50000', '127.0.0.1:7007', 'TIME-WAIT', 59_972]];

describe('a new connection on a TIME-WAIT 4-tuple (tcp_tw_reuse)', () => {
  function inTimeWait(): Replay {
    const r = new Replay().feed(REUSE_FIRST);
    r.lookup(ms(351.2), [['127.0.0.1:50000', '127.0.0.1:7007', 'FIN-WAIT-2', 59_990]]);
    r.lookup(ms(351.3), TW_50000);
    expect(r.transitions(50000, 7007).at(-1)).toMatchObject({
      newState: 'TIME-WAIT',
      timeMs: ms(351.293391),
    });
    return r;
  }

  it('ends the TIME-WAIT as "reused" at the new connect(), and starts a new timeline', () => {
    const r = inTimeWait().feed(REUSE_SECOND).end();
    const [first, second] = r.timeline(50000, 7007);
    expect(first!.timeWait).toMatchObject({ endReason: 'reused', endedMs: ms(352.795343) });
    expect(phases(first!).slice(-2)).toEqual(['TIME-WAIT:sock_diag', 'CLOSE:sock_diag']);
    expect(second).toMatchObject({
      role: 'client',
      complete: false,
      phases: [{ state: 'SYN-SENT' }, { state: 'ESTAB' }],
    });
  });

  it('gone in a look-up before the reusing connect() is read: the grace period keeps it from being called "early"', () => {
    const r = inTimeWait();
    expect(r.lookup(ms(352.8), [])).toEqual([]);
    r.feed(REUSE_SECOND);
    expect(r.timeline(50000, 7007)[0]!.timeWait).toMatchObject({ endReason: 'reused' });
  });

  it('a look-up answered late (after the new connection started): its stale answer leaves both alone', () => {
    const r = inTimeWait();
    r.clock = ms(352.79);
    const round = r.b.beginLookup()!;
    expect(round.queries).toEqual([
      {
        family: 4,
        local: { address: '127.0.0.1', port: 50000 },
        remote: { address: '127.0.0.1', port: 7007 },
        netns: undefined,
      },
    ]);
    expect(r.b.nextLookupAt()).toBeUndefined(); // one look-up at a time
    r.feed(REUSE_SECOND);
    r.clock = ms(352.9);
    expect(r.b.endLookup(round, r.answer(round.queries, TW_50000))).toEqual([]);
    const [first] = r.timeline(50000, 7007);
    expect(first!.timeWait).toMatchObject({ endReason: 'reused' });
    // The new connection has no TIME-WAIT and is not waiting for one.
    expect(r.b.beginLookup()).toBeUndefined();
  });
});

describe('look-up schedule', () => {
  it('3 ms after an event that needs one, every pollMs while minisockets are watched, spaced by twice the last cost', () => {
    let clock = 1000;
    const b = new TimelineBuilder({ now: () => clock, pollMs: 200 });
    expect(b.nextLookupAt()).toBe(1200); // the periodic look-up (finds nothing to look up)
    b.stateChange({
      timeMs: 1000,
      pid: 1,
      task: 't',
      family: 4,
      local: { address: '127.0.0.1', port: 40000 },
      remote: { address: '127.0.0.1', port: 80 },
      oldState: 'FIN-WAIT-2',
      newState: 'CLOSE',
    });
    expect(b.nextLookupAt()).toBe(1003);
    clock = 1003;
    const round = b.beginLookup()!;
    expect(round.askedMs).toBe(1003);
    expect(b.nextLookupAt()).toBeUndefined();
    clock = 1053; // a 50 ms dump
    b.endLookup(round, [{ ...round.queries[0]!, state: 'FIN-WAIT-2', expiresMs: 59_000 }]);
    expect(b.nextLookupAt()).toBe(1203);
    // An event on the reversed 4-tuple (the peer's FIN) asks for one: no sooner than 2 x 50 ms.
    clock = 1060;
    b.stateChange({
      timeMs: 1060,
      pid: 2,
      task: 'u',
      family: 4,
      local: { address: '127.0.0.1', port: 80 },
      remote: { address: '127.0.0.1', port: 40000 },
      oldState: 'CLOSE-WAIT',
      newState: 'LAST-ACK',
    });
    expect(b.nextLookupAt()).toBe(1103);
    expect(() => b.endLookup(round, [])).toThrow(/not the look-up in flight/);
  });
});

describe('owner of an accepted connection whose listen() was before the trace', () => {
  const rows = SERVER_FIRST.slice(1, 9);
  it('asks opts.listenerOwner once per listener; the close() confirms it', () => {
    const asked: unknown[] = [];
    const listenerOwner = (local: unknown, netns: number | undefined) => {
      asked.push([local, netns]);
      return { pid: 11668, task: 'node', netns: 7 };
    };
    // The client host's tasks are in namespace 6, the server's (11668) in 7.
    const r = new Replay({ listenerOwner }, 370.15).feed(rows, (row) => (row[1] === 11668 ? 7 : 6));
    expect(asked).toEqual([[{ address: '198.51.100.2', port: 7011 }, 6]]);
    const [syn, estab] = r.transitions(7011, 58084);
    expect(syn).toMatchObject({ oldState: 'LISTEN', pid: 11668, netns: 7 });
    expect(estab).toMatchObject({ newState: 'ESTAB', pid: 11668, netns: 7 });
    const [server] = r.end().timeline(7011, 58084);
    expect(server).toMatchObject({ pid: 11668, pidFrom: 'syscall', netns: 7 });
  });

  it('without it, unknown (pid 0) until its close() names the holder', () => {
    const r = new Replay({}, 370.15).feed(rows);
    const [syn, , fin1] = r.transitions(7011, 58084);
    expect(syn).toMatchObject({ pid: 0, task: '?' });
    expect(fin1).toMatchObject({ newState: 'FIN-WAIT-1', pid: 11668 });
  });
});

describe('network namespaces', () => {
  it('the same 4-tuple in two namespaces: two connections, each looked up and classified in its own', () => {
    const r = new Replay().feed(CLIENT_FIRST, 111).feed(CLIENT_FIRST, 222);
    r.clock = ms(328.627);
    const round = r.b.beginLookup()!;
    expect(round.queries.map((q) => q.netns)).toEqual([111, 222]);
    // Namespace 111 still holds the minisocket; 222's is gone (say tcp_max_tw_buckets).
    const found = round.queries
      .filter((q) => q.netns === 111)
      .map((q) => ({ ...q, state: 'TIME-WAIT', expiresMs: 60_000 }));
    r.events.push(...r.b.endLookup(round, found));
    // No peer FIN traced yet: 111's entry waits out the grace period for it, then is taken as seen.
    r.lookup(ms(328.627) + REUSE_GRACE_MS + 1, [['127.0.0.1:41956', '127.0.0.1:7001', 'TIME-WAIT', 60_000]]);
    const [gone, ...rest] = r.timeline(CPORT, 7001);
    expect(rest).toEqual([]);
    expect(gone).toMatchObject({ netns: 222, complete: true });
    expect(gone!.note).toMatch(/no minisocket/);
    const entered = r.transitions(CPORT, 7001).filter((t) => t.source === 'sock_diag');
    expect(entered).toHaveLength(1);
    const [open] = r.end().timeline(CPORT, 7001).slice(1);
    expect(open).toMatchObject({ netns: 111, timeWait: { expiresMs: 60_000 }, closedFirst: true });
  });

  it("softirq events in another task's namespace (ksoftirqd: the host's) still find their connection", () => {
    const hint = (ns: number) => (row: StateRow) => (row[2].startsWith('ksoftirqd') ? 1 : ns);
    const r = new Replay().feed(CLIENT_FIRST, hint(111)).feed(CLIENT_FIRST, hint(222));
    const round = r.b.beginLookup()!;
    expect(round.queries.map((q) => q.netns)).toEqual([111, 222]);
    r.events.push(...r.b.endLookup(round, []));
    expect(r.timeline(CPORT, 7001).map((c) => [c.netns, c.pid, c.pidFrom])).toEqual([
      [111, 9975, 'syscall'],
      [222, 9975, 'syscall'],
    ]);
  });

  it('the same 4-tuple open in two namespaces at once, softirq events hinting the other one: the socket (skaddr) decides', () => {
    // Each namespace's client and server sockets; ksoftirqd ran both namespaces' FINs while
    // namespace 222's task was current, so 111's softirq events hint 222, where the same 4-tuple is open too.
    const r = new Replay();
    const socketOf = (ns: number) => (row: StateRow) =>
      ns * 10 + (row[3].endsWith(':7001') ? 1 : row[5] === 'LISTEN' ? 2 : 3);
    for (const row of CLIENT_FIRST) {
      for (const ns of [111, 222]) r.feed([row], row[2].startsWith('ksoftirqd') ? 222 : ns, socketOf(ns));
    }
    const round = r.b.beginLookup()!;
    // One minisocket phase each, looked up in its own namespace (by the hint alone: both in 222).
    expect(round.queries.map((q) => q.netns).sort()).toEqual([111, 222]);
    r.events.push(...r.b.endLookup(round, r.answer(round.queries, [])));
    const ended = r.timeline(CPORT, 7001);
    expect(ended.map((c) => c.netns).sort()).toEqual([111, 222]);
    for (const c of ended)
      expect(c.phases.map((p) => p.state)).toEqual([
        'SYN-SENT',
        'ESTAB',
        'FIN-WAIT-1',
        'FIN-WAIT-2',
        'CLOSE',
      ]);
  });

  it('failed connects carry the namespace of their events', () => {
    const r = new Replay().feed(REFUSED, 333);
    expect(r.failed().map((f) => f.netns)).toEqual([333, 333]);
  });
});
