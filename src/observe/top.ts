/**
 * `twlab top`'s counting, without I/O: the tracer's events (trace-timeline.ts, whose pids are the
 * sockets' owners) summed per process and namespace. What counts as what:
 * - connects: CLOSE -> SYN-SENT (a connect() call, successful or not);
 * - failed connects: the tracer's connect-failed events, by errno;
 * - active closes: -> FIN-WAIT-1 (this process closed first: a TIME-WAIT on this host to come);
 * - passive closes: CLOSE-WAIT -> LAST-ACK (the peer closed first);
 * - accepts: SYN-RECV -> ESTAB (a connection handed to the listener's process);
 * - TIME-WAIT created / alive: the tracer's sock_diag phase of a connection this process owned.
 * Abortive closes (RST) count as neither close. Bounded: at most MAX_ROWS processes and
 * MAX_DESTINATIONS destinations each (the rest summed under "other").
 */
import type { Endpoint } from './sockdiag.js';
import type { TraceEvent } from './trace-timeline.js';

export const MAX_ROWS = 5_000;
export const MAX_DESTINATIONS = 32;

export interface Counts {
  connects: number;
  failedConnects: Record<string, number>;
  activeCloses: number;
  passiveCloses: number;
  accepts: number;
  timeWaitCreated: number;
}

export interface DestinationCounts {
  /** "198.51.100.2:8080", "[::1]:8080" (census's spelling), or "other". */
  remote: string;
  connects: number;
  failedConnects: number;
  timeWaitCreated: number;
}

export interface ProcessCounts extends Counts {
  /** 0 where the owner could not be known (see ConnectionTimeline.pidFrom). */
  pid: number;
  comm: string;
  /** Network namespace inode; null when its task was gone before it could be read. */
  netns: number | null;
  /** TIME-WAIT sockets it created that are still in the table. */
  timeWaitAlive: number;
  destinations: DestinationCounts[];
  /** The same counts over the last interval only. */
  interval: Counts;
}

interface Row extends Omit<ProcessCounts, 'destinations'> {
  destinations: Map<string, DestinationCounts>;
}

/** The transitions counted below (others make no row). */
const enum Step {
  Connect,
  ActiveClose,
  PassiveClose,
  Accept,
  /** Into or out of TIME-WAIT (counted when the tracer's sock_diag phase), or FIN-WAIT-1 again. */
  Other,
}

function stepOf(oldState: string, newState: string): Step | undefined {
  if (oldState === 'CLOSE' && newState === 'SYN-SENT') return Step.Connect;
  if (newState === 'FIN-WAIT-1') return oldState === 'FIN-WAIT-1' ? Step.Other : Step.ActiveClose;
  if (oldState === 'CLOSE-WAIT' && newState === 'LAST-ACK') return Step.PassiveClose;
  if (oldState === 'SYN-RECV' && newState === 'ESTAB') return Step.Accept;
  if (oldState.includes('TIME-WAIT') || newState.includes('TIME-WAIT')) return Step.Other;
  return undefined;
}

function zero(): Counts {
  return {
    connects: 0,
    failedConnects: {},
    activeCloses: 0,
    passiveCloses: 0,
    accepts: 0,
    timeWaitCreated: 0,
  };
}

export function remoteText(e: Endpoint, family: 4 | 6): string {
  return family === 6 ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

export function failedTotal(c: Counts): number {
  return Object.values(c.failedConnects).reduce((a, b) => a + b, 0);
}

export class TopCounter {
  private readonly rows = new Map<string, Row>();
  /** The same rows by pid (found without building a key per event). */
  private readonly byPid = new Map<number, Row[]>();
  /** Events of processes past MAX_ROWS, not counted. */
  droppedRows = 0;

  /** `accept(netns)`: whether events of that namespace count (undefined: the task was gone). */
  constructor(private readonly accept: (netns: number | undefined) => boolean = () => true) {}

  add(ev: TraceEvent): void {
    if (ev.kind === 'connection' || !this.accept(ev.netns)) return;
    // Per traced event (tens of thousands a second): plain comparisons, no string built.
    let step: Step | undefined;
    if (ev.kind === 'transition') {
      step = stepOf(ev.oldState, ev.newState);
      if (step === undefined) return;
    }
    const row = this.row(ev.pid, ev.task, ev.netns);
    if (!row) return;
    if (ev.kind === 'connect-failed') {
      const errno = ev.errno ?? 'unknown';
      for (const c of [row, row.interval]) c.failedConnects[errno] = (c.failedConnects[errno] ?? 0) + 1;
      this.dest(row, remoteText(ev.remote, ev.family)).failedConnects++;
      return;
    }
    if (step === Step.Connect) {
      row.connects++;
      row.interval.connects++;
      this.dest(row, remoteText(ev.remote, ev.family)).connects++;
    } else if (step === Step.ActiveClose) {
      row.activeCloses++;
      row.interval.activeCloses++;
    } else if (step === Step.PassiveClose) {
      row.passiveCloses++;
      row.interval.passiveCloses++;
    } else if (step === Step.Accept) {
      row.accepts++;
      row.interval.accepts++;
    } else if (ev.source === 'sock_diag' && ev.newState === 'TIME-WAIT') {
      row.timeWaitCreated++;
      row.interval.timeWaitCreated++;
      row.timeWaitAlive++;
      this.dest(row, remoteText(ev.remote, ev.family)).timeWaitCreated++;
    } else if (ev.source === 'sock_diag' && ev.oldState === 'TIME-WAIT') {
      row.timeWaitAlive = Math.max(0, row.timeWaitAlive - 1);
    }
  }

  /** Every process's counts; the interval counts start again from zero. */
  snapshot(): ProcessCounts[] {
    const out: ProcessCounts[] = [];
    for (const r of this.rows.values()) {
      out.push({
        ...r,
        failedConnects: { ...r.failedConnects },
        destinations: [...r.destinations.values()].sort((a, b) => score(b) - score(a)),
      });
      r.interval = zero();
    }
    return out;
  }

  private row(pid: number, comm: string, netns: number | undefined): Row | undefined {
    const mine = this.byPid.get(pid);
    let row = mine?.find((r) => r.netns === (netns ?? null));
    if (!row) {
      if (this.rows.size >= MAX_ROWS) {
        this.droppedRows++;
        return undefined;
      }
      row = {
        pid,
        comm,
        netns: netns ?? null,
        ...zero(),
        timeWaitAlive: 0,
        destinations: new Map(),
        interval: zero(),
      };
      this.rows.set(`${pid}|${netns}`, row);
      if (mine) mine.push(row);
      else this.byPid.set(pid, [row]);
    }
    if (pid !== 0 && comm !== '?') row.comm = comm;
    return row;
  }

  private dest(row: Row, remote: string): DestinationCounts {
    let d = row.destinations.get(remote);
    if (!d) {
      const key = row.destinations.size >= MAX_DESTINATIONS ? 'other' : remote;
      d = row.destinations.get(key);
      if (!d) {
        d = { remote: key, connects: 0, failedConnects: 0, timeWaitCreated: 0 };
        row.destinations.set(key, d);
      }
    }
    return d;
  }
}

function score(d: DestinationCounts): number {
  return d.failedConnects * 1e6 + d.timeWaitCreated * 1e3 + d.connects;
}
