/**
 * Who a traced task is, for the tracer: its process (tgid), command and network namespace, read
 * from /proc and cached (a busy client makes thousands of events a second from one thread), and
 * the two reads that need a namespace: who holds a listening socket opened before the trace (its
 * inode from sock_diag inside that namespace, then the process whose /proc/PID/fd links to it),
 * and minisocket look-ups run in each connection's own namespace.
 *
 * A task that exited before its events were read leaves only its tid, taken for the pid (right for
 * a single-threaded process), and the command tracefs saved for it; its namespace is unknown.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import {
  canonicalAddress,
  lookupMinisocketsHere,
  tupleKey,
  type MinisocketFound,
  type TupleQuery,
} from './trace-diag.js';
import { dumpTcp, type Endpoint } from './sockdiag.js';
import { TCP_LISTEN } from './sockdiag-states.js';
import type { ListenerOwner } from './trace-timeline.js';
import { bareNetns, readNetns } from './netns-read.js';

export interface TaskInfo {
  /** The process (tgid); the tid when /proc no longer has it. */
  pid: number;
  comm: string;
  /** Network namespace inode; undefined when the task is gone (or is pid 0, the idle task). */
  netns?: number;
}

interface Cached extends TaskInfo {
  /** performance.now() of the /proc read. */
  checkedAt: number;
}

/**
 * How long a task's /proc facts are taken as still true (tids are reused, processes exec): the
 * bound where the tracer cannot see sched_process_exec and sched_process_fork, which say so at once.
 */
const RECHECK_MS = 2_000;
/** Cache bound: cleared when full (tids of a busy host are many but short-lived). */
const MAX_CACHED = 20_000;
/** Tasks remembered per namespace as ways into it. */
const ENTRY_TASKS = 8;

function netnsOf(tid: number | 'self'): number | undefined {
  try {
    return Number(/\[(\d+)\]/.exec(readlinkSync(`/proc/${tid}/ns/net`))?.[1]);
  } catch {
    return undefined;
  }
}

export class TraceTasks {
  private readonly cache = new Map<number, Cached>();
  private cmdlines: { readAt: number; map: Map<number, string> } | undefined;
  /** For each namespace seen, the tasks last seen in it: a /proc/TID/ns/net of one opens it. */
  private readonly entry = new Map<number, number[]>();
  /** twlab's own (/proc/self: in a pid namespace, process.pid is not the pid /proc knows). */
  readonly selfNetns: number | undefined = netnsOf('self');

  /**
   * @param savedCmdlines tracefs' `saved_cmdlines` (tid -> command, recorded as events fire): the
   * command of a task gone before its events were read, as the text output would print it.
   */
  constructor(private readonly savedCmdlines?: string) {}

  /** What was read of `tid` is stale: it ran execve() (another command) or is a new task. */
  forget(tid: number): void {
    this.cache.delete(tid);
  }

  /** The task of an event (its tid). */
  of(tid: number): TaskInfo {
    const now = performance.now();
    const known = this.cache.get(tid);
    if (known && now - known.checkedAt < RECHECK_MS) return known;
    // New, or seen a while ago: read again (a reused tid is another process by now).
    const fresh = this.read(tid);
    const info = fresh ?? (known ? { ...known, checkedAt: now } : this.gone(tid));
    if (this.cache.size >= MAX_CACHED) this.cache.clear();
    this.cache.set(tid, info);
    if (info.netns !== undefined && info.pid !== 0) {
      // A few, newest first: the first may have exited by the time a look-up needs one.
      const tids = [tid, ...(this.entry.get(info.netns) ?? []).filter((t) => t !== tid)].slice(
        0,
        ENTRY_TASKS,
      );
      this.entry.set(info.netns, tids);
    }
    return info;
  }

  /** From /proc; undefined when the task is gone. */
  private read(tid: number): Cached | undefined {
    const checkedAt = performance.now();
    if (tid === 0) return { pid: 0, comm: '<idle>', checkedAt };
    let status: string;
    try {
      status = readFileSync(`/proc/${tid}/status`, 'utf8');
    } catch {
      return undefined;
    }
    const pid = Number(/^Tgid:\s*(\d+)/m.exec(status)?.[1] ?? tid);
    let comm = /^Name:\s*(.*)$/m.exec(status)?.[1] ?? '';
    if (pid !== tid) {
      // The process's command (the main thread's), not a thread's name.
      try {
        comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      } catch {
        // the process is exiting: keep the thread's
      }
    }
    return { pid, comm, netns: netnsOf(tid), checkedAt };
  }

  /** A task gone before it was first seen: its tid for the pid, its command from saved_cmdlines. */
  private gone(tid: number): Cached {
    const now = performance.now();
    if (this.savedCmdlines && (!this.cmdlines || now - this.cmdlines.readAt > RECHECK_MS)) {
      const map = new Map<number, string>();
      try {
        for (const line of readFileSync(this.savedCmdlines, 'utf8').split('\n')) {
          const sp = line.indexOf(' ');
          if (sp > 0) map.set(Number(line.slice(0, sp)), line.slice(sp + 1));
        }
      } catch {
        // not readable: '<...>', as the text output prints it
      }
      this.cmdlines = { readAt: now, map };
    }
    return { pid: tid, comm: this.cmdlines?.map.get(tid) ?? '<...>', checkedAt: now };
  }

  /** Run a synchronous read in namespace `netns` (here when it is ours or unknown); undefined if unreachable. */
  private inNetns<T>(netns: number | undefined, read: () => T): T | undefined {
    if (netns === undefined || netns === this.selfNetns) return read();
    const [tid, ...more] = this.entry.get(netns) ?? [];
    if (tid === undefined) return undefined;
    // readNetns tries each path in turn and checks it still leads to this namespace.
    const r = readNetns(
      { ...bareNetns(netns, `/proc/${tid}/ns/net`), paths: more.map((t) => `/proc/${t}/ns/net`) },
      read,
    );
    return r.ok ? r.value : undefined;
  }

  /** Minisocket look-ups, each in its query's namespace (see trace-diag.ts). */
  lookup = (queries: TupleQuery[]): Promise<MinisocketFound[]> => {
    const byNs = new Map<number | undefined, TupleQuery[]>();
    for (const q of queries) {
      const list = byNs.get(q.netns);
      if (list) list.push(q);
      else byNs.set(q.netns, [q]);
    }
    const found: MinisocketFound[] = [];
    // One at a time: a spread of 100k+ answers (a namespace full of TIME-WAIT) overflows the stack.
    const add = (answers: MinisocketFound[] | undefined): void => {
      for (const f of answers ?? []) found.push(f);
    };
    for (const [netns, qs] of byNs) add(this.inNetns(netns, () => lookupMinisocketsHere(qs)));
    // A task gone before its events were read left its connections without a namespace: after
    // twlab's own, try each namespace seen in this trace (answers echo the query: netns unknown).
    let unknown = byNs.get(undefined) ?? [];
    for (const netns of this.entry.keys()) {
      if (unknown.length === 0) break;
      if (netns === this.selfNetns) continue;
      const seen = new Set(found.filter((f) => f.netns === undefined).map((f) => tupleKey(f)));
      unknown = unknown.filter((q) => !seen.has(tupleKey(q)));
      const qs = unknown;
      add(this.inNetns(netns, () => lookupMinisocketsHere(qs)));
    }
    return Promise.resolve(found);
  };

  /** Who holds the listener an accepted connection on `local` came from (see TimelineOptions). */
  listenerOwner = (local: Endpoint, netns: number | undefined): ListenerOwner | undefined => {
    const addr = canonicalAddress(local.address);
    const inodes = this.inNetns(netns, () => {
      const out = new Set<number>();
      for (const r of dumpTcp({ states: [TCP_LISTEN] })) {
        const a = canonicalAddress(r.local.address);
        if (
          r.local.port === local.port &&
          (a === addr || r.local.address === '0.0.0.0' || r.local.address === '::')
        )
          out.add(r.inode);
      }
      return out;
    });
    if (!inodes?.size) return undefined;
    const pid = holderOf(inodes, netns);
    if (pid === undefined) return undefined;
    const info = this.of(pid);
    return { pid: info.pid, task: info.comm, netns: info.netns };
  };
}

/** The lowest pid (in namespace `netns`, when known) with an fd on one of these socket inodes. */
function holderOf(inodes: Set<number>, netns: number | undefined): number | undefined {
  const links = new Set([...inodes].map((i) => `socket:[${i}]`));
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    if (netns !== undefined && netnsOf(pid) !== netns) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${d}/fd`);
    } catch {
      continue; // exited, or not ours to read
    }
    for (const fd of fds) {
      try {
        if (links.has(readlinkSync(`/proc/${d}/fd/${fd}`))) return pid;
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}
