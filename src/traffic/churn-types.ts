/**
 * The churn client's public shapes: what a caller asks for (ChurnOptions, JSON-friendly so it can
 * cross into a sandbox host), what it gets back (ChurnSummary: the `--json` contract), and the
 * events it sees while the run goes on.
 */
import type { NatSpec, SysctlOutcome } from '../sandbox/types.js';
import type { Failure } from '../sockets/errno.js';
import type { Linger } from '../sockets/options.js';

/**
 * Who sends the first FIN. client-first: send, shutdown(SHUT_RDWR), close (the seed's client; the
 * client holds TIME_WAIT). server-first: send, wait for the server's EOF, then close (the server
 * holds TIME_WAIT). rst: SO_LINGER {1,0} then close (an abortive RST, no TIME_WAIT anywhere).
 */
export type CloseMode = 'client-first' | 'server-first' | 'rst';
export const CLOSE_MODES: readonly CloseMode[] = ['client-first', 'server-first', 'rst'];

export interface ChurnOptions {
  /** "HOST:PORT" (IPv4, [IPv6] or localhost); several: iterations go to them in turn. */
  to: string | readonly string[];
  /** Iterations to attempt. Default 1000 when neither count nor durationS is given. */
  count?: number;
  /** Stop starting new iterations after this many seconds. */
  durationS?: number;
  /** Connections in flight at once (TCP per-connection mode only). Default 1. */
  concurrency?: number;
  /** Iterations started per second; 0 or absent: as fast as possible. */
  rate?: number;
  /** Bytes sent per iteration. Default "foo", as the seed's client. */
  payload?: string;
  close?: CloseMode;
  /** One connection, one length-prefixed message (4-byte big-endian length + payload) per iteration. */
  reuseConnection?: boolean;
  /** One UDP socket and datagram per iteration instead of a TCP connection. */
  udp?: boolean;
  /** "IP" or "IP:PORT" to bind before connecting; several: iterations use them in turn. */
  bind?: string | readonly string[];
  /** Set SO_REUSEADDR on (true) or explicitly off (false) on every client socket; absent: untouched. */
  reuseAddr?: boolean;
  /** IP_BIND_ADDRESS_NO_PORT, with bind(IP, 0) before connect (IP from `bind`, else 0.0.0.0 / ::). */
  bindNoPort?: boolean;
  /** Per-socket IP_LOCAL_PORT_RANGE "A-B" (Linux 6.3+). */
  localPortRange?: string;
  /** SO_LINGER: 'off' (absent: untouched, the kernel default), 0 (abortive close) or N seconds. */
  linger?: Linger;
  /**
   * client-first: shutdown(SHUT_RDWR) before close(), as the seed's client does. Default: yes,
   * except with SO_LINGER 0, where close() alone sends the RST (a shutdown first sends a FIN, and
   * the server's answering FIN can put the socket in TIME_WAIT before close() runs).
   */
  shutdown?: boolean;
  /** Stop at the first failed iteration, like the seed's client. Default true. */
  stopOnError?: boolean;
  /** An iteration that has not finished after this long fails with ETIMEDOUT. Default 10000. */
  timeoutMs?: number;
  /** How often progress events are emitted. Default 200. */
  progressIntervalMs?: number;
}

/** One failed syscall of one iteration, named as the kernel named it. */
/**
 * A failed iteration: `errno` the name ("EADDRNOTAVAIL"), `code` the number (99), `syscall` the
 * step that failed (socket, setsockopt, bind, connect, send, recv, shutdown, close).
 */
export interface ChurnError extends Failure {
  /** 1-based number of the iteration that failed. */
  atIteration: number;
}

export interface ChurnErrorCount extends Failure {
  count: number;
}

/** The effective settings of a run, after defaults. */
export interface ChurnSettings {
  /** The destination; several: comma-separated, in the order used. */
  to: string;
  count: number | null;
  durationS: number | null;
  concurrency: number;
  rate: number | null;
  payloadBytes: number;
  close: CloseMode;
  reuseConnection: boolean;
  udp: boolean;
  /** The bind address; several: comma-separated, in the order used. */
  bind: string | null;
  reuseAddr: 'on' | 'off' | 'default';
  bindNoPort: boolean;
  localPortRange: string | null;
  linger: Linger | 'default';
  /** client-first: whether shutdown(SHUT_RDWR) came before close(). */
  shutdown: boolean;
  stopOnError: boolean;
  timeoutMs: number;
  /** The client's ephemeral port range and TIME_WAIT sysctls as read in the running namespace. */
  sysctls: Record<string, string | null>;
  kernel: string;
  /** With --sandbox: what happened to every requested sysctl. */
  sandbox?: {
    hosts: 1 | 2 | 3;
    /** 3 hosts: the router's source NAT (address, ports, fullyRandom). */
    nat?: NatSpec & { address: string };
    mode: 'root' | 'userns';
    sysctls: readonly SysctlOutcome[];
    server: string[];
  };
}

export interface ChurnSummary {
  attempted: number;
  succeeded: number;
  failed: number;
  firstError: ChurnError | null;
  /** Successful iterations per second of the run's wall time. */
  connectionsPerSecond: number;
  latencyMs: { p50: number; p99: number; max: number; mean: number };
  /**
   * Successful iterations that took `overMs` (500) or longer, e.g. a SYN retransmitted after 1 s
   * because a NAT or a peer's TIME_WAIT answered the first one wrongly; and the first of them.
   */
  stalls: { overMs: number; count: number; first: { atIteration: number; ms: number } | null };
  /** Distinct local ports used by successful iterations. */
  localPortsUsed: number;
  localPortRangeSeen: { low: number; high: number } | null;
  durationMs: number;
  /**
   * CPU time (user + system, ms) of the thread that ran the loop, and per attempted iteration (us):
   * what the run cost, independent of how much of a busy machine it got.
   */
  cpu: { ms: number; usPerIteration: number };
  /** How often the loop waited in epoll (a connection not yet ready, pacing, or progress ticks). */
  waits: number;
  /** Why the run ended. */
  stoppedBy: 'count' | 'duration' | 'error' | 'signal';
  errors: ChurnErrorCount[];
  settings: ChurnSettings;
}

export type ChurnEvent =
  | { type: 'start'; settings: ChurnSettings }
  | { type: 'progress'; attempted: number; succeeded: number; failed: number; elapsedMs: number }
  | { type: 'error'; error: ChurnError };
