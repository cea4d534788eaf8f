/**
 * tracefs, the kernel's tracepoint interface, used the way twlab needs it: find (or mount) it,
 * create a private instance so concurrent tracers never switch each other's events off, enable
 * events with kernel-side filters there, stream the instance's trace_pipe as parsed lines, and
 * remove the instance again on stop and through twlab's exit path (common/exit.ts).
 *
 * tracefs is global (it sees every network namespace) and root-only. Event formats are read from
 * `events/<system>/<event>/format` rather than assumed, so a kernel with other field names or
 * state numbers is noticed instead of misread.
 */
import { execFile, spawnSync } from 'node:child_process';
import {
  constants,
  existsSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmdirSync,
  writeFileSync,
  closeSync,
  openSync,
  readSync,
} from 'node:fs';
import { mkdir, open, readFile, rmdir, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RunError, messageOf } from '../common/errors.js';
import { releaseOnExit } from '../common/exit.js';

/** Where tracefs lives on current kernels, and the legacy debugfs path. */
export const TRACEFS_PATHS = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'] as const;

/** Prefix of twlab's instance names: `twlab-<pid as /proc shows it>-<random>`. */
export const INSTANCE_PREFIX = 'twlab';

const NEEDS = 'twlab trace needs root and tracefs (mount -t tracefs nodev /sys/kernel/tracing)';

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function tracefsMounts(): string[] {
  try {
    return readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .map((line) => line.split(' '))
      .filter((f) => f[2] === 'tracefs' && f[1] !== undefined)
      .map((f) => f[1]!);
  } catch {
    return [];
  }
}

/**
 * The tracefs root, mounting it at /sys/kernel/tracing when it is not mounted and `mount` is
 * allowed (root only). Throws a RunError naming what is needed otherwise.
 */
export async function findTracefs(opts: { mount?: boolean } = {}): Promise<string> {
  const mounted = tracefsMounts();
  for (const path of TRACEFS_PATHS) {
    if (mounted.includes(path) && existsSync(join(path, 'instances'))) return path;
  }
  for (const path of mounted) if (existsSync(join(path, 'instances'))) return path;
  if (!isRoot()) throw new RunError(`${NEEDS}; running as uid ${process.getuid?.()} without it`);
  if (opts.mount === false) throw new RunError(`${NEEDS}; tracefs is not mounted`);
  const target = TRACEFS_PATHS[0];
  try {
    await promisify(execFile)('mount', ['-t', 'tracefs', 'nodev', target], { timeout: 10_000 });
  } catch (err) {
    throw new RunError(`${NEEDS}; mounting it at ${target} failed: ${messageOf(err).split('\n')[0]}`);
  }
  // We mounted it, so we unmount it when the process ends (after our instances are gone: releases
  // run newest first). A mount another process is using (an open file) refuses with EBUSY and stays.
  releaseOnExit(() => spawnSync('umount', [target], { stdio: 'ignore', timeout: 5_000 }));
  if (!existsSync(join(target, 'instances'))) throw new RunError(`${NEEDS}; ${target} has no instances/`);
  return target;
}

// ---------------------------------------------------------------------------------------------
// Event formats

export interface EventField {
  /** C type as the format file states it, e.g. "__u16" or "__u8 saddr[4]"'s "__u8". */
  type: string;
  name: string;
  offset: number;
  size: number;
  signed: boolean;
}

export interface EventFormat {
  name: string;
  id: number;
  /** Event-specific fields (the common_* header fields are left out). */
  fields: EventField[];
  /** The labels the text output prints, in order ("family", "sport", "saddrv6", ...). */
  labels: string[];
  /** For each field printed through __print_symbolic: its value -> name table (e.g. 7 -> TCP_CLOSE). */
  symbols: Map<string, Map<number, string>>;
}

/** Parse a tracefs `format` file. */
export function parseEventFormat(text: string): EventFormat {
  const name = /^name:\s*(\S+)/m.exec(text)?.[1];
  const id = /^ID:\s*(\d+)/m.exec(text)?.[1];
  if (!name || !id) throw new Error('not a tracefs event format (no name/ID)');
  const fields: EventField[] = [];
  const fieldRe = /field:([^;]*?)\s+(\w+)(\[\d*\])?;\s*offset:(\d+);\s*size:(\d+);\s*signed:(\d+);/g;
  for (const m of text.matchAll(fieldRe)) {
    if (m[2]!.startsWith('common_')) continue;
    fields.push({
      type: m[1]!.trim(),
      name: m[2]!,
      offset: Number(m[4]),
      size: Number(m[5]),
      signed: m[6] === '1',
    });
  }
  const fmt = /^print fmt:\s*"((?:[^"\\]|\\.)*)"(.*)$/m.exec(text);
  const labels = fmt ? [...fmt[1]!.matchAll(/(\w+)=%/g)].map((m) => m[1]!) : [];
  const symbols = new Map<string, Map<number, string>>();
  const args = fmt?.[2] ?? '';
  for (const m of args.matchAll(
    /__print_symbolic\(REC->(\w+),((?:\s*\{\s*-?\d+\s*,\s*"[^"]*"\s*\},?)+)\)/g,
  )) {
    const table = new Map<number, string>();
    for (const e of m[2]!.matchAll(/\{\s*(-?\d+)\s*,\s*"([^"]*)"\s*\}/g)) table.set(Number(e[1]), e[2]!);
    symbols.set(m[1]!, table);
  }
  return { name, id: Number(id), fields, labels, symbols };
}

/** Read and parse `events/<system>/<event>/format`; undefined when this kernel lacks the event. */
export async function readEventFormat(
  root: string,
  system: string,
  event: string,
): Promise<EventFormat | undefined> {
  try {
    return parseEventFormat(await readFile(join(root, 'events', system, event, 'format'), 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// trace_pipe lines

/** One line of trace_pipe, split into its header and the event's own text. */
export interface TraceLine {
  task: string;
  pid: number;
  cpu: number;
  /** Seconds as printed (the instance's trace_clock; twlab sets "mono" = CLOCK_MONOTONIC). */
  timestamp: number;
  /**
   * The event name printed before ": " ("inet_sock_set_state"); for syscall events, whose
   * text has no name prefix, "sys_exit_<call>" / "sys_enter_<call>".
   */
  event: string;
  /** What the event printed after its name. */
  text: string;
}

const LINE_RE = /^\s*(.*?)-(\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[(\d+)\]\s+(?:\S{4,5}\s+)?(\d+\.\d+):\s+(.*)$/;

/** Parse one trace_pipe line; undefined for lines that are not events (e.g. "CPU:1 [LOST 3 EVENTS]"). */
export function parseTraceLine(line: string): TraceLine | undefined {
  const m = LINE_RE.exec(line);
  if (!m) return undefined;
  const rest = m[5]!;
  let event: string;
  let text: string;
  const exit = /^sys_(\w+) -> (0x[0-9a-f]+)$/.exec(rest);
  const enter = exit ? null : /^sys_(\w+)\((.*)\)$/.exec(rest);
  const named = /^(\w+):\s?(.*)$/.exec(rest);
  if (exit) {
    event = `sys_exit_${exit[1]}`;
    text = exit[2]!;
  } else if (enter) {
    event = `sys_enter_${enter[1]}`;
    text = enter[2]!;
  } else if (named) {
    event = named[1]!;
    text = named[2]!;
  } else {
    return undefined;
  }
  return { task: m[1]!, pid: Number(m[2]), cpu: Number(m[3]), timestamp: Number(m[4]), event, text };
}

/** `key=value` pairs of an event's text ("sport=80 dport=4242 ..."). */
export function parseFields(text: string): Record<string, string> {
  // Split by hand, not with a global regex: this runs for every event (tens of thousands a second).
  const out: Record<string, string> = {};
  for (const word of text.split(' ')) {
    const eq = word.indexOf('=');
    if (eq > 0) out[word.slice(0, eq)] = word.slice(eq + 1);
  }
  return out;
}

/** A syscall exit's return value, printed as 64-bit hex two's complement ("0xff..9d" = -99). */
export function parseSyscallReturn(hex: string): number {
  return Number(BigInt.asIntN(64, BigInt(hex)));
}

// ---------------------------------------------------------------------------------------------
// Instances

/**
 * How a later run tells a dead owner's instance from a live one, in any pid namespace: the owner
 * keeps a file of its instance open (`tracing_on`, read-only) from right after mkdir until it
 * removes the instance. The kernel refuses rmdir of an instance with an open file (EBUSY: each
 * open takes a reference on the trace array) and closes every fd of a process that dies, even by
 * SIGKILL. So "rmdir succeeds" is exactly "nobody holds it": no pid, pid namespace or start time
 * to compare (a pid seen inside a sandbox's pid namespace means nothing outside it), no lock file
 * to leave behind, and it works the same from a sandbox, a container or the host.
 */
const HOLD_FILE = 'tracing_on';

/**
 * The pid of this process as /proc shows it: inside a sandbox (own pid namespace, the host's
 * /proc) that is the host's pid, so people and tests can tell whose instance it is. Only a label:
 * liveness is decided by the hold above.
 */
function procPid(): string {
  try {
    return readlinkSync('/proc/self');
  } catch {
    return String(process.pid);
  }
}

/**
 * Remove every twlab instance nobody holds (its owner died without removing it: SIGKILL, a crash
 * in any pid namespace). Instances held by live owners refuse with EBUSY and stay. Also removes
 * instances named by older twlab versions (`twlab-<pidns>-<pid>-<random>`). Returns the names
 * removed.
 */
export function removeStaleInstances(root: string): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(join(root, 'instances'));
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!new RegExp(`^${INSTANCE_PREFIX}-[0-9a-z-]+$`).test(name)) continue;
    try {
      rmdirSync(join(root, 'instances', name));
      removed.push(name);
    } catch {
      // EBUSY: its owner is alive; ENOENT: someone else removed it first
    }
  }
  return removed;
}

function instanceError(path: string, err: unknown): RunError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') return new RunError(`${NEEDS}; ${path}: permission denied`);
  return new RunError(`tracefs: ${path}: ${messageOf(err)}`);
}

/** The last message in tracefs' error_log, which explains a rejected filter. */
function lastErrorLog(root: string): string {
  try {
    const lines = readFileSync(join(root, 'error_log'), 'utf8').trimEnd().split('\n');
    const idx = lines.findLastIndex((l) => /error:/.test(l));
    return idx >= 0 ? lines[idx]!.replace(/^\[[^\]]*\]\s*/, '').trim() : '';
  } catch {
    return '';
  }
}

/** Attempts at creating an instance whose folder a concurrent cleanup removed before we held it. */
const CREATE_ATTEMPTS = 3;

/**
 * A private tracefs instance (`instances/twlab-<pid>-<rand>`): its own ring buffer, event enables
 * and filters. Create with `TraceInstance.create`, always `remove()` it (twlab's exit path also
 * removes it on exit and on SIGINT/SIGTERM/SIGHUP; after SIGKILL the next run does, see HOLD_FILE).
 */
export class TraceInstance {
  readonly path: string;
  private enabled: string[] = [];
  private pipe: FileHandle | undefined;
  private pipeFd: number | undefined;
  private stopped = false;
  private drainUntil: number | undefined;
  private removed = false;
  private forget: () => void = () => undefined;

  private constructor(
    readonly root: string,
    readonly name: string,
    /** The open HOLD_FILE that tells other runs this instance's owner is alive. */
    private holdFd: number | undefined,
  ) {
    this.path = join(root, 'instances', name);
  }

  static async create(root: string): Promise<TraceInstance> {
    removeStaleInstances(root);
    for (let attempt = 1; ; attempt++) {
      const name = `${INSTANCE_PREFIX}-${procPid()}-${Math.random().toString(36).slice(2, 10)}`;
      const path = join(root, 'instances', name);
      try {
        await mkdir(path);
      } catch (err) {
        throw instanceError(path, err);
      }
      let hold: number;
      try {
        hold = openSync(join(path, HOLD_FILE), constants.O_RDONLY);
      } catch (err) {
        // Another run's removeStaleInstances took it between our mkdir and open: take a new one.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && attempt < CREATE_ATTEMPTS) continue;
        rmdirSync(path);
        throw instanceError(join(path, HOLD_FILE), err);
      }
      const inst = new TraceInstance(root, name, hold);
      inst.forget = releaseOnExit(() => inst.removeSync());
      return inst;
    }
  }

  /** Set the instance's clock ("mono" makes timestamps CLOCK_MONOTONIC, the clock of process.hrtime). */
  async setClock(clock: string): Promise<void> {
    await writeFile(join(this.path, 'trace_clock'), clock);
  }

  /** Per-CPU ring buffer size: more room for bursts while the reader catches up. */
  async setBufferKb(kb: number): Promise<void> {
    await writeFile(join(this.path, 'buffer_size_kb'), String(kb));
  }

  /**
   * Events this instance's ring buffer lost so far, summed over CPUs from per_cpu/cpuN/stats:
   * `overrun` (overwritten before they were read: the buffer was full in overwrite mode, the
   * default) and `dropped events` (refused when full with overwrite off). Undefined where the
   * stats cannot be read; then only trace_pipe's "[LOST n EVENTS]" lines tell.
   */
  lostEvents(): { events: number; perCpu: Record<string, number> } | undefined {
    let cpus: string[];
    try {
      cpus = readdirSync(join(this.path, 'per_cpu')).filter((d) => /^cpu\d+$/.test(d));
    } catch {
      return undefined;
    }
    let events = 0;
    const perCpu: Record<string, number> = {};
    for (const cpu of cpus) {
      try {
        const stats = readFileSync(join(this.path, 'per_cpu', cpu, 'stats'), 'utf8');
        const field = (name: string): number =>
          Number(new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(stats)?.[1] ?? 0);
        // Once reading has ended, what is still in the buffer will never be read either.
        const unread = this.stopped || this.drainUntil !== undefined ? field('entries') : 0;
        const lost = field('overrun') + field('dropped events') + unread;
        if (lost > 0) perCpu[cpu] = lost;
        events += lost;
      } catch {
        return undefined;
      }
    }
    return { events, perCpu };
  }

  /** The ring buffer per CPU, KB (0 where unreadable). */
  bufferKb(): number {
    try {
      return Number(readFileSync(join(this.path, 'buffer_size_kb'), 'utf8').trim().replace(/\D.*$/, ''));
    } catch {
      return 0;
    }
  }

  /** Whether the instance has an event (tracefs creates the events/ tree per instance). */
  hasEvent(system: string, event: string): boolean {
    return existsSync(join(this.path, 'events', system, event, 'enable'));
  }

  /** Set an event's filter (kernel-side, C-like: "sport == 80 || dport == 80") and enable it. */
  async enableEvent(system: string, event: string, filter?: string): Promise<void> {
    const dir = join(this.path, 'events', system, event);
    if (!existsSync(dir)) throw new RunError(`tracefs: this kernel has no ${system}:${event} event`);
    if (filter !== undefined) {
      try {
        await writeFile(join(dir, 'filter'), filter);
      } catch (err) {
        const why = lastErrorLog(this.root);
        throw new RunError(
          `tracefs: filter '${filter}' on ${system}:${event} refused: ${why || messageOf(err)}`,
        );
      }
    }
    try {
      await writeFile(join(dir, 'enable'), '1');
    } catch (err) {
      throw instanceError(join(dir, 'enable'), err);
    }
    this.enabled.push(dir);
  }

  /**
   * Stream trace_pipe lines until `stop()` / `remove()`. The pipe is opened nonblocking and
   * polled, so no thread ever sits in a blocking read and stopping is immediate.
   */
  async *lines(pollMs = 50): AsyncGenerator<string> {
    if (this.pipe) throw new Error('trace_pipe is already being read');
    this.pipe = await open(join(this.path, 'trace_pipe'), constants.O_RDONLY | constants.O_NONBLOCK);
    this.pipeFd = this.pipe.fd;
    const buf = Buffer.alloc(1024 * 1024);
    let rest = '';
    while (!this.stopped) {
      if (this.drainUntil !== undefined && performance.now() > this.drainUntil) break;
      const n = this.readAvailable(buf);
      if (n === 0) {
        if (this.drainUntil !== undefined) break; // drained
        await new Promise((r) => setTimeout(r, pollMs));
        continue;
      }
      const chunk = rest + buf.toString('utf8', 0, n);
      const parts = chunk.split('\n');
      rest = parts.pop()!;
      for (const line of parts) if (line) yield line;
    }
  }

  /**
   * Fill `buf` with what trace_pipe has now. The kernel formats at most a page per read(), so
   * reads are synchronous (the fd is nonblocking: EAGAIN when empty, never a wait) and repeated
   * until the buffer is full or the pipe empty: one thread-pool round trip per 4 KB would cap the
   * reader at a few thousand events a second on a loaded machine.
   */
  private readAvailable(buf: Buffer): number {
    let n = 0;
    while (this.pipeFd !== undefined && n < buf.length - 4096) {
      let got: number;
      try {
        got = readSync(this.pipeFd, buf, n, buf.length - n, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') break;
        throw err;
      }
      if (got === 0) break;
      n += got;
    }
    return n;
  }

  /**
   * Make `lines()` finish: after the read in flight, or (`drainMs`) once trace_pipe is empty or
   * that time has passed, so the events still in the buffer are read rather than dropped; what a
   * deadline leaves unread is counted by lostEvents() (its per-CPU `entries`).
   */
  stop(drainMs = 0): void {
    if (drainMs > 0 && !this.stopped) {
      // Record nothing more: what the buffer holds now is the trace's end.
      try {
        writeFileSync(join(this.path, 'tracing_on'), '0');
      } catch {
        // already gone; lines() ends at the next read
      }
      this.drainUntil ??= performance.now() + drainMs;
    } else this.stopped = true;
  }

  /** Disable the events, close the pipe, remove the instance. Idempotent. */
  async remove(): Promise<void> {
    if (this.removed) return;
    this.stopped = true;
    for (const dir of this.enabled) await writeFile(join(dir, 'enable'), '0').catch(() => undefined);
    this.enabled = [];
    if (this.pipe) {
      this.pipeFd = undefined;
      await this.pipe.close().catch(() => undefined);
      this.pipe = undefined;
    }
    this.release();
    await rmdir(this.path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw instanceError(this.path, err);
    });
    this.removed = true;
    this.forget();
  }

  /** Close the hold: from now on rmdir (ours or any later run's) can remove the instance. */
  private release(): void {
    if (this.holdFd === undefined) return;
    try {
      closeSync(this.holdFd);
    } catch {
      // already closed
    }
    this.holdFd = undefined;
  }

  /** The synchronous variant for process exit and signal handlers. */
  removeSync(): void {
    if (this.removed) return;
    this.stopped = true;
    for (const dir of this.enabled) {
      try {
        writeFileSync(join(dir, 'enable'), '0');
      } catch {
        // the instance goes away below anyway
      }
    }
    if (this.pipeFd !== undefined) {
      try {
        closeSync(this.pipeFd);
      } catch {
        // already closed
      }
      this.pipeFd = undefined;
    }
    this.release();
    try {
      rmdirSync(this.path);
    } catch {
      // best effort: the next run's removeStaleInstances() retries
    }
    this.removed = true;
    this.forget();
  }
}
