/**
 * The seed's server, instrumented: accepts, reads until EOF, closes; counts what it saw (bytes,
 * complete payloads, resets). Runs inside a sandbox host via host.call; emits
 * { type: 'listening', port } once it listens, and returns its counts once it has been idle (no
 * open connection, nothing new) for `idleMs`, or after `maxMs`.
 */
import type net from 'node:net';
import { listenTcp } from '../../sockets/socket.js';

export type ServerClose =
  /** The seed's server: read until the client's EOF, then shutdown and close. */
  | 'after-client'
  /** Read `payloadBytes`, then close at once: the server closes first. */
  | 'server-first'
  /** Length-prefixed messages on long-lived connections; close after the client's EOF. */
  | 'framed';

export interface ServerOptions {
  address: string;
  port: number;
  close: ServerClose;
  /** Bytes one client sends (to count complete payloads and, for server-first, when to close). */
  payloadBytes: number;
  reuseAddr?: boolean;
  idleMs: number;
  maxMs: number;
  /** Bound on connections accepted (then the listener stops accepting). */
  maxConnections: number;
}

export interface ServerStats {
  port: number;
  accepted: number;
  bytesReceived: number;
  /** Connections that delivered the whole payload. */
  completePayloads: number;
  /** Connections that delivered less than the payload before ending. */
  incompletePayloads: number;
  /** Connections that ended with ECONNRESET. */
  resets: number;
  /** Connections that ended with the client's FIN. */
  eofs: number;
  /** Framed mode: complete messages read. */
  framedMessages: number;
  durationMs: number;
}

/** Ports whose server was asked to stop (by stopServe, from another call into the same host). */
const stopRequested = new Set<number>();

/**
 * Ask the probe server on `port` to finish: it returns once its open connections have ended. The
 * lab calls this when its client is done, so a client that pauses (a loaded machine) never finds
 * the server gone.
 */
export async function stopServe(opts: { port: number }): Promise<void> {
  stopRequested.add(opts.port);
}

export async function serveProbe(opts: ServerOptions, emit: (event: unknown) => void): Promise<ServerStats> {
  const started = Date.now();
  const server = listenTcp({ address: opts.address, port: opts.port, reuseAddr: opts.reuseAddr ?? true });
  const port = (server.address() as net.AddressInfo).port;
  const stats: ServerStats = {
    port,
    accepted: 0,
    bytesReceived: 0,
    completePayloads: 0,
    incompletePayloads: 0,
    resets: 0,
    eofs: 0,
    framedMessages: 0,
    durationMs: 0,
  };
  let open = 0;
  let lastActivity = Date.now();

  server.on('connection', (sock: net.Socket) => {
    stats.accepted++;
    open++;
    lastActivity = Date.now();
    if (stats.accepted >= opts.maxConnections) server.close();
    let got = 0;
    let pending = Buffer.alloc(0);
    let ended = false;
    const finish = (): void => {
      if (ended) return;
      ended = true;
      open--;
      lastActivity = Date.now();
      if (got >= opts.payloadBytes) stats.completePayloads++;
      else stats.incompletePayloads++;
    };
    sock.on('data', (d: Buffer) => {
      got += d.length;
      stats.bytesReceived += d.length;
      lastActivity = Date.now();
      if (opts.close === 'framed') {
        pending = Buffer.concat([pending, d]);
        while (pending.length >= 4 && pending.length >= 4 + pending.readUInt32BE(0)) {
          pending = pending.subarray(4 + pending.readUInt32BE(0));
          stats.framedMessages++;
        }
      } else if (opts.close === 'server-first' && got >= opts.payloadBytes) {
        sock.end();
      }
    });
    sock.on('end', () => {
      stats.eofs++;
      sock.end();
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET') stats.resets++;
      finish();
    });
    sock.on('close', finish);
  });

  await new Promise<void>((resolve) => server.once('listening', resolve));
  emit({ type: 'listening', port });
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const quiet = Date.now() - lastActivity;
      const stopped = stopRequested.has(port) && open === 0 && quiet >= 50;
      const idle = open === 0 && stats.accepted > 0 && quiet >= opts.idleMs;
      if (stopped || idle || Date.now() - started >= opts.maxMs) {
        clearInterval(timer);
        resolve();
      }
    }, 20);
  });
  server.close();
  stopRequested.delete(port);
  stats.durationMs = Date.now() - started;
  return stats;
}
