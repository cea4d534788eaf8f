/**
 * `twlab churn --to HOST:PORT`: the seeds' client. Open, send, close, repeat, bounded by count
 * and/or time, and report what the kernel answered (the first errno, distinct local ports, rate).
 * With --sandbox it brings its own namespace and server.
 */
import type { Command } from 'commander';
import { UsageError } from '../common/errors.js';
import { onInterrupt } from '../common/exit.js';
import {
  parseChoice,
  parseHostPort,
  parseIntInRange,
  parseNumberInRange,
  parsePortRange,
} from '../common/parse.js';
import { parseLinger } from '../sockets/options.js';
import {
  CLOSE_MODES,
  MAX_CONCURRENCY,
  MAX_DURATION_S,
  parseBindAddress,
  runChurn,
  type ChurnEvent,
  type ChurnOptions,
  type ChurnSummary,
} from '../traffic/churn.js';
import { runChurnInSandbox, type SandboxChurnSummary } from '../traffic/churn-sandbox.js';
import { action, option, printJson, repeatable } from './command.js';
import { addSandboxOptions, sandboxSpecFromOptions, type SandboxCliOptions } from './sandbox-options.js';

/** The flags named and typed as ChurnOptions fields, copied over as they are by toOptions. */
type SameAsOptions = Pick<
  ChurnOptions,
  | 'to'
  | 'count'
  | 'concurrency'
  | 'rate'
  | 'payload'
  | 'close'
  | 'reuseConnection'
  | 'udp'
  | 'bind'
  | 'bindNoPort'
  | 'localPortRange'
  | 'linger'
>;

interface ChurnFlags extends SandboxCliOptions, SameAsOptions {
  /** Seconds (ChurnOptions.durationS). */
  duration?: number;
  reuseaddr?: 'on' | 'off';
  stopOnError: boolean;
  /** Milliseconds (ChurnOptions.timeoutMs). */
  timeout?: number;
  json?: boolean;
  sandbox?: boolean;
}

const HELP = `
Exit codes:
  0  the run completed, including a run that stopped at its first error (see firstError)
  1  the run could not be done (sandbox or server failed to start, kernel lacks a feature)
  2  bad usage (a value out of range, an unknown --close, a host that does not parse)

Close modes:
  client-first  send, shutdown(SHUT_RDWR), close: the seed's client; the client holds TIME_WAIT
  server-first  send, wait for the server's FIN, close: the server holds TIME_WAIT
  rst           SO_LINGER {1,0} then close: an abortive RST, no TIME_WAIT

Examples:
  # the seed's failure in 100 ports: stops at iteration 101 with EADDRNOTAVAIL
  twlab churn --sandbox --port-range 50000-50099 --sysctl tcp_tw_reuse=0 --to 127.0.0.1:8080 --count 200

  # the same churn with the "close at the server first" fix, over a veth pair, as JSON
  twlab churn --sandbox --hosts 2 --to 198.51.100.2:8080 --close server-first --count 5000 --json

  # behind a source NAT with 100 ports: the router's ports and conntrack table are the limit
  twlab churn --sandbox --nat 40000-40099 --to 203.0.113.2:8080 --count 300 --json

  # against your own server on loopback, 64 in flight, for 5 seconds at most
  twlab churn --to 127.0.0.1:8080 --concurrency 64 --duration 5

  # two backends in turn: each destination has its own ports, so twice the connections fit
  twlab churn --to 127.0.0.1:8080 --to 127.0.0.1:8081 --count 100000`;

function toOptions(f: ChurnFlags): ChurnOptions {
  const o: ChurnOptions = { to: f.to, stopOnError: f.stopOnError };
  if (f.count !== undefined) o.count = f.count;
  if (f.duration !== undefined) o.durationS = f.duration;
  if (f.concurrency !== undefined) o.concurrency = f.concurrency;
  if (f.rate !== undefined) o.rate = f.rate;
  if (f.payload !== undefined) o.payload = f.payload;
  if (f.close !== undefined) o.close = f.close;
  if (f.reuseConnection) o.reuseConnection = true;
  if (f.udp) o.udp = true;
  if (f.bind !== undefined) o.bind = f.bind;
  if (f.reuseaddr !== undefined) o.reuseAddr = f.reuseaddr === 'on';
  if (f.bindNoPort) o.bindNoPort = true;
  if (f.localPortRange !== undefined) o.localPortRange = f.localPortRange;
  if (f.linger !== undefined) o.linger = f.linger;
  if (f.timeout !== undefined) o.timeoutMs = f.timeout;
  return o;
}

/** A one-line progress bar on stderr, redrawn at most every progress event. */
function progressBar(opts: ChurnOptions): { onEvent: (e: ChurnEvent) => void; done: () => void } {
  let drawn = false;
  const width = 30;
  return {
    onEvent(e) {
      if (e.type !== 'progress') return;
      const byCount =
        opts.count !== undefined || opts.durationS === undefined ? e.attempted / (opts.count ?? 1000) : 0;
      const byTime = opts.durationS !== undefined ? e.elapsedMs / (opts.durationS * 1000) : 0;
      const frac = Math.min(1, Math.max(byCount, byTime));
      const fill = Math.round(frac * width);
      const rate = e.elapsedMs > 0 ? Math.round((e.succeeded * 1000) / e.elapsedMs) : 0;
      process.stderr.write(
        `\r[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${String(Math.round(frac * 100)).padStart(3)}% ` +
          `${e.attempted} attempted, ${e.succeeded} ok, ${e.failed} failed, ${rate} conn/s `,
      );
      drawn = true;
    },
    done() {
      if (drawn) process.stderr.write('\r\x1b[K');
    },
  };
}

function formatSummary(s: ChurnSummary | SandboxChurnSummary): string {
  const lines: string[] = [];
  const st = s.settings;
  lines.push(
    `churn ${st.to} (${st.udp ? 'udp' : st.reuseConnection ? 'one connection' : `close ${st.close}`}, ` +
      `concurrency ${st.concurrency}): ${s.attempted} attempted, ${s.succeeded} succeeded, ${s.failed} failed ` +
      `in ${(s.durationMs / 1000).toFixed(2)} s, ${s.connectionsPerSecond} per second (stopped by ${s.stoppedBy})`,
  );
  if (s.firstError) {
    const e = s.firstError;
    lines.push(`first error: ${e.syscall} ${e.errno} (${e.code}) at iteration ${e.atIteration}`);
  }
  if (s.stalls.first) {
    lines.push(
      `stalls over ${s.stalls.overMs} ms: ${s.stalls.count}, the first at iteration ${s.stalls.first.atIteration} (${s.stalls.first.ms} ms)`,
    );
  }
  const seen = s.localPortRangeSeen;
  lines.push(
    `latency p50 ${s.latencyMs.p50} ms, p99 ${s.latencyMs.p99} ms; ${s.localPortsUsed} distinct local ports` +
      (seen ? ` (${seen.low}-${seen.high})` : ''),
  );
  if (s.errors.length > 0) {
    lines.push(`errors: ${s.errors.map((e) => `${e.syscall} ${e.errno} x${e.count}`).join(', ')}`);
  }
  const sys = st.sysctls;
  lines.push(
    `client sysctls: ip_local_port_range ${sys['net.ipv4.ip_local_port_range'] ?? '?'}, ` +
      `tcp_tw_reuse ${sys['net.ipv4.tcp_tw_reuse'] ?? '?'}, tcp_tw_reuse_delay ${sys['net.ipv4.tcp_tw_reuse_delay'] ?? 'n/a'}`,
  );
  if (st.sandbox) {
    const notApplied = st.sandbox.sysctls.filter((x) => x.status !== 'applied');
    lines.push(
      `sandbox: ${st.sandbox.hosts} host(s), ${st.sandbox.mode}; server: twlab ${st.sandbox.server.join(' ')}` +
        (notApplied.length
          ? `; not applied: ${notApplied.map((x) => `${x.key} (${x.status})`).join(', ')}`
          : ''),
    );
  }
  if ('nat' in s && s.nat) {
    const n = s.nat;
    const states = Object.entries(n.conntrack.byState).map(([k, v]) => `${k} ${v}`);
    lines.push(
      `NAT ${n.address}:${n.ports.low}-${n.ports.high}${n.fullyRandom ? ' (fully-random)' : ''}: ` +
        `${n.portsUsed} of ${n.ports.high - n.ports.low + 1} ports held after the run; conntrack ` +
        `${n.conntrack.entries} entries${states.length ? ` (${states.join(', ')})` : ''}; found ${n.stats.found}, ` +
        `insert_failed ${n.stats.insertFailed}, drop ${n.stats.drop}, early_drop ${n.stats.earlyDrop}` +
        (n.source === 'procfs' ? ' (read from /proc: ctnetlink refused)' : ''),
    );
  }
  return lines.join('\n');
}

/** What an interrupted sandboxed run did, from its last progress event. */
export function partialSummary(p: Extract<ChurnEvent, { type: 'progress' }> | undefined): string {
  if (!p) return 'churn interrupted before its first progress report: nothing to summarise';
  return (
    `churn interrupted after ${(p.elapsedMs / 1000).toFixed(2)} s: ${p.attempted} attempted, ` +
    `${p.succeeded} succeeded, ${p.failed} failed (partial: as of the last progress report)`
  );
}

// Long (~130 lines) on purpose: about 80 of them declare churn's options with their help text (one
// commander chain); the action (~50) picks a local or --sandbox run and prints; the work is traffic/'s.
// eslint-disable-next-line max-lines-per-function -- long on purpose, as said above
export function registerChurn(program: Command): void {
  const cmd = program
    .command('churn')
    .description(
      "The seeds' client: open a connection, send, close, repeat; report the first errno and port use",
    )
    .requiredOption(
      '--to <host:port>',
      'where to connect (IPv4, [IPv6] or localhost; with --sandbox: the sandbox server address); repeat it for several destinations, used in turn',
      repeatable((t) => {
        parseHostPort(t, '--to');
        return t.trim();
      }),
    )
    .option(
      '--count <n>',
      'iterations to attempt (default 1000 when --duration is not given either)',
      option((t) => parseIntInRange(t, '--count', 1, Number.MAX_SAFE_INTEGER)),
    )
    .option(
      '--duration <seconds>',
      'stop starting iterations after this long',
      option((t) => parseNumberInRange(t, '--duration', 0.001, MAX_DURATION_S)),
    )
    .option(
      '--concurrency <c>',
      'connections in flight at once (default 1)',
      option((t) => parseIntInRange(t, '--concurrency', 1, MAX_CONCURRENCY)),
    )
    .option(
      '--rate <r>',
      'iterations started per second (default: as fast as possible)',
      option((t) => parseNumberInRange(t, '--rate', 0.001, 10_000_000)),
    )
    .option('--payload <text>', 'bytes sent per iteration (default "foo", as the seed)')
    .option(
      '--close <mode>',
      `who closes first: ${CLOSE_MODES.join(', ')} (default client-first)`,
      option((t) => parseChoice(t, '--close', CLOSE_MODES)),
    )
    .option(
      '--reuse-connection',
      'one connection, one length-prefixed message per iteration (the "keep it open" fix)',
    )
    .option('--udp', 'one UDP datagram per iteration (the "use UDP" fix)')
    .option(
      '--bind <ip[:port]>',
      'bind before connect; repeat it for several source addresses, used in turn',
      repeatable((t) => {
        parseBindAddress(t, '--bind');
        return t.trim();
      }),
    )
    .option(
      '--reuseaddr <on|off>',
      'SO_REUSEADDR on every client socket (default: untouched)',
      option((t) => parseChoice(t, '--reuseaddr', ['on', 'off'] as const)),
    )
    .option('--bind-no-port', 'IP_BIND_ADDRESS_NO_PORT with bind(IP, 0): the port is picked at connect()')
    .option(
      '--local-port-range <a-b>',
      'per-socket IP_LOCAL_PORT_RANGE (Linux 6.3+)',
      option((t) => {
        parsePortRange(t, '--local-port-range');
        return t.trim();
      }),
    )
    .option(
      '--linger <off|0|seconds>',
      'SO_LINGER on every client socket; 0 is an abortive close',
      option((t) => parseLinger(t, '--linger')),
    )
    .option('--stop-on-error', 'stop at the first failed iteration, like the seed (default)', true)
    .option('--no-stop-on-error', 'keep going after errors; count them by errno')
    .option(
      '--timeout <ms>',
      'an iteration not finished after this long fails with ETIMEDOUT (default 10000)',
      option((t) => parseIntInRange(t, '--timeout', 1, 3_600_000)),
    )
    .option('--json', 'print one JSON document (the summary) on stdout')
    .option('--sandbox', 'run in a fresh sandbox with its own twlab server listening on --to');
  addSandboxOptions(cmd);
  cmd.addHelpText('after', HELP).action(
    action(async (flags: ChurnFlags) => {
      if (
        !flags.sandbox &&
        (flags.hosts !== undefined || flags.portRange || flags.sysctl || flags.nat || flags.natFullyRandom)
      ) {
        throw new UsageError(
          '--hosts, --nat, --port-range and --sysctl need --sandbox (they configure its namespace)',
        );
      }
      const opts = toOptions(flags);
      const bar = !flags.json && process.stderr.isTTY ? progressBar(opts) : null;
      let last: Extract<ChurnEvent, { type: 'progress' }> | undefined;
      const onEvent = (e: ChurnEvent): void => {
        if (e.type === 'progress') last = e;
        bar?.onEvent(e);
      };
      let summary: ChurnSummary | SandboxChurnSummary;
      try {
        if (flags.sandbox) {
          // The churn runs in the sandbox's agent, which twlab kills on a signal: what it did so
          // far is its last progress event (every 200 ms), printed before the exit.
          const forget = onInterrupt(() => {
            bar?.done();
            const line = partialSummary(last);
            if (flags.json) process.stderr.write(`twlab: ${line}\n`);
            else process.stdout.write(`${line}\n`);
          }, 'exit');
          try {
            summary = await runChurnInSandbox(opts, sandboxSpecFromOptions(flags), onEvent);
          } finally {
            forget();
          }
        } else {
          // Here the loop stops starting iterations and reports what ran (stoppedBy "signal").
          const abort = new AbortController();
          const forget = onInterrupt(() => abort.abort(), 'finish');
          try {
            summary = await runChurn(opts, onEvent, { signal: abort.signal });
          } finally {
            forget();
          }
        }
      } finally {
        bar?.done();
      }
      if (flags.json) printJson(summary);
      else process.stdout.write(`${formatSummary(summary)}\n`);
      return 0;
    }),
  );
}
