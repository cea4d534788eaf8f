/**
 * What the servers (TCP on Node or raw, UDP) share: settings after defaults, counters, the event
 * hub (events are built only while someone listens, so an unobserved server pays nothing for
 * them), error reports, the run's bounds (duration, exit-after), its handle and summary.
 */
import { show } from '../common/parse.js';
import { performance } from 'node:perf_hooks';
import { UsageError } from '../common/errors.js';
import { familyOf } from '../sockets/sockaddr.js';
import { validateLinger } from '../sockets/options.js';
import { failureOf } from '../sockets/errno.js';
import {
  FRAMINGS,
  SERVER_CLOSE_MODES,
  SERVER_ENGINES,
  type ClosedHow,
  type ServerErrorInfo,
  type ServerEvent,
  type ServerEventListener,
  type ServerHandle,
  type ServerOptions,
  type ServerSettings,
  type ServerStats,
  type ServerSummary,
} from './server-types.js';

export const DEFAULT_IDLE_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_CONNS = 4096;
export const DEFAULT_MAX_REQUEST_BYTES = 65_536;
export const DEFAULT_BACKLOG = 4096;
/** Hard ceilings, so a typo cannot ask for unbounded resources. */
export const MAX_MAX_CONNS = 1_000_000;
export const MAX_MAX_REQUEST_BYTES = 64 * 1024 * 1024;

function intIn(value: number | undefined, what: string, min: number, max: number, dflt: number): number;
function intIn(value: number | undefined, what: string, min: number, max: number, dflt: null): number | null;
function intIn(
  value: number | undefined,
  what: string,
  min: number,
  max: number,
  dflt: number | null,
): number | null {
  if (value === undefined) return dflt;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(`${what}: ${show(String(value))} is out of range (accepted: ${min} to ${max})`);
  }
  return value;
}

/** Check the options and fill in defaults; throws UsageError naming a bad value. */
export function resolveServerSettings(opts: ServerOptions): ServerSettings {
  familyOf(opts.address);
  const close = opts.close ?? 'client-first';
  if (!SERVER_CLOSE_MODES.includes(close)) {
    throw new UsageError(
      `close: '${String(close)}' is not accepted (accepted: ${SERVER_CLOSE_MODES.join(', ')})`,
    );
  }
  const framing = opts.framing ?? 'none';
  if (!FRAMINGS.includes(framing)) {
    throw new UsageError(
      `framing: ${show(String(framing))} is not accepted (accepted: ${FRAMINGS.join(', ')})`,
    );
  }
  if (opts.linger !== undefined) validateLinger(opts.linger);
  const engine = opts.engine ?? 'node';
  if (!SERVER_ENGINES.includes(engine)) {
    throw new UsageError(
      `engine: '${String(engine)}' is not accepted (accepted: ${SERVER_ENGINES.join(', ')})`,
    );
  }
  if (engine === 'raw' && opts.udp) {
    throw new UsageError('engine: raw serves TCP only (accepted with --udp: node)');
  }
  return {
    address: opts.address,
    port: intIn(opts.port, 'port', 0, 65535, 0),
    protocol: opts.udp ? 'udp' : 'tcp',
    engine,
    reuseAddr: opts.reuseAddr ?? true,
    reusePort: opts.reusePort ?? false,
    linger: opts.linger ?? 'default',
    close,
    reply: opts.reply ?? null,
    idleTimeoutMs: intIn(opts.idleTimeoutMs, 'idle timeout (ms)', 1, 86_400_000, DEFAULT_IDLE_TIMEOUT_MS),
    maxConns: intIn(opts.maxConns, 'max conns', 1, MAX_MAX_CONNS, DEFAULT_MAX_CONNS),
    maxRequestBytes: intIn(
      opts.maxRequestBytes,
      'max request bytes',
      1,
      MAX_MAX_REQUEST_BYTES,
      DEFAULT_MAX_REQUEST_BYTES,
    ),
    framing,
    backlog: intIn(opts.backlog, 'backlog', 1, 65_535, DEFAULT_BACKLOG),
    exitAfter: intIn(opts.exitAfter, 'exit after', 1, Number.MAX_SAFE_INTEGER, null),
    durationMs: intIn(opts.durationMs, 'duration (ms)', 1, 365 * 86_400_000, null),
  };
}

export function emptyStats(): ServerStats {
  return {
    accepted: 0,
    dropped: 0,
    closed: 0,
    active: 0,
    peakActive: 0,
    bytesReceived: 0,
    bytesSent: 0,
    messages: 0,
    closedHow: {
      'server-first': 0,
      'client-first': 0,
      rst: 0,
      'reset-by-peer': 0,
      'idle-timeout': 0,
      'too-large': 0,
      shutdown: 0,
    } satisfies Record<ClosedHow, number>,
    errors: {},
    eventsDropped: 0,
  };
}

/** A Node socket error as the server reports it; `syscall` names the call when Node does not. */
export function errnoInfo(err: NodeJS.ErrnoException, syscall: string): ServerErrorInfo {
  return { ...failureOf(err, syscall), message: err.message };
}

/** Counters, event hub, bounds and the `done` promise of one server run. */
export class ServerCore {
  readonly stats = emptyStats();
  readonly listeners = new Set<ServerEventListener>();
  readonly startedAt = performance.now();
  stoppedBy: ServerSummary['stoppedBy'] | null = null;
  readonly done: Promise<ServerSummary>;
  private resolveDone!: (s: ServerSummary) => void;
  private durationTimer: NodeJS.Timeout | undefined;

  constructor(
    public settings: ServerSettings,
    /** Called once when the run must stop; it calls finish() when everything is closed. */
    private readonly onStop: () => void,
  ) {
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    if (settings.durationMs !== null) {
      this.durationTimer = setTimeout(() => this.stop('duration'), settings.durationMs);
    }
  }

  /** Whether anyone listens: build event objects only then. */
  get observed(): boolean {
    return this.listeners.size > 0;
  }

  now(): number {
    return Math.round((performance.now() - this.startedAt) * 1000) / 1000;
  }

  emit(event: ServerEvent): void {
    for (const l of this.listeners) l(event);
  }

  countError(name: string): void {
    this.stats.errors[name] = (this.stats.errors[name] ?? 0) + 1;
  }

  /** Count an error by its name and, while observed, report it (`id`: the connection, if any). */
  reportError(info: ServerErrorInfo, id?: number): void {
    this.countError(info.errno);
    if (this.observed) {
      this.emit({ event: 'error', t: this.now(), ...(id === undefined ? {} : { id }), ...info });
    }
  }

  onEvent(listener: ServerEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  snapshot(): ServerStats {
    return { ...this.stats, closedHow: { ...this.stats.closedHow }, errors: { ...this.stats.errors } };
  }

  /** The caller's handle on this run; `stats` defaults to a snapshot of the core's counters. */
  handle(
    bound: { address: string; port: number },
    protocol: ServerHandle['protocol'],
    stats: () => ServerStats = () => this.snapshot(),
  ): ServerHandle {
    return {
      address: bound.address,
      port: bound.port,
      protocol,
      settings: this.settings,
      stats,
      onEvent: (l) => {
        const off = this.onEvent(l);
        return () => void off();
      },
      done: this.done,
      close: (reason: ServerSummary['stoppedBy'] = 'close') => {
        this.stop(reason);
        return this.done;
      },
    };
  }

  /** Ask the run to end; idempotent. */
  stop(reason: ServerSummary['stoppedBy']): void {
    if (this.stoppedBy) return;
    this.stoppedBy = reason;
    clearTimeout(this.durationTimer);
    this.onStop();
  }

  /** Everything is closed: emit the summary and resolve `done`. */
  finish(): void {
    const durationMs = performance.now() - this.startedAt;
    const summary: ServerSummary = {
      ...this.snapshot(),
      durationMs: Math.round(durationMs),
      acceptedPerSecond: durationMs > 0 ? Math.round((this.stats.accepted / durationMs) * 1000) : 0,
      stoppedBy: this.stoppedBy ?? 'close',
      settings: this.settings,
    };
    if (this.observed) this.emit({ event: 'summary', t: this.now(), ...summary });
    this.resolveDone(summary);
  }
}
