/**
 * The raw engine of `twlab serve` (`engine: 'raw'`): the listener is made here by the sockets
 * layer (so bind errors and options are exactly the Node engine's), then a worker thread runs an
 * epoll loop over it (server-raw-loop.ts). Same options, counters and summary as the Node engine;
 * per-connection events (accepted/received/closed) are not produced, only listening, errors and
 * the summary: at tens of thousands of connections per second they would cost more than the work.
 */
import { Worker } from 'node:worker_threads';
import { distPath } from '../common/paths.js';
import { SyscallError } from '../sockets/errno.js';
import { lastErrno, sys } from '../sockets/syscalls.js';
import { closeFd, formatEndpoint, localAddressOf, openSocket } from '../sockets/socket.js';
import { familyOf } from '../sockets/sockaddr.js';
import { ServerCore } from './server-core.js';
import { CLOSED_HOWS, STAT, STAT_SLOTS, type RawLoopConfig } from './server-raw-loop.js';
import type { ServerHandle, ServerSettings, ServerStats } from './server-types.js';

export async function startRawServer(settings: ServerSettings): Promise<ServerHandle> {
  const fd = openSocket('tcp', familyOf(settings.address), {
    reuseAddr: settings.reuseAddr,
    reusePort: settings.reusePort,
    ...(settings.linger !== 'default' ? { linger: settings.linger } : {}),
    bind: { address: settings.address, port: settings.port },
  });
  if (sys.listen(fd, settings.backlog) < 0) {
    const errno = lastErrno();
    closeFd(fd);
    throw new SyscallError('listen', errno, formatEndpoint(settings));
  }
  const bound = localAddressOf(fd);
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const shared = new Float64Array(new SharedArrayBuffer(8 * STAT_SLOTS));
  const config: RawLoopConfig = {
    listenFd: fd,
    close: settings.close,
    reply: settings.reply === null ? null : new Uint8Array(Buffer.from(settings.reply)),
    framing: settings.framing,
    idleTimeoutMs: settings.idleTimeoutMs,
    maxConns: settings.maxConns,
    maxRequestBytes: settings.maxRequestBytes,
    exitAfter: settings.exitAfter,
  };
  const worker = new Worker(distPath('traffic/server-raw-worker.js'), {
    workerData: { config, stop, stats: shared },
  });
  const core = new ServerCore({ ...settings, port: bound.port }, () => Atomics.store(stop, 0, 1));

  /** Copy the worker's counters into the core's stats object. */
  const sync = (): ServerStats => {
    const s = core.stats;
    s.accepted = shared[STAT.accepted]!;
    s.dropped = shared[STAT.dropped]!;
    s.closed = shared[STAT.closed]!;
    s.active = shared[STAT.active]!;
    s.peakActive = shared[STAT.peakActive]!;
    s.bytesReceived = shared[STAT.bytesReceived]!;
    s.bytesSent = shared[STAT.bytesSent]!;
    s.messages = shared[STAT.messages]!;
    CLOSED_HOWS.forEach((h, i) => (s.closedHow[h] = shared[STAT.howBase + i]!));
    return core.snapshot();
  };

  worker.on(
    'message',
    (m: {
      type: string;
      name: string;
      code: number;
      syscall: string;
      message: string;
      errors: Record<string, number>;
    }) => {
      if (m.type === 'error') {
        core.reportError({ errno: m.name, code: m.code, syscall: m.syscall, message: m.message });
      } else if (m.type === 'done') {
        core.stats.errors = { ...m.errors };
      }
    },
  );
  let failure: Error | null = null;
  worker.on('error', (err) => (failure = err));
  worker.on('exit', () => {
    sync();
    if (failure) core.countError(`engine: ${failure.message}`);
    // The loop ends by itself after exitAfter connections (or when it failed); otherwise it was
    // asked to stop. stop() also clears the duration timer.
    core.stop(core.settings.exitAfter !== null && !failure ? 'exit-after' : 'close');
    core.finish();
  });

  // Resolve once the loop runs, so `listening` means connections are being accepted.
  await new Promise<void>((resolve, reject) => {
    const onReady = (m: { type: string }): void => {
      if (m.type !== 'ready') return;
      worker.off('message', onReady);
      resolve();
    };
    worker.on('message', onReady);
    worker.once('exit', () => reject(failure ?? new Error('the raw engine exited before it started')));
  });
  return core.handle(bound, 'tcp', sync);
}
