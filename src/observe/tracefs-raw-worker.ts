/**
 * Worker-thread entry of the binary trace reader (see TraceInstance.readRaw in tracefs.ts): reads
 * the instance's per-CPU `trace_pipe_raw` pages (fds opened by the main thread, nonblocking), parses
 * them (tracefs-raw.ts), merges the CPUs by time and posts the events in column batches. Plain
 * fs reads, nothing native loaded here.
 *
 * Control through shared memory, so this loop never needs its event loop: ctl[0] is the command
 * (RUN, DRAIN: read until empty or the drain deadline then finish, STOP: finish now), ctl[1] the
 * batches the main thread has handled, ctl[2] the drain deadline's ms. At most MAX_IN_FLIGHT batches are unhandled at a time:
 * when the main thread falls behind, this thread stops reading, the kernel's ring buffer fills,
 * and what it then loses the kernel counts (per-CPU overrun), exactly as before the worker.
 */
import { readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import {
  CMD_DRAIN,
  CMD_STOP,
  RawEventParser,
  packEvents,
  type RawEvent,
  type RawFormats,
  type RawLayout,
} from './tracefs-raw.js';

export interface RawWorkerInput {
  /** One fd per CPU (per_cpu/cpuN/trace_pipe_raw, O_NONBLOCK), with its CPU number. */
  fds: { cpu: number; fd: number }[];
  layout: RawLayout;
  formats: RawFormats;
  ctl: Int32Array;
  pollMs: number;
  /** Whether the instance's clock is CLOCK_MONOTONIC (then CPUs are merged with a hold-back). */
  monotonic: boolean;
}

/** Events per batch, batches in flight: bounds what waits in memory between the threads. */
const MAX_BATCH = 4096;
const MAX_IN_FLIGHT = 16;
/** Pages read from one CPU before the others get their turn. */
const PAGES_PER_TURN = 64;
/**
 * An event is posted once every CPU has been read at least this long after its time stamp: an
 * event on another CPU that was still being written during that read (reserved, not committed)
 * then comes in a later read, and is still merged in time order.
 */
const HOLD_NS = 5_000_000;

const port = parentPort;
if (!port) throw new Error('tracefs-raw-worker.js must run as a worker thread');
const input = workerData as RawWorkerInput;
const { ctl } = input;
const parser = new RawEventParser(input.layout, input.formats);
const page = Buffer.alloc(input.layout.page.pageSize);
const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
const open = new Set(input.fds.map((f) => f.cpu));
let pending: RawEvent[] = [];
let posted = 0;
let pages = 0;
let drainUntil: number | undefined;

function monoNs(): number {
  return Number(process.hrtime.bigint());
}

/** Read what one CPU has now, up to PAGES_PER_TURN pages; the number of pages read. */
function readCpu(cpu: number, fd: number): number {
  let n = 0;
  while (n < PAGES_PER_TURN) {
    let got: number;
    try {
      got = readSync(fd, page, 0, page.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') break;
      // EBADF/ENODEV: the main thread closed it (exit path) or the instance went away.
      open.delete(cpu);
      break;
    }
    if (got === 0) break;
    n++;
    parser.parse(view, cpu, pending);
  }
  pages += n;
  return n;
}

/** Wait until fewer than MAX_IN_FLIGHT batches are unhandled; false if told to stop meanwhile. */
function waitForRoom(): boolean {
  for (;;) {
    const handled = Atomics.load(ctl, 1);
    if (posted - handled < MAX_IN_FLIGHT) return true;
    if (Atomics.load(ctl, 0) === CMD_STOP) return false;
    Atomics.wait(ctl, 1, handled, 50);
  }
}

/** Post the pending events up to time `cut` (all of them: Infinity), in time order. */
function post(cut: number): boolean {
  if (pending.length === 0) return true;
  // Each CPU's events are in order; a stable sort merges them (ties: the lower CPU first, as trace_pipe does).
  pending.sort((a, b) => a.timeNs - b.timeNs || a.cpu - b.cpu);
  let upto = pending.length;
  if (cut !== Infinity) {
    while (upto > 0 && pending[upto - 1]!.timeNs > cut) upto--;
  }
  for (let from = 0; from < upto; from += MAX_BATCH) {
    if (!waitForRoom()) return false;
    const batch = packEvents(pending, from, Math.min(upto, from + MAX_BATCH));
    posted++;
    port!.postMessage({ type: 'batch', batch, missed: parser.missed }, [
      batch.ints.buffer as ArrayBuffer,
      batch.timeNs.buffer as ArrayBuffer,
      batch.sk.buffer as ArrayBuffer,
    ]);
  }
  pending = pending.slice(upto);
  return true;
}

function run(): void {
  for (;;) {
    const cmd = Atomics.load(ctl, 0);
    if (cmd === CMD_STOP) return;
    if (cmd === CMD_DRAIN) drainUntil ??= performance.now() + Atomics.load(ctl, 2);
    const readStart = monoNs();
    let read = 0;
    for (const { cpu, fd } of input.fds) if (open.has(cpu)) read += readCpu(cpu, fd);
    const draining = drainUntil !== undefined;
    const ended = open.size === 0 || (draining && (read === 0 || performance.now() > drainUntil!));
    if (!post(ended || !input.monotonic ? Infinity : readStart - HOLD_NS)) return;
    if (ended) return;
    // Events held back are due in HOLD_NS: look again then rather than a whole poll later.
    if (read === 0) Atomics.wait(ctl, 0, cmd, pending.length > 0 ? HOLD_NS / 1e6 : input.pollMs);
  }
}

try {
  port.postMessage({ type: 'ready' });
  run();
  port.postMessage({ type: 'done', missed: parser.missed, missedUncounted: parser.missedUncounted, pages });
} catch (err) {
  port.postMessage({ type: 'error', message: err instanceof Error ? err.message : String(err) });
}
