/**
 * `twlab serve`: the seeds' server. Parses flags, starts the library server
 * (traffic/server.ts), prints its events (one JSON object per line with --json) or a human
 * summary, and stops on its bounds or on a signal (then exits 128+n, common/exit.ts).
 */
import type { Command } from 'commander';
import { RunError } from '../common/errors.js';
import { onInterrupt } from '../common/exit.js';
import {
  parseChoice,
  parseHostPort,
  parseIntInRange,
  parseNumberInRange,
  type HostPort,
} from '../common/parse.js';
import { SyscallError } from '../sockets/errno.js';
import { parseLinger, type Linger } from '../sockets/options.js';
import { formatEndpoint } from '../sockets/socket.js';
import {
  FRAMINGS,
  SERVER_CLOSE_MODES,
  SERVER_ENGINES,
  listeningEvent,
  startServer,
  type Framing,
  type ServerCloseMode,
  type ServerEngine,
  type ServerEvent,
  type ServerHandle,
  type ServerSummary,
} from '../traffic/server.js';
import {
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CONNS,
  DEFAULT_MAX_REQUEST_BYTES,
} from '../traffic/server-core.js';
import { action, option } from './command.js';

interface ServeFlags {
  listen: HostPort;
  reuseaddr: 'on' | 'off';
  reuseport?: boolean;
  linger?: Linger;
  close: ServerCloseMode;
  reply?: string;
  idleTimeout: number;
  maxConns: number;
  maxRequestBytes: number;
  framing: Framing;
  udp?: boolean;
  engine: ServerEngine;
  duration?: number;
  exitAfter?: number;
  json?: boolean;
}

/** Why the kernel refused the listening address, in words a user can act on. */
const BIND_HINTS: Record<string, string> = {
  EADDRINUSE:
    'address in use; another socket holds this port: a listener, or with --reuseaddr off also connections in TIME_WAIT (see `twlab census --port PORT`)',
  EACCES: 'permission denied; ports below 1024 need root or CAP_NET_BIND_SERVICE',
  EADDRNOTAVAIL: 'address not available; it is not an address of this host (or this namespace)',
};

/** Longest JSON output waiting for stdout; beyond it events are dropped and counted. */
const MAX_PENDING_OUTPUT = 8 * 1024 * 1024;

/**
 * Writes one JSON line per event, batched per event-loop turn; when stdout does not keep up,
 * drops events (never the summary) rather than queue without bound.
 */
function jsonLineWriter(): { write(e: ServerEvent): void; dropped(): number } {
  let pending: string[] = [];
  let scheduled = false;
  let dropped = 0;
  const flush = (): void => {
    scheduled = false;
    if (pending.length === 0) return;
    const text = pending.join('');
    pending = [];
    process.stdout.write(text);
  };
  return {
    write(e) {
      if (e.event === 'summary') {
        flush();
        process.stdout.write(`${JSON.stringify({ ...e, eventsDropped: dropped })}\n`);
        return;
      }
      if (process.stdout.writableLength > MAX_PENDING_OUTPUT) {
        dropped++;
        return;
      }
      pending.push(`${JSON.stringify(e)}\n`);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    dropped: () => dropped,
  };
}

function describeSettings(h: ServerHandle): string {
  const s = h.settings;
  const parts = [
    s.protocol,
    ...(s.engine !== 'node' ? [`engine ${s.engine}`] : []),
    `close ${s.close}`,
    `SO_REUSEADDR ${s.reuseAddr ? 'on' : 'off'}`,
    ...(s.reusePort ? ['SO_REUSEPORT on'] : []),
    ...(s.linger !== 'default' ? [`SO_LINGER ${s.linger === 'off' ? 'off' : `{1,${s.linger}}`}`] : []),
    ...(s.framing !== 'none' ? [`framing ${s.framing}`] : []),
  ];
  return parts.join(', ');
}

function humanSummary(sum: ServerSummary): string {
  const how = Object.entries(sum.closedHow)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  const errors = Object.entries(sum.errors)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  const unit = sum.settings.protocol === 'udp' ? 'datagrams' : 'connections';
  return [
    `stopped (${sum.stoppedBy}) after ${(sum.durationMs / 1000).toFixed(1)} s: ${sum.accepted} ${unit} (${sum.acceptedPerSecond}/s), ${sum.bytesReceived} bytes in, ${sum.bytesSent} out`,
    ...(sum.settings.protocol === 'tcp'
      ? [`closed: ${how || 'none'}; peak ${sum.peakActive} open; dropped at max-conns: ${sum.dropped}`]
      : []),
    ...(sum.messages > 0 && sum.settings.protocol === 'tcp' ? [`messages: ${sum.messages}`] : []),
    `errors: ${errors || 'none'}`,
  ].join('\n');
}

async function serve(flags: ServeFlags): Promise<number> {
  const where = formatEndpoint({ address: flags.listen.host, port: flags.listen.port });
  let handle: ServerHandle;
  try {
    handle = await startServer({
      address: flags.listen.host,
      port: flags.listen.port,
      udp: flags.udp ?? false,
      engine: flags.engine,
      reuseAddr: flags.reuseaddr === 'on',
      reusePort: flags.reuseport ?? false,
      ...(flags.linger !== undefined ? { linger: flags.linger } : {}),
      close: flags.close,
      ...(flags.reply !== undefined ? { reply: flags.reply } : {}),
      idleTimeoutMs: flags.idleTimeout,
      maxConns: flags.maxConns,
      maxRequestBytes: flags.maxRequestBytes,
      framing: flags.framing,
      ...(flags.exitAfter !== undefined ? { exitAfter: flags.exitAfter } : {}),
      ...(flags.duration !== undefined ? { durationMs: Math.max(1, Math.round(flags.duration * 1000)) } : {}),
    });
  } catch (err) {
    if (err instanceof SyscallError) {
      throw new RunError(`cannot listen on ${where}: ${err.code} (${BIND_HINTS[err.code] ?? err.message})`);
    }
    throw err;
  }

  // A signal stops the server, which reports its summary; the exit code is then 128+n.
  const forgetInterrupt = onInterrupt(() => void handle.close('signal'), 'finish');
  let status: NodeJS.Timeout | undefined;
  if (flags.json) {
    const out = jsonLineWriter();
    out.write(listeningEvent(handle));
    handle.onEvent((e) => out.write(e));
  } else {
    process.stdout.write(`listening on ${formatEndpoint(handle)} (${describeSettings(handle)})\n`);
    if (process.stderr.isTTY) {
      status = setInterval(() => {
        const s = handle.stats();
        process.stderr.write(`\r${s.accepted} accepted, ${s.active} open, ${s.bytesReceived} bytes in   `);
      }, 1000);
      status.unref();
    }
  }
  const summary = await handle.done;
  forgetInterrupt();
  if (status) {
    clearInterval(status);
    process.stderr.write('\n');
  }
  if (!flags.json) process.stdout.write(`${humanSummary(summary)}\n`);
  return 0;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description("The seeds' server: accept, read, answer, close the way you choose, report every step")
    .requiredOption(
      '--listen <host:port>',
      'address to listen on (IPv4, [IPv6] or localhost; port 1-65535)',
      option((t) => parseHostPort(t, '--listen')),
    )
    .option(
      '--reuseaddr <on|off>',
      'SO_REUSEADDR on the listener (off: a port held by TIME_WAIT cannot be bound)',
      option((t) => parseChoice(t, '--reuseaddr', ['on', 'off'] as const)),
      'on',
    )
    .option('--reuseport', 'SO_REUSEPORT on the listener (several servers on one port)')
    .option(
      '--linger <off|0|seconds>',
      'SO_LINGER on the listener, inherited by each connection (0: close sends RST)',
      option((t) => parseLinger(t, '--linger')),
    )
    .option(
      '--close <mode>',
      "who closes first: server-first (FIN right after the request), client-first (after the client's EOF), rst (SO_LINGER {1,0})",
      option((t) => parseChoice(t, '--close', SERVER_CLOSE_MODES)),
      'client-first' as ServerCloseMode,
    )
    .option('--reply <text>', 'answer each request with this text before closing')
    .option(
      '--idle-timeout <ms>',
      'close a connection idle this long',
      option((t) => parseIntInRange(t, '--idle-timeout', 1, 86_400_000)),
      DEFAULT_IDLE_TIMEOUT_MS,
    )
    .option(
      '--max-conns <n>',
      'connections open at once; more are closed at accept',
      option((t) => parseIntInRange(t, '--max-conns', 1, 1_000_000)),
      DEFAULT_MAX_CONNS,
    )
    .option(
      '--max-request-bytes <n>',
      'largest request (length-prefixed: per message); over it: error event and close',
      option((t) => parseIntInRange(t, '--max-request-bytes', 1, 64 * 1024 * 1024)),
      DEFAULT_MAX_REQUEST_BYTES,
    )
    .option(
      '--framing <framing>',
      'none, or length-prefixed (4-byte big-endian length + body; counted and answered per message)',
      option((t) => parseChoice(t, '--framing', FRAMINGS)),
      'none' as Framing,
    )
    .option('--udp', 'listen on UDP and count datagrams (the "use UDP" fix)')
    .option(
      '--engine <engine>',
      "node (Node's net server, every event) or raw (epoll loop in a worker thread, TCP: for high rates; listening/error/summary events only)",
      option((t) => parseChoice(t, '--engine', SERVER_ENGINES)),
      'node' as ServerEngine,
    )
    .option(
      '--duration <seconds>',
      'stop after this long',
      option((t) => parseNumberInRange(t, '--duration', 0.001, 31_536_000)),
    )
    .option(
      '--exit-after <n>',
      'stop after n connections have closed (UDP: n datagrams)',
      option((t) => parseIntInRange(t, '--exit-after', 1, Number.MAX_SAFE_INTEGER)),
    )
    .option(
      '--json',
      'one JSON event per line on stdout (listening, accepted, received, closed, error, summary)',
    )
    .addHelpText(
      'after',
      `
Examples:
  twlab serve --listen 127.0.0.1:12347                      the seed's server (SO_REUSEADDR on, client-first)
  twlab serve --listen 127.0.0.1:8080 --close server-first --reuseaddr off --exit-after 1 --json
  twlab serve --listen 127.0.0.1:8080 --close rst --reply ok --duration 10
  twlab serve --listen 127.0.0.1:8080 --udp --exit-after 1000

Exit codes: 0 stopped at its bounds, 1 could not listen (e.g. EADDRINUSE), 2 bad usage,
128+n stopped by signal n (SIGINT 130, SIGTERM 143, SIGHUP 129) after printing its summary.`,
    )
    .action(action((flags: ServeFlags) => serve(flags)));
}
