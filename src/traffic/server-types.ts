/**
 * The seeds' server, as data: what a caller asks for (ServerOptions, JSON-friendly so it can cross
 * into a sandbox host), the events it reports (one per line with `twlab serve --json`), and its
 * counters. Field and event names are a contract: the lab and tests read them.
 */
import type { Failure } from '../sockets/errno.js';
import type { Linger } from '../sockets/options.js';

/**
 * Who sends the first FIN. server-first: the server closes right after reading the request (it
 * then holds TIME_WAIT). client-first: the server closes only after the client's EOF (the
 * client holds TIME_WAIT), as the seed's server does. rst: SO_LINGER {1,0} then close: an
 * abortive RST after reading the request, no TIME_WAIT anywhere.
 */
export type ServerCloseMode = 'server-first' | 'client-first' | 'rst';
export const SERVER_CLOSE_MODES: readonly ServerCloseMode[] = ['server-first', 'client-first', 'rst'];

/**
 * none: a request is whatever arrives (at most maxRequestBytes per connection).
 * length-prefixed: messages of a 4-byte big-endian length then that many bytes; each one counted
 * and, with `reply`, answered with a framed reply (the churn client's --reuse-connection mode).
 */
export type Framing = 'none' | 'length-prefixed';
export const FRAMINGS: readonly Framing[] = ['none', 'length-prefixed'];

/**
 * node: Node's net server, every event (accepted, received, closed). raw: an epoll loop in a
 * worker thread (TCP only), for rates Node's per-connection net.Socket cannot sustain; it reports
 * listening, errors and the summary but no per-connection events.
 */
export type ServerEngine = 'node' | 'raw';
export const SERVER_ENGINES: readonly ServerEngine[] = ['node', 'raw'];

/** How one connection ended, as the server saw it. */
export type ClosedHow =
  | 'server-first'
  | 'client-first'
  | 'rst'
  | 'reset-by-peer'
  | 'idle-timeout'
  | 'too-large'
  /** Still open when the server stopped (duration, exit-after, signal): destroyed. */
  | 'shutdown';

export interface ServerOptions {
  /** IP address to listen on (IPv4 or IPv6 literal). */
  address: string;
  /** 1-65535; 0 lets the kernel pick (library use; the CLI requires 1-65535). */
  port: number;
  /** UDP instead of TCP: count datagrams (the seeds' "use UDP" fix). */
  udp?: boolean;
  /** Default 'node'. */
  engine?: ServerEngine;
  /** SO_REUSEADDR on the listener. Default true (the seed's server and Node both set it). */
  reuseAddr?: boolean;
  reusePort?: boolean;
  /** SO_LINGER on the listener, inherited by every accepted connection. Default: untouched. */
  linger?: Linger;
  /** Default 'client-first', the seed server's behaviour. */
  close?: ServerCloseMode;
  /** Sent once per request (framing none: after the first bytes; length-prefixed: per message). */
  reply?: string;
  /** Close a connection idle this long. Default 10 000 ms. */
  idleTimeoutMs?: number;
  /** Concurrent connections; more are dropped at accept. Default 4096. */
  maxConns?: number;
  /** Largest request (framing none: per connection; length-prefixed: per message). Default 65 536. */
  maxRequestBytes?: number;
  framing?: Framing;
  /** listen(2) backlog. Default 4096 (the kernel caps it at net.core.somaxconn). */
  backlog?: number;
  /** Stop after this many connections have closed (TCP) or datagrams arrived (UDP). */
  exitAfter?: number;
  /** Stop after this long. */
  durationMs?: number;
}

/** Settings after defaults, reported with `listening` and in the summary. */
export interface ServerSettings {
  address: string;
  port: number;
  protocol: 'tcp' | 'udp';
  engine: ServerEngine;
  reuseAddr: boolean;
  reusePort: boolean;
  linger: Linger | 'default';
  close: ServerCloseMode;
  reply: string | null;
  idleTimeoutMs: number;
  maxConns: number;
  maxRequestBytes: number;
  framing: Framing;
  backlog: number;
  exitAfter: number | null;
  durationMs: number | null;
}

export interface ServerStats {
  /** Connections accepted (TCP) / datagrams received (UDP). */
  accepted: number;
  /** Connections refused at accept because maxConns were open. */
  dropped: number;
  closed: number;
  /** Open now. */
  active: number;
  /** Most connections open at once. */
  peakActive: number;
  bytesReceived: number;
  bytesSent: number;
  /** Framed messages (length-prefixed) or datagrams (UDP). */
  messages: number;
  closedHow: Record<ClosedHow, number>;
  /** Errors by errno name (ECONNRESET, EPIPE...) or kind ("too-large"). */
  errors: Record<string, number>;
  /** --json events dropped because stdout did not keep up (bounded output buffer). */
  eventsDropped: number;
}

export interface ServerSummary extends ServerStats {
  durationMs: number;
  /** Accepted connections (or datagrams) per second of the run. */
  acceptedPerSecond: number;
  stoppedBy: 'exit-after' | 'duration' | 'signal' | 'close';
  settings: ServerSettings;
}

/** A peer address. */
export interface Peer {
  address: string;
  port: number;
}

/** An error, named as the kernel (errno) or the server (kind) named it. */
/**
 * `errno`: the errno name (ECONNRESET) or, for the server's own limits, the kind ("too-large");
 * `code`: the errno number, 0 for the server's own limits; `syscall`: the call that failed (read,
 * write, accept, bind...), or "server" for its own limits.
 */
export interface ServerErrorInfo extends Failure {
  message: string;
}

/** `t`: milliseconds since the server started listening. `id`: the connection's number (1-based). */
export type ServerEvent =
  | { event: 'listening'; t: number; address: string; port: number; settings: ServerSettings }
  | { event: 'accepted'; t: number; id: number; peer: Peer }
  | { event: 'received'; t: number; id: number; bytes: number; peer?: Peer }
  | { event: 'closed'; t: number; id: number; how: ClosedHow; bytesReceived: number; messages: number }
  | ({ event: 'error'; t: number; id?: number } & ServerErrorInfo)
  | ({ event: 'summary'; t: number } & ServerSummary);

export type ServerEventListener = (event: ServerEvent) => void;

export interface ServerHandle {
  readonly address: string;
  readonly port: number;
  readonly protocol: 'tcp' | 'udp';
  readonly settings: ServerSettings;
  /** A snapshot of the counters. */
  stats(): ServerStats;
  /** Subscribe to events; returns an unsubscribe function. Events are built only while someone listens. */
  onEvent(listener: ServerEventListener): () => void;
  /** Resolves when the server has stopped (exitAfter, durationMs, or close()). */
  readonly done: Promise<ServerSummary>;
  /** Stop accepting, destroy open connections, resolve with the summary. Idempotent. */
  close(reason?: ServerSummary['stoppedBy']): Promise<ServerSummary>;
}
