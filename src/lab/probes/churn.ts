/**
 * The seed's failing client, with every variation the lab measures: connect, send a payload,
 * close, repeat, until the first error or the count/time bound. Runs inside a sandbox host (via
 * host.call('lab/probes/churn.js', 'churnClient', [opts])). Raw nonblocking sockets, so each step
 * is exactly the system call the seed makes and the errno is the kernel's own.
 */
import { setImmediate as yieldNow } from 'node:timers/promises';
import { POLLERR, POLLHUP, POLLIN, POLLOUT, SHUT_RDWR, MSG_NOSIGNAL } from '../../sockets/constants.js';
import { errnoCode, errnoName } from '../../sockets/errno.js';
import { socketError, type Linger } from '../../sockets/options.js';
import { encodeSockaddr } from '../../sockets/sockaddr.js';
import { localAddressOf, openSocket } from '../../sockets/socket.js';
import { lastErrno, sys } from '../../sockets/syscalls.js';

export type CloseOrder =
  /** The seed: send, shutdown(SHUT_RDWR), close at once; the client closes first. */
  | 'client-first'
  /** Send, then wait for the server's FIN (EOF) before closing: the server closes first. */
  | 'server-first';

export interface ChurnOptions {
  /** Destinations, used in turn. */
  to: Array<{ address: string; port: number }>;
  /** Upper bound on connections. */
  count: number;
  /** Upper bound on wall time. */
  maxMs: number;
  payload?: string;
  close?: CloseOrder;
  reuseAddr?: boolean;
  linger?: Linger;
  /** bind() before connect to these local addresses, in turn (port `bindPort`, default 0). */
  bindAddresses?: string[];
  bindPort?: number;
  /** IP_BIND_ADDRESS_NO_PORT with bindAddresses: connect() picks the port. */
  bindNoPort?: boolean;
  /**
   * client-first: call shutdown(SHUT_RDWR) before close, as the seed does (default true). With
   * SO_LINGER {1,0}, false is the usual abortive close: close() alone, a RST and no FIN.
   */
  shutdownFirst?: boolean;
  /** Keep going after a failure (count every failure) instead of stopping at the first. */
  continueOnError?: boolean;
}

export interface ChurnError {
  errno: string;
  syscall: string;
  atIteration: number;
}

export interface ChurnResult {
  attempted: number;
  succeeded: number;
  failed: number;
  firstError: ChurnError | null;
  /** Errors by "syscall errno". */
  errors: Record<string, number>;
  durationMs: number;
  connectionsPerSecond: number;
  /** Distinct local ports the client used. */
  localPortsUsed: number;
  /** server-first: connections where the server's FIN arrived (EOF). */
  eofSeen: number;
  /** Reads or sends that failed with ECONNRESET. */
  resetsSeen: number;
}

const EINPROGRESS = errnoCode('EINPROGRESS') ?? 115;
const EAGAIN = errnoCode('EAGAIN') ?? 11;
const ECONNRESET = errnoCode('ECONNRESET') ?? 104;

class StepError extends Error {
  constructor(
    readonly syscall: string,
    readonly errno: number,
  ) {
    super(`${syscall}: ${errnoName(errno)}`);
  }
}

interface AsyncPoll {
  async(fds: Buffer, n: number, timeoutMs: number, cb: (err: unknown, res: number) => void): void;
}
const pollAsync = sys.poll as unknown as AsyncPoll;

/**
 * Wait until one fd has `events` (or an error) or `maxMs` passed; returns revents, 0 on timeout.
 * A poll with timeout 0 first (on loopback the answer is usually there already); then a blocking
 * poll on koffi's worker threads, so the agent's main thread never blocks and wakes at once.
 */
async function waitFor(fd: number, events: number, maxMs: number): Promise<number> {
  const buf = Buffer.alloc(8);
  buf.writeInt32LE(fd, 0);
  buf.writeInt16LE(events, 4);
  if (sys.poll(buf, 1, 0) > 0) return buf.readInt16LE(6);
  const deadline = Date.now() + maxMs;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) return 0;
    buf.writeInt16LE(0, 6);
    const n = await new Promise<number>((resolve, reject) =>
      pollAsync.async(buf, 1, Math.min(left, 500), (err, res) => (err ? reject(err) : resolve(res))),
    );
    if (n > 0) return buf.readInt16LE(6);
  }
}

async function connectOnce(
  opts: ChurnOptions,
  i: number,
  ports: Set<number>,
  result: ChurnResult,
): Promise<void> {
  const to = opts.to[i % opts.to.length]!;
  const bindAddress = opts.bindAddresses?.[i % opts.bindAddresses.length];
  let fd: number;
  try {
    fd = openSocket('tcp', 4, {
      ...(opts.reuseAddr !== undefined ? { reuseAddr: opts.reuseAddr } : {}),
      ...(opts.linger !== undefined ? { linger: opts.linger } : {}),
      ...(opts.bindNoPort ? { bindNoPort: true } : {}),
      ...(bindAddress ? { bind: { address: bindAddress, port: opts.bindPort ?? 0 } } : {}),
    });
  } catch (err) {
    const e = err as { syscall?: string; errno?: number };
    throw new StepError(e.syscall ?? 'socket', e.errno ?? 0);
  }
  try {
    const sa = encodeSockaddr(to.address, to.port);
    if (sys.connect(fd, sa, sa.length) < 0) {
      const errno = lastErrno();
      if (errno !== EINPROGRESS) throw new StepError('connect', errno);
      const ev = await waitFor(fd, POLLOUT, 5000);
      if (ev === 0) throw new StepError('connect', errnoCode('ETIMEDOUT') ?? 110);
      const soError = socketError(fd);
      if (soError !== 0) throw new StepError('connect', soError);
    }
    ports.add(localAddressOf(fd).port);
    const payload = Buffer.from(opts.payload ?? 'foo');
    if (sys.send(fd, payload, payload.length, MSG_NOSIGNAL) < 0) throw new StepError('send', lastErrno());
    if ((opts.close ?? 'client-first') === 'server-first') {
      // Half-close our side only after the server's FIN: wait for EOF, then close.
      const buf = Buffer.alloc(256);
      const eofDeadline = Date.now() + 5000;
      for (;;) {
        const ev = await waitFor(fd, POLLIN, Math.max(0, eofDeadline - Date.now()));
        if (ev === 0) throw new StepError('recv', errnoCode('ETIMEDOUT') ?? 110);
        const n = sys.recv(fd, buf, buf.length, 0);
        if (n === 0) {
          result.eofSeen++;
          break;
        }
        if (n < 0) {
          const errno = lastErrno();
          if (errno === EAGAIN) continue;
          if (errno === ECONNRESET) result.resetsSeen++;
          throw new StepError('recv', errno);
        }
        if ((ev & (POLLERR | POLLHUP)) !== 0 && n <= 0) break;
      }
    } else {
      // The seed's shutdown(SHUT_RDWR), then close (with SO_LINGER {1,0} that close sends a RST).
      if ((opts.shutdownFirst ?? true) && sys.shutdown(fd, SHUT_RDWR) < 0) {
        throw new StepError('shutdown', lastErrno());
      }
    }
  } finally {
    sys.close(fd);
  }
}

/** Connect/send/close in a loop; stops at the first error unless continueOnError. */
export async function churnClient(opts: ChurnOptions): Promise<ChurnResult> {
  const started = Date.now();
  const ports = new Set<number>();
  const result: ChurnResult = {
    attempted: 0,
    succeeded: 0,
    failed: 0,
    firstError: null,
    errors: {},
    durationMs: 0,
    connectionsPerSecond: 0,
    localPortsUsed: 0,
    eofSeen: 0,
    resetsSeen: 0,
  };
  for (let i = 0; i < opts.count && Date.now() - started < opts.maxMs; i++) {
    result.attempted++;
    try {
      await connectOnce(opts, i, ports, result);
      result.succeeded++;
    } catch (err) {
      if (!(err instanceof StepError)) throw err;
      result.failed++;
      const key = `${err.syscall} ${errnoName(err.errno)}`;
      result.errors[key] = (result.errors[key] ?? 0) + 1;
      result.firstError ??= { errno: errnoName(err.errno), syscall: err.syscall, atIteration: i + 1 };
      if (!opts.continueOnError) break;
    }
    if (i % 64 === 63) await yieldNow();
  }
  result.durationMs = Date.now() - started;
  result.connectionsPerSecond = result.succeeded / Math.max(0.001, result.durationMs / 1000);
  result.localPortsUsed = ports.size;
  return result;
}
