/**
 * The churn client (the seeds' client): open, send, close, repeat, with every close strategy and
 * socket option, and a summary of what the kernel answered. `runChurn` validates the options,
 * runs the hot loop (churn-loop.ts) in a worker thread so the caller's event loop stays free, and
 * turns its raw counters into a ChurnSummary. Callable in a sandbox host:
 * `remote(host, CHURN, onEvent).runChurn(opts)` (traffic/remote.ts).
 */
import { release } from 'node:os';
import { Worker } from 'node:worker_threads';
import { RunError, UsageError } from '../common/errors.js';
import { parseHost, parseHostPort, parsePortRange, show, type HostPort } from '../common/parse.js';
import { distPath } from '../common/paths.js';
import { readSysctl } from '../observe/sysctl.js';
import { failure } from '../sockets/errno.js';
import { validateLinger } from '../sockets/options.js';
import { encodeSockaddr } from '../sockets/sockaddr.js';
import { closeFd, formatEndpoint, openSocket } from '../sockets/socket.js';
import { LatencyHistogram, PortSet, STALL_MS } from './churn-stats.js';
import { frame } from './server-framing.js';
import type { LoopConfig, LoopFailure, LoopProgress, LoopResult } from './churn-loop.js';
import {
  CLOSE_MODES,
  type ChurnError,
  type ChurnEvent,
  type ChurnOptions,
  type ChurnSettings,
  type ChurnSummary,
} from './churn-types.js';

export * from './churn-types.js';

export const DEFAULT_COUNT = 1000;
export const MAX_CONCURRENCY = 4096;
export const DEFAULT_TIMEOUT_MS = 10_000;
/** Bound on --duration: one day. */
export const MAX_DURATION_S = 86_400;
/** Bound on one payload: a connection's request is small; the server caps what it reads. */
export const MAX_PAYLOAD_BYTES = 1 << 20;

/** The sysctls that decide how a churn run ends, read in the namespace the run is in. */
const SYSCTLS = [
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_tw_reuse',
  'net.ipv4.tcp_tw_reuse_delay',
  'net.ipv4.tcp_timestamps',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_max_tw_buckets',
];

/** Each of SYSCTLS, null where this kernel has no such key. */
function readSysctls(): Record<string, string | null> {
  return Object.fromEntries(SYSCTLS.map((key) => [key, readSysctl(key) ?? null]));
}

function positiveInt(value: unknown, what: string, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new UsageError(
      `${what}: '${String(value)}' is not accepted (accepted: a whole number from 1 to ${max})`,
    );
  }
  return value;
}

function positiveNumber(value: unknown, what: string, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > max) {
    throw new UsageError(
      `${what}: '${String(value)}' is not accepted (accepted: a number > 0 and <= ${max})`,
    );
  }
  return value;
}

/** "IP" or "IP:PORT" / "[IPv6]:PORT". */
export function parseBindAddress(text: string, what = 'bind'): { host: string; port: number } {
  const t = text.trim();
  if (/^\[.*\]:\d+$/.test(t) || /^[^:]+:\d+$/.test(t)) {
    const hp = parseHostPort(t, what, { allowZeroPort: true });
    return { host: hp.host, port: hp.port };
  }
  return { host: parseHost(t.replace(/^\[(.*)\]$/, '$1'), what), port: 0 };
}

interface Plan {
  config: LoopConfig;
  settings: Omit<ChurnSettings, 'sysctls' | 'kernel'>;
}

/** Validate options (UsageError naming the bad one) and encode what the loop needs. */
export function planChurn(opts: ChurnOptions): Plan {
  if (typeof opts !== 'object' || opts === null) throw new UsageError('churn: options must be an object');
  const toList = typeof opts.to === 'string' ? [opts.to] : opts.to;
  if (!Array.isArray(toList) || toList.length === 0 || toList.some((t) => typeof t !== 'string')) {
    throw new UsageError(`to: ${show(String(opts.to))} is not HOST:PORT`);
  }
  const tos: HostPort[] = toList.map((t: string) => parseHostPort(t, 'to'));
  const to = tos[0]!;
  const mixed = tos.find((t) => t.family !== to.family);
  if (mixed)
    throw new UsageError(
      `to: '${formatEndpoint({ address: mixed.host, port: mixed.port })}' is not the same address family as '${toList[0]}'`,
    );
  const count = opts.count === undefined ? null : positiveInt(opts.count, 'count', Number.MAX_SAFE_INTEGER);
  const durationS =
    opts.durationS === undefined ? null : positiveNumber(opts.durationS, 'duration', MAX_DURATION_S);
  const effectiveCount = count === null && durationS === null ? DEFAULT_COUNT : count;
  const concurrency =
    opts.concurrency === undefined ? 1 : positiveInt(opts.concurrency, 'concurrency', MAX_CONCURRENCY);
  const rate =
    opts.rate === undefined || opts.rate === 0 ? null : positiveNumber(opts.rate, 'rate', 10_000_000);
  const payloadText = opts.payload ?? 'foo';
  if (typeof payloadText !== 'string') throw new UsageError('payload: must be text');
  const payload = Buffer.from(payloadText, 'utf8');
  if (payload.length > MAX_PAYLOAD_BYTES) {
    throw new UsageError(
      `payload: ${payload.length} bytes is too long (accepted: up to ${MAX_PAYLOAD_BYTES})`,
    );
  }
  const close = opts.close ?? 'client-first';
  if (!CLOSE_MODES.includes(close)) {
    throw new UsageError(
      `close: ${show(String(close))} is not accepted (accepted: ${CLOSE_MODES.join(', ')})`,
    );
  }
  const reuseConnection = opts.reuseConnection === true;
  const udp = opts.udp === true;
  if (reuseConnection && udp) throw new UsageError('reuse-connection and udp cannot be combined (pick one)');
  if (udp && close !== 'client-first') {
    throw new UsageError(`close: ${show(close)} does not apply to --udp (UDP has no FIN or RST)`);
  }
  if (udp && opts.linger !== undefined) throw new UsageError('linger does not apply to --udp');
  const bindList = opts.bind === undefined ? [] : typeof opts.bind === 'string' ? [opts.bind] : opts.bind;
  const binds = bindList.map((text: string) => {
    const b = parseBindAddress(text);
    if ((b.host.includes(':') ? 6 : 4) !== to.family) {
      throw new UsageError(
        `bind: ${show(text)} is not the same address family as --to ${show(String(toList[0]))}`,
      );
    }
    return b;
  });
  const bindNoPort = opts.bindNoPort === true;
  if (bindNoPort) {
    const withPort = bindList.find((_: string, i: number) => binds[i]!.port !== 0);
    if (withPort !== undefined) {
      throw new UsageError(
        `bind-no-port: --bind '${withPort}' has a port (accepted: an address without port)`,
      );
    }
    if (binds.length === 0) binds.push({ host: to.family === 6 ? '::' : '0.0.0.0', port: 0 });
  }
  let localPortRange: number | null = null;
  if (opts.localPortRange !== undefined) {
    const r = parsePortRange(opts.localPortRange, 'local-port-range');
    localPortRange = ((r.high << 16) | r.low) >>> 0;
  }
  if (opts.linger !== undefined) validateLinger(opts.linger, 'linger');
  const abortive = close === 'rst' || opts.linger === 0;
  const shutdown = close === 'client-first' && (opts.shutdown ?? !abortive);
  const stopOnError = opts.stopOnError ?? true;
  const timeoutMs =
    opts.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : positiveInt(opts.timeoutMs, 'timeoutMs', 3_600_000);
  const progressIntervalMs =
    opts.progressIntervalMs === undefined
      ? 200
      : positiveInt(opts.progressIntervalMs, 'progressIntervalMs', 60_000);

  const framed = reuseConnection ? frame(payload) : payload;
  const config: LoopConfig = {
    family: to.family,
    targets: tos.map((t) => encodeSockaddr(t.host, t.port)),
    mode: udp ? 'udp' : reuseConnection ? 'reuse' : 'tcp',
    close,
    count: effectiveCount ?? -1,
    durationMs: durationS === null ? -1 : durationS * 1000,
    concurrency: udp || reuseConnection ? 1 : concurrency,
    rate: rate ?? 0,
    payload: framed,
    binds: binds.map((b) => encodeSockaddr(b.host, b.port)),
    bindNoPort,
    reuseAddr: opts.reuseAddr === undefined ? null : opts.reuseAddr,
    localPortRange,
    linger: opts.linger ?? null,
    shutdown,
    stopOnError,
    timeoutMs,
    progressIntervalMs,
  };
  const settings: Plan['settings'] = {
    to: tos.map((t) => formatEndpoint({ address: t.host, port: t.port })).join(','),
    count: effectiveCount,
    durationS,
    concurrency: config.concurrency,
    rate,
    payloadBytes: payload.length,
    close,
    reuseConnection,
    udp,
    bind: binds.length ? binds.map((b) => formatEndpoint({ address: b.host, port: b.port })).join(',') : null,
    reuseAddr: opts.reuseAddr === undefined ? 'default' : opts.reuseAddr ? 'on' : 'off',
    bindNoPort,
    localPortRange: opts.localPortRange === undefined ? null : opts.localPortRange.trim(),
    linger: close === 'rst' ? 0 : (opts.linger ?? 'default'),
    shutdown,
    stopOnError,
    timeoutMs,
  };
  return { config, settings };
}

/** IP_LOCAL_PORT_RANGE is Linux 6.3+: find out before the run, with the clear error options.ts gives. */
function probeLocalPortRange(plan: Plan): void {
  const range = plan.config.localPortRange;
  if (range === null) return;
  const fd = openSocket(plan.config.mode === 'udp' ? 'udp' : 'tcp', plan.config.family, {
    localPortRange: { low: range & 0xffff, high: range >>> 16 },
  });
  closeFd(fd);
}

function toChurnError(f: LoopFailure): ChurnError {
  return { ...failure(f.syscall, f.code), atIteration: f.atIteration };
}

const round = (v: number, digits = 3): number => Math.round(v * 10 ** digits) / 10 ** digits;

/** Turn the loop's raw counters into the summary (the `--json` contract). */
export function summarize(result: LoopResult, settings: ChurnSettings): ChurnSummary {
  const latency = new LatencyHistogram(result.latencyCounts);
  const ports = new PortSet(result.ports);
  const errors = Object.entries(result.errors)
    .map(([key, count]) => {
      const [syscall, code] = key.split(':') as [string, string];
      return { ...failure(syscall, Number(code)), count };
    })
    .sort((a, b) => b.count - a.count);
  return {
    attempted: result.attempted,
    succeeded: result.succeeded,
    failed: result.failed,
    firstError: result.firstError ? toChurnError(result.firstError) : null,
    connectionsPerSecond: result.elapsedMs > 0 ? Math.round((result.succeeded * 1000) / result.elapsedMs) : 0,
    latencyMs: {
      p50: round(latency.quantileUs(0.5) / 1000),
      p99: round(latency.quantileUs(0.99) / 1000),
      max: round(result.latencyMaxUs / 1000),
      mean: latency.total > 0 ? round(result.latencySumUs / latency.total / 1000) : 0,
    },
    stalls: {
      overMs: STALL_MS,
      count: result.stalls,
      first: result.firstStall
        ? { atIteration: result.firstStall.atIteration, ms: round(result.firstStall.ms, 1) }
        : null,
    },
    localPortsUsed: ports.size,
    localPortRangeSeen: ports.bounds(),
    durationMs: round(result.elapsedMs, 1),
    cpu: {
      ms: round(result.cpuMs, 1),
      usPerIteration: result.attempted > 0 ? round((result.cpuMs * 1000) / result.attempted, 2) : 0,
    },
    waits: result.waits,
    stoppedBy: result.stoppedBy,
    errors,
    settings,
  };
}

export interface ChurnControl {
  /** Aborting stops starting new iterations; the summary covers what ran (stoppedBy 'signal'). */
  signal?: AbortSignal;
}

/**
 * Run the churn client and resolve with its summary. A run that hits an error is still a
 * completed run: the error is in `firstError`/`errors`. Bad options throw UsageError; a missing
 * kernel feature throws RunError.
 */
export async function runChurn(
  opts: ChurnOptions,
  emit?: (event: ChurnEvent) => void,
  control: ChurnControl = {},
): Promise<ChurnSummary> {
  const plan = planChurn(opts);
  probeLocalPortRange(plan);
  const settings: ChurnSettings = { ...plan.settings, sysctls: readSysctls(), kernel: release() };
  emit?.({ type: 'start', settings });

  const stop = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(distPath('traffic/churn-worker.js'), {
    workerData: { config: plan.config, stop },
  });
  const onAbort = (): void => {
    Atomics.store(stop, 0, 1);
  };
  if (control.signal?.aborted) onAbort();
  control.signal?.addEventListener('abort', onAbort);
  try {
    const result = await new Promise<LoopResult>((resolve, reject) => {
      let done: LoopResult | null = null;
      worker.on('message', (msg: { type: string } & Record<string, unknown>) => {
        if (msg.type === 'progress') {
          const p = msg as unknown as LoopProgress;
          emit?.({
            type: 'progress',
            attempted: p.attempted,
            succeeded: p.succeeded,
            failed: p.failed,
            elapsedMs: Math.round(p.elapsedMs),
          });
        } else if (msg.type === 'failure') {
          emit?.({ type: 'error', error: toChurnError(msg as unknown as LoopFailure) });
        } else if (msg.type === 'result') {
          done = msg['result'] as LoopResult;
        }
      });
      worker.on('error', (err) => reject(new RunError(`churn worker failed: ${err.message}`)));
      worker.on('exit', (code) => {
        if (done) resolve(done);
        else reject(new RunError(`churn worker exited with code ${code} before reporting`));
      });
    });
    return summarize(result, settings);
  } finally {
    control.signal?.removeEventListener('abort', onAbort);
  }
}
