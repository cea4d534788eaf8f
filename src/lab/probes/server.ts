/**
 * The seed's server for the lab: twlab's own server (traffic/server.ts, what `twlab serve` runs)
 * in this host, with the lab's accounting kept from its events: payloads complete or not, resets,
 * framed messages. Runs inside a sandbox host via remote(); emits { type: 'listening', port }
 * once it listens, and returns its counts once the lab asked it to stop (stopServe) and no
 * connection is open, once it has been idle for `idleMs` after a first connection, or after `maxMs`.
 */
import { startServer, type ServerHandle } from '../../traffic/server.js';

export type ServerClose =
  /** The seed's server: read until the client's EOF, then shutdown and close. */
  | 'after-client'
  /** Close as soon as the request is in: the server closes first. */
  | 'server-first'
  /** Length-prefixed messages on long-lived connections; close after the client's EOF. */
  | 'framed';

export interface ServerOptions {
  address: string;
  port: number;
  close: ServerClose;
  /** Bytes one client sends (to count complete payloads). */
  payloadBytes: number;
  reuseAddr?: boolean;
  idleMs: number;
  maxMs: number;
}

export interface ServerStats {
  port: number;
  accepted: number;
  bytesReceived: number;
  /** Connections that delivered the whole payload. */
  completePayloads: number;
  /** Connections that delivered less than the payload before ending. */
  incompletePayloads: number;
  /** Connections that saw ECONNRESET. */
  resets: number;
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

/** What the probe servers emit: their port once they listen. */
export interface ProbeServerEvent {
  type: 'listening';
  port: number;
}

export async function serveProbe(
  opts: ServerOptions,
  emit: (event: ProbeServerEvent) => void,
): Promise<ServerStats> {
  const started = Date.now();
  const server = await startServer({
    address: opts.address,
    port: opts.port,
    reuseAddr: opts.reuseAddr ?? true,
    close: opts.close === 'server-first' ? 'server-first' : 'client-first',
    ...(opts.close === 'framed' ? { framing: 'length-prefixed' as const } : {}),
    // The lab decides when the run ends (below); connections are never closed for idleness.
    idleTimeoutMs: opts.maxMs,
    durationMs: opts.maxMs,
  });
  const stats: ServerStats = {
    port: server.port,
    accepted: 0,
    bytesReceived: 0,
    completePayloads: 0,
    incompletePayloads: 0,
    resets: 0,
    framedMessages: 0,
    durationMs: 0,
  };
  const reset = new Set<number>();
  let lastActivity = Date.now();
  server.onEvent((e) => {
    lastActivity = Date.now();
    if (e.event === 'accepted') stats.accepted++;
    else if (e.event === 'error' && e.errno === 'ECONNRESET' && e.id !== undefined) reset.add(e.id);
    else if (e.event === 'closed') {
      stats.bytesReceived += e.bytesReceived;
      if (e.bytesReceived >= opts.payloadBytes) stats.completePayloads++;
      else stats.incompletePayloads++;
      stats.framedMessages += e.messages;
    }
  });
  emit({ type: 'listening', port: server.port });
  await untilDone(
    server,
    opts,
    () => lastActivity,
    () => stats.accepted > 0,
  );
  stats.resets = reset.size;
  stats.durationMs = Date.now() - started;
  return stats;
}

export interface UdpServerStats {
  port: number;
  datagrams: number;
  bytes: number;
}

/** UDP in place of the seed's TCP: count the datagrams that arrive (the same server, --udp). */
export async function serveUdpProbe(
  opts: { address: string; port: number; idleMs: number; maxMs: number },
  emit: (event: ProbeServerEvent) => void,
): Promise<UdpServerStats> {
  const server = await startServer({
    address: opts.address,
    port: opts.port,
    udp: true,
    durationMs: opts.maxMs,
  });
  let lastActivity = Date.now();
  server.onEvent(() => (lastActivity = Date.now()));
  emit({ type: 'listening', port: server.port });
  await untilDone(
    server,
    opts,
    () => lastActivity,
    () => server.stats().messages > 0,
  );
  const { messages, bytesReceived } = server.stats();
  await server.close();
  stopRequested.delete(server.port);
  return { port: server.port, datagrams: messages, bytes: bytesReceived };
}

/**
 * Resolve when the lab asked this server to stop and nothing is open or arriving (50 ms quiet),
 * when it has been idle for idleMs after its first traffic, after maxMs, or when it stopped.
 */
async function untilDone(
  server: ServerHandle,
  opts: { idleMs: number; maxMs: number },
  lastActivity: () => number,
  used: () => boolean,
): Promise<void> {
  const started = Date.now();
  let stopped = false;
  void server.done.then(() => (stopped = true));
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const open = server.stats().active;
      const quiet = Date.now() - lastActivity();
      const asked = stopRequested.has(server.port) && open === 0 && quiet >= 50;
      const idle = open === 0 && used() && quiet >= opts.idleMs;
      if (stopped || asked || idle || Date.now() - started >= opts.maxMs) {
        clearInterval(timer);
        resolve();
      }
    }, 20);
  });
}
