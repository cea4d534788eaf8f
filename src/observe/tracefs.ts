/**
 * tracefs, the kernel's tracepoint interface, used the way twlab needs it: find (or mount) it,
 * create a private instance so concurrent tracers never switch each other's events off, enable
 * events with kernel-side filters there, read its binary per-CPU ring buffers (trace_pipe_raw) on
 * a worker thread, and remove the instance again on stop and through twlab's exit path
 * (common/exit.ts).
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
  statSync,
  writeFileSync,
  closeSync,
  openSync,
} from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { promisify } from 'node:util';
import { RunError, messageOf } from '../common/errors.js';
import { releaseOnExit } from '../common/exit.js';
import { distPath } from '../common/paths.js';
import { parseEventFormat, parseHeaderEvent, parseHeaderPage, type EventFormat } from './tracefs-format.js';
import { CMD_DRAIN, CMD_STOP, type RawBatch, type RawFormats, type RawLayout } from './tracefs-raw.js';
import type { RawWorkerInput } from './tracefs-raw-worker.js';

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
// Event formats (parsed in tracefs-format.ts)

export { parseEventFormat, type EventField, type EventFormat } from './tracefs-format.js';

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

/** Long enough for a maker's mkdir-then-open on a loaded machine, short beside any dead owner's. */
const FRESH_INSTANCE_MS = 250;

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
 *
 * An instance younger than `minAgeMs` (its folder's mtime is its creation) is left alone: between
 * its maker's mkdir and open it is held by nobody yet, and several runs starting at once would
 * otherwise take each other's (a CI run's kill matrix met it). A dead owner's instance is older.
 */
export function removeStaleInstances(root: string, minAgeMs = FRESH_INSTANCE_MS): string[] {
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
      const path = join(root, 'instances', name);
      if (minAgeMs > 0 && Date.now() - statSync(path).mtimeMs < minAgeMs) continue;
      rmdirSync(path);
      removed.push(name);
    } catch {
      // EBUSY: its owner is alive; ENOENT/ENODEV: someone else removed it first
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

/** What the reading worker posts. */
interface WorkerMessage {
  type: 'ready' | 'batch' | 'done' | 'error';
  batch?: RawBatch;
  /** Events the pages said were lost, so far. */
  missed?: number;
  pages?: number;
  message?: string;
}

/** How long remove() waits for the reading worker to stop before terminating it. */
const WORKER_STOP_MS = 2_000;

/** Attempts at creating an instance whose folder a concurrent cleanup removed before we held it. */
const CREATE_ATTEMPTS = 10;

/**
 * A private tracefs instance (`instances/twlab-<pid>-<rand>`): its own ring buffer, event enables
 * and filters. Create with `TraceInstance.create`, always `remove()` it (twlab's exit path also
 * removes it on exit and on SIGINT/SIGTERM/SIGHUP; after SIGKILL the next run does, see HOLD_FILE).
 */
export class TraceInstance {
  readonly path: string;
  private enabled: string[] = [];
  private raw: { worker: Worker; ctl: Int32Array; fds: number[]; exited: Promise<void> } | undefined;
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
        // Another run's removeStaleInstances took it between our mkdir and open (ENOENT, or
        // ENODEV while the kernel was removing it): take a new one.
        const code = (err as NodeJS.ErrnoException).code;
        const taken = code === 'ENOENT' || code === 'ENODEV';
        if (taken && attempt < CREATE_ATTEMPTS) continue;
        try {
          rmdirSync(path);
        } catch {
          // gone already (taken), or the next run's removeStaleInstances retries
        }
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
   * stats cannot be read; then only the pages' missed-events flags tell (readRaw()'s `missed`).
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
   * Read the instance's events until `stop()` / `remove()`: the per-CPU binary ring buffers
   * (`per_cpu/cpuN/trace_pipe_raw`, one page per read, nonblocking) on a worker thread
   * (tracefs-raw-worker.ts), which parses them and hands the events of `formats` to `onBatch`
   * here, in time order across CPUs, in batches. `ready` resolves once the worker reads (its
   * start-up can take a while on a loaded machine: a trace says it is ready only then); `done`
   * when reading has ended (and the worker and the fds are gone), with the events the kernel
   * flagged as lost in the pages read (`missed`; lostEvents() reads the exact count from the stats).
   */
  readRaw(
    formats: RawFormats,
    onBatch: (batch: RawBatch, missed: number) => void,
    pollMs = 50,
  ): { ready: Promise<void>; done: Promise<{ missed: number; pages: number }> } {
    if (this.raw) throw new Error('trace_pipe_raw is already being read');
    const layout: RawLayout = {
      page: parseHeaderPage(readFileSync(join(this.path, 'events', 'header_page'), 'utf8')),
      header: parseHeaderEvent(readFileSync(join(this.path, 'events', 'header_event'), 'utf8')),
      littleEndian: endianness() === 'LE',
    };
    const monotonic = /\[mono\]/.test(readFileSync(join(this.path, 'trace_clock'), 'utf8'));
    const fds: { cpu: number; fd: number }[] = [];
    for (const dir of readdirSync(join(this.path, 'per_cpu'))) {
      const cpu = /^cpu(\d+)$/.exec(dir)?.[1];
      if (cpu === undefined) continue;
      try {
        const fd = openSync(
          join(this.path, 'per_cpu', dir, 'trace_pipe_raw'),
          constants.O_RDONLY | constants.O_NONBLOCK,
        );
        fds.push({ cpu: Number(cpu), fd });
      } catch {
        // an offline CPU: nothing to read there
      }
    }
    fds.sort((a, b) => a.cpu - b.cpu);
    const ctl = new Int32Array(new SharedArrayBuffer(3 * 4));
    const input: RawWorkerInput = { fds, layout, formats, ctl, pollMs, monotonic };
    const worker = new Worker(distPath('observe/tracefs-raw-worker.js'), { workerData: input });
    const exited = new Promise<void>((r) => worker.once('exit', () => r()));
    const raw = { worker, ctl, fds: fds.map((f) => f.fd), exited };
    this.raw = raw;
    if (this.stopped) this.command(CMD_STOP);
    else if (this.drainUntil !== undefined) this.command(CMD_DRAIN);
    let started!: () => void;
    const ready = new Promise<void>((r) => (started = r));
    const done = new Promise<{ missed: number; pages: number }>((resolve, reject) => {
      let failed: unknown;
      let result: { missed: number; pages: number } | undefined;
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'batch' && m.batch && failed === undefined) {
          try {
            onBatch(m.batch, m.missed ?? 0);
          } catch (err) {
            failed = err;
            this.command(CMD_STOP);
          }
          Atomics.add(ctl, 1, 1);
          Atomics.notify(ctl, 1);
        } else if (m.type === 'ready') started();
        else if (m.type === 'done') result = { missed: m.missed ?? 0, pages: m.pages ?? 0 };
        else if (m.type === 'error') failed ??= new RunError(`tracefs: reading trace_pipe_raw: ${m.message}`);
      });
      worker.on('error', (err) => (failed ??= err));
      worker.on('exit', () => {
        this.closeRaw();
        started(); // never left waiting
        if (failed !== undefined) reject(failed as Error);
        else resolve(result ?? { missed: 0, pages: 0 });
      });
    });
    return { ready, done };
  }

  /** Tell the reading worker what to do next (see tracefs-raw-worker.ts). */
  private command(cmd: number): void {
    if (!this.raw) return;
    Atomics.store(this.raw.ctl, 0, cmd);
    Atomics.notify(this.raw.ctl, 0);
  }

  /** Close the trace_pipe_raw fds (an open one makes rmdir fail with EBUSY). */
  private closeRaw(): void {
    for (const fd of this.raw?.fds ?? []) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
    if (this.raw) this.raw.fds = [];
  }

  /**
   * Make readRaw() finish: now, or (`drainMs`) once the ring buffers are empty or that time has
   * passed, so the events still in the buffer are read rather than dropped; what a deadline
   * leaves unread is counted by lostEvents() (its per-CPU `entries`).
   */
  stop(drainMs = 0): void {
    if (drainMs > 0 && !this.stopped) {
      // Record nothing more: what the buffer holds now is the trace's end.
      try {
        writeFileSync(join(this.path, 'tracing_on'), '0');
      } catch {
        // already gone; the reader ends at the next read
      }
      this.drainUntil ??= performance.now() + drainMs;
      if (this.raw) Atomics.store(this.raw.ctl, 2, drainMs);
      this.command(CMD_DRAIN);
    } else {
      this.stopped = true;
      this.command(CMD_STOP);
    }
  }

  /** Disable the events, stop the reader, remove the instance. Idempotent. */
  async remove(): Promise<void> {
    if (this.removed) return;
    this.stop();
    for (const dir of this.enabled) await writeFile(join(dir, 'enable'), '0').catch(() => undefined);
    this.enabled = [];
    if (this.raw) {
      const { worker } = this.raw;
      // It stops at its next poll; a worker stuck in a read would keep the instance busy.
      const kill = setTimeout(() => void worker.terminate(), WORKER_STOP_MS);
      await this.raw.exited;
      clearTimeout(kill);
      this.closeRaw();
    }
    this.release();
    await rmdir(this.path).catch((err: NodeJS.ErrnoException) => {
      // Once the hold is released, another run's removeStaleInstances() may take it first: gone
      // (ENOENT), or going while our rmdir looked it up (ENODEV, the kernel's instance_rmdir).
      if (err.code !== 'ENOENT' && err.code !== 'ENODEV') throw instanceError(this.path, err);
    });
    this.removedNow();
  }

  /**
   * Ours is gone; sweep once more. A dead owner's instance too young for the sweep at our start
   * (see removeStaleInstances) is old enough now: the run after a SIGKILLed one leaves none.
   */
  private removedNow(): void {
    removeStaleInstances(this.root);
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
    if (this.raw) {
      this.command(CMD_STOP);
      this.closeRaw();
      void this.raw.worker.terminate();
    }
    this.release();
    try {
      rmdirSync(this.path);
    } catch {
      // best effort: the next run's removeStaleInstances() retries
    }
    this.removedNow();
  }
}
