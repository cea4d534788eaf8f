/**
 * The seeds' server as a library: accept, read the request, answer, close the way the caller
 * chose (server-first, client-first or RST), and report every step as an event. Its listener is
 * made by the sockets layer, so SO_REUSEADDR off / SO_REUSEPORT / SO_LINGER really are what the
 * kernel holds. Per connection it keeps a few counters and (length-prefixed) a 4-byte header, never
 * the request itself; one sweeper timer enforces the idle timeout for all connections.
 */
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { constants as osConstants } from 'node:os';
import { listenTcp } from '../sockets/socket.js';
import { FrameCounter, frame } from './server-framing.js';
import { ServerCore, errnoInfo, resolveServerSettings } from './server-core.js';
import { startUdpServer } from './server-udp.js';
import { startRawServer } from './server-raw.js';
import type { ClosedHow, ServerHandle, ServerOptions, ServerSummary, ServerEvent } from './server-types.js';

export * from './server-types.js';
export { resolveServerSettings } from './server-core.js';

/** One accepted connection's state. */
interface Conn {
  id: number;
  socket: net.Socket;
  /** Coarse time (sweeper ticks) of the last byte in. */
  lastActive: number;
  bytes: number;
  messages: number;
  /** The request has been answered (framing none: one reply per connection). */
  answered: boolean;
  /** We called end() or reset: the close is decided. */
  how: ClosedHow | null;
  frames: FrameCounter | null;
}

/** File descriptors kept free for everything but connections (stdio, epoll, pipes, workers). */
const FD_RESERVE = 32;

/**
 * How many connections the open-file limit leaves room for. At that limit libuv meets EMFILE in
 * accept() and drops the connection itself (it frees a reserve fd, accepts and closes), which
 * nobody sees: counted as dropped 0 with no error. Capping maxConnections below the limit makes
 * each such refusal a counted drop with its reason. Read from /proc/self (no libc call needed).
 */
function fdRoom(): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (!m || m[1] === 'unlimited') return Infinity;
    return Math.max(1, Number(m[1]) - readdirSync('/proc/self/fd').length - FD_RESERVE);
  } catch {
    return Infinity;
  }
}

/**
 * Start the server. Bind errors (EADDRINUSE...) reject with the sockets layer's SyscallError;
 * bad options with UsageError. Resolves once listening.
 *
 * Long (~200 lines) on purpose: the Node engine's per-connection handlers (data, end, error,
 * close, the close modes and bounds) share the server's state held in this closure; the raw and
 * UDP engines are files of their own.
 */
// eslint-disable-next-line max-lines-per-function -- long on purpose, as said above
export async function startServer(opts: ServerOptions): Promise<ServerHandle> {
  const settings = resolveServerSettings(opts);
  if (settings.protocol === 'udp') return startUdpServer(settings);
  if (settings.engine === 'raw') return startRawServer(settings);

  const conns = new Set<Conn>();
  let listenerClosed = false;
  const server = net.createServer({ allowHalfOpen: true });
  const core = new ServerCore(settings, () => {
    if (!listenerClosed) closeListener();
    for (const c of conns) {
      c.how ??= 'shutdown';
      c.socket.destroy();
    }
    maybeFinish();
  });
  const { stats } = core;
  const replyOnce = settings.reply === null ? null : Buffer.from(settings.reply);
  const replyFramed = replyOnce && settings.framing === 'length-prefixed' ? frame(replyOnce) : null;
  const maxBytes = settings.maxRequestBytes;
  const exitAfter = settings.exitAfter;

  // The idle clock: a counter bumped by one timer, compared with each connection's last activity.
  const tickMs = Math.max(10, Math.min(1000, Math.floor(settings.idleTimeoutMs / 4)));
  const idleTicks = Math.ceil(settings.idleTimeoutMs / tickMs);
  let tick = 0;
  const sweeper = setInterval(() => {
    tick++;
    for (const c of conns) {
      if (c.how === null && tick - c.lastActive >= idleTicks) {
        c.how = 'idle-timeout';
        c.socket.destroy();
      } else if (c.how !== null && tick - c.lastActive >= idleTicks * 2) {
        // Half-closed by us (server-first) and the peer never closes its side: bound it too.
        c.socket.destroy();
      }
    }
  }, tickMs);
  sweeper.unref();

  function closeListener(): void {
    listenerClosed = true;
    server.close(() => maybeFinish());
  }

  let finished = false;
  function maybeFinish(): void {
    if (finished || core.stoppedBy === null || conns.size > 0 || server.listening) return;
    finished = true;
    clearInterval(sweeper);
    core.finish();
  }

  function send(c: Conn, data: Buffer): void {
    stats.bytesSent += data.length;
    // Backpressure: a peer that does not read its replies stops being read (memory stays bounded).
    if (!c.socket.write(data) && !c.socket.isPaused()) {
      c.socket.pause();
      c.socket.once('drain', () => c.socket.resume());
    }
  }

  /** The request is complete: act as the close mode says. */
  function requestDone(c: Conn): void {
    if (c.how !== null) return;
    if (settings.close === 'server-first') {
      c.how = 'server-first';
      c.socket.end();
    } else if (settings.close === 'rst') {
      c.how = 'rst';
      c.socket.resetAndDestroy();
    }
  }

  function tooLarge(c: Conn): void {
    core.reportError(
      {
        errno: 'too-large',
        code: 0,
        syscall: 'server',
        message: `request over ${maxBytes} bytes: connection cut off`,
      },
      c.id,
    );
    c.how = 'too-large';
    c.socket.destroy();
  }

  server.on('connection', (socket: net.Socket) => {
    const c: Conn = {
      id: ++stats.accepted,
      socket,
      lastActive: tick,
      bytes: 0,
      messages: 0,
      answered: false,
      how: null,
      frames: settings.framing === 'length-prefixed' ? new FrameCounter(maxBytes) : null,
    };
    conns.add(c);
    if (++stats.active > stats.peakActive) stats.peakActive = stats.active;
    if (core.observed) {
      core.emit({
        event: 'accepted',
        t: core.now(),
        id: c.id,
        peer: { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 },
      });
    }
    if (exitAfter !== null && stats.accepted >= exitAfter && !listenerClosed) closeListener();

    socket.on('data', (chunk: Buffer) => {
      c.lastActive = tick;
      stats.bytesReceived += chunk.length;
      c.bytes += chunk.length;
      if (core.observed) core.emit({ event: 'received', t: core.now(), id: c.id, bytes: chunk.length });
      if (c.how !== null) return;
      if (c.frames === null) {
        if (c.bytes > maxBytes) return tooLarge(c);
        if (!c.answered) {
          c.answered = true;
          if (replyOnce) send(c, replyOnce);
          requestDone(c);
        }
        return;
      }
      const n = c.frames.feed(chunk);
      c.messages += n;
      stats.messages += n;
      if (replyFramed) for (let i = 0; i < n; i++) send(c, replyFramed);
      if (c.frames.overLimit) return tooLarge(c);
      if (n > 0) requestDone(c);
    });

    socket.on('end', () => {
      // The client's FIN came before we decided to close: the client closed first.
      if (c.how !== null) return;
      if (settings.close === 'rst') {
        c.how = 'rst';
        socket.resetAndDestroy();
        return;
      }
      c.how = 'client-first';
      socket.end();
    });

    socket.on('error', (err: NodeJS.ErrnoException) => {
      const name = err.code ?? 'EUNKNOWN';
      if (name === 'ECONNRESET' || name === 'EPIPE') {
        if (c.how !== 'rst' && c.how !== 'too-large' && c.how !== 'idle-timeout' && c.how !== 'shutdown') {
          c.how = 'reset-by-peer';
        }
      }
      core.reportError(errnoInfo(err, 'unknown'), c.id);
    });

    socket.on('close', (hadError: boolean) => {
      conns.delete(c);
      stats.active--;
      stats.closed++;
      const how: ClosedHow = c.how ?? (hadError ? 'reset-by-peer' : 'client-first');
      stats.closedHow[how]++;
      if (core.observed) {
        core.emit({
          event: 'closed',
          t: core.now(),
          id: c.id,
          how,
          bytesReceived: c.bytes,
          messages: c.messages,
        });
      }
      if (exitAfter !== null && stats.closed >= exitAfter) core.stop('exit-after');
      else maybeFinish();
    });
  });

  // Below the open-file limit, so a connection refused for want of an fd is one we count.
  const room = fdRoom();
  server.maxConnections = Math.min(settings.maxConns, room);
  server.on('drop', () => {
    stats.dropped++;
    core.reportError(
      room < settings.maxConns
        ? {
            errno: 'EMFILE',
            code: osConstants.errno.EMFILE,
            syscall: 'accept',
            message: `the open-file limit (RLIMIT_NOFILE) leaves room for ${room} connections: a new one was closed at accept`,
          }
        : {
            errno: 'max-conns',
            code: 0,
            syscall: 'server',
            message: `${settings.maxConns} connections open: a new one was closed at accept`,
          },
    );
  });

  server.on('error', (err: NodeJS.ErrnoException) => core.reportError(errnoInfo(err, 'accept')));

  try {
    listenTcp({
      address: settings.address,
      port: settings.port,
      backlog: settings.backlog,
      reuseAddr: settings.reuseAddr,
      reusePort: settings.reusePort,
      ...(settings.linger !== 'default' ? { linger: settings.linger } : {}),
      server,
    });
  } catch (err) {
    clearInterval(sweeper);
    core.stop('close');
    throw err;
  }
  const bound = server.address() as net.AddressInfo;
  core.settings = { ...settings, port: bound.port };
  return core.handle(bound, 'tcp');
}

/** The `listening` event for a handle (emitted by callers once they have subscribed). */
export function listeningEvent(handle: ServerHandle): ServerEvent {
  return { event: 'listening', t: 0, address: handle.address, port: handle.port, settings: handle.settings };
}

/**
 * Run a bounded server to its end: for `remote(host, SERVER).runServer(opts)` inside a
 * sandbox host, or a test. Requires exitAfter or durationMs. Events go to `emit` (the sandbox
 * agent passes one when the caller listens); resolves with the summary.
 */
export async function runServer(
  opts: ServerOptions,
  emit?: (event: ServerEvent) => void,
): Promise<ServerSummary> {
  if (opts.exitAfter === undefined && opts.durationMs === undefined) {
    throw new Error('runServer needs a bound: exitAfter or durationMs');
  }
  const handle = await startServer(opts);
  if (emit) {
    emit(listeningEvent(handle));
    handle.onEvent(emit);
  }
  return handle.done;
}
