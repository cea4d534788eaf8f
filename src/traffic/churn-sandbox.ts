/**
 * `twlab churn --sandbox`: a fresh sandbox, `twlab serve` in its server host listening on the
 * --to address with a close mode that matches the client's, the churn run in its client host,
 * then teardown. The sandbox (src/sandbox) owns the namespaces and sysctls; this file only
 * orchestrates.
 */
import type { ChildProcess } from 'node:child_process';
import { RunError, UsageError } from '../common/errors.js';
import { parseHostPort } from '../common/parse.js';
import { twlabArgv } from '../common/paths.js';
import { NAT_NET, SANDBOX_NET, createSandbox } from '../sandbox/index.js';
import { resolveTopology } from '../sandbox/topology.js';
import type { ConntrackStats } from '../observe/conntrack-types.js';
import type { NatSpec, Sandbox, SandboxHost, SandboxSpec } from '../sandbox/types.js';
import { planChurn } from './churn.js';
import { CHURN, CONNTRACK } from './remote.js';
import { remote } from '../sandbox/remote.js';
import type { ChurnEvent, ChurnOptions, ChurnSummary } from './churn-types.js';
import type { ServerSummary } from './server-types.js';

/** How long the server may take to say `listening`. */
const LISTEN_TIMEOUT_MS = 15_000;
/** Slack for the server's own bound beyond the churn's. */
const SERVER_SLACK_S = 30;

export interface SandboxChurnSummary extends ChurnSummary {
  /** The server's own summary (what it saw: resets, closes), when it reported one. */
  server: ServerSummary | null;
  /** Behind the sandbox's NAT: the router's conntrack table, read right after the run. */
  nat?: NatReport;
}

/** What the router's NAT held after a run (observe/conntrack.ts, read in the router). */
export interface NatReport {
  address: string;
  ports: { low: number; high: number };
  fullyRandom: boolean;
  /** Distinct NAT ports held by conntrack entries of any state towards --to (the run's protocol). */
  portsUsed: number;
  conntrack: { entries: number; byProtocol: Record<string, number>; byState: Record<string, number> };
  stats: Pick<ConntrackStats, 'found' | 'insertFailed' | 'drop' | 'earlyDrop'>;
  /** Where the table was read ('procfs' when ctnetlink was refused). */
  source: 'netlink' | 'procfs';
}

/**
 * Moments of a sandboxed run at which a caller may look at the sandbox (tests hold twlab's
 * readings to the kernel's tools there): `started` before the churn (server listening), `ran`
 * after it and just before the NAT's read, `read` after that read. The sandbox still stands.
 */
export interface SandboxRunHooks {
  started?(sandbox: Sandbox): Promise<void>;
  ran?(sandbox: Sandbox): Promise<void>;
  read?(sandbox: Sandbox): Promise<void>;
}

/** In-flight closes reach their final state within this long after the run (as for the server's stop). */
const SETTLE_MS = 200;

/** The router's conntrack after a run towards `to` over `protocol`. */
async function readNat(
  router: SandboxHost,
  nat: NatSpec & { address: string },
  to: string,
  protocol: string,
): Promise<NatReport> {
  const ct = await remote(router, CONNTRACK).readConntrack({ natRange: nat.ports });
  const mine = ct.natPorts.find(
    (n) => n.natAddress === nat.address && n.destination === to && n.protocol === protocol,
  );
  return {
    address: nat.address,
    ports: nat.ports,
    fullyRandom: nat.fullyRandom ?? false,
    portsUsed: mine?.portsUsed ?? 0,
    conntrack: { entries: ct.entries, byProtocol: ct.byProtocol, byState: ct.tcpByState },
    stats: {
      found: ct.stats.found,
      insertFailed: ct.stats.insertFailed,
      drop: ct.stats.drop,
      earlyDrop: ct.stats.earlyDrop,
    },
    source: ct.source,
  };
}

/** The address --to must name inside a sandbox of `hosts` hosts. */
export function sandboxServerAddress(hosts: 1 | 2 | 3): string {
  return hosts === 3 ? NAT_NET.server : hosts === 2 ? SANDBOX_NET.server : '127.0.0.1';
}

/**
 * The `twlab serve` argv that matches a churn run: same address, protocol, framing and close.
 * TCP runs use the raw engine: Node's net server accepts only ~5k conn/s per core, its accept
 * queue overflows under a fast churn, and each overflow costs the client a 1 s SYN retransmit,
 * which would measure the server rather than the client's ports. The raw engine serves every TCP
 * close mode and framing; it has no UDP, so --udp keeps Node's. Nothing here reads per-connection
 * events (which the raw engine does not emit): only `listening` and the summary.
 */
export function serverArgvFor(opts: ChurnOptions, boundS: number): string[] {
  const args = ['serve', '--listen', onlyTo(opts), '--json', '--duration', String(Math.ceil(boundS))];
  if (opts.udp) return [...args, '--udp'];
  args.push('--engine', 'raw');
  if (opts.reuseConnection) args.push('--framing', 'length-prefixed', '--close', 'client-first');
  // A server-first client waits for the server's FIN; every other client closes (or resets) first.
  else args.push('--close', opts.close === 'server-first' ? 'server-first' : 'client-first');
  return args;
}

/** The one destination of a sandboxed run (its sandbox starts one server). */
function onlyTo(opts: ChurnOptions): string {
  if (typeof opts.to === 'string') return opts.to;
  if (opts.to.length === 1) return opts.to[0]!;
  throw new UsageError(
    `--to: ${opts.to.length} destinations; --sandbox serves one (accepted: a single --to)`,
  );
}

/** An upper bound of a run's wall time, in seconds, for the server's own --duration. */
function runBoundS(opts: ChurnOptions): number {
  const plan = planChurn(opts);
  const { count, durationMs, rate, timeoutMs } = plan.config;
  let bound = durationMs >= 0 ? durationMs / 1000 : Infinity;
  if (count >= 0 && rate > 0) bound = Math.min(bound, count / rate);
  // Unpaced count-bounded runs: assume no slower than 200 conn/s (a loaded machine), cap at an hour.
  if (!Number.isFinite(bound)) bound = Math.min(3600, count / 200);
  return bound + timeoutMs / 1000 + SERVER_SLACK_S;
}

function waitForListening(child: ChildProcess, onLine: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    let stderr = '';
    let listening = false;
    const timer = setTimeout(
      () =>
        reject(new RunError(`sandbox: twlab serve did not start listening within ${LISTEN_TIMEOUT_MS} ms`)),
      LISTEN_TIMEOUT_MS,
    );
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!listening && line.includes('"listening"')) {
          listening = true;
          clearTimeout(timer);
          resolve();
        }
        onLine(line);
      }
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < 4096) stderr += chunk;
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (!listening) {
        const why = stderr.trim().split('\n')[0] ?? '';
        reject(
          new RunError(`sandbox: twlab serve exited (code ${code}) before listening${why ? `: ${why}` : ''}`),
        );
      }
    });
  });
}

/** A `twlab serve` running in a sandbox host for a churn run. */
export interface ChurnServer {
  readonly child: ChildProcess;
  readonly argv: string[];
  /** SIGINT the server, wait (bounded) for it to exit, and return its summary if it printed one. */
  stop(): Promise<ServerSummary | null>;
}

/** Start `twlab serve` in `host`, matching `opts`, and resolve once it is listening. */
export async function startChurnServer(host: SandboxHost, opts: ChurnOptions): Promise<ChurnServer> {
  const argv = serverArgvFor(opts, runBoundS(opts));
  const child = host.spawn(twlabArgv(...argv));
  let summary: ServerSummary | null = null;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitForListening(child, (line) => {
      // Only the summary line matters; the per-connection events are not parsed.
      if (!line.includes('"event":"summary"')) return;
      try {
        summary = JSON.parse(line) as ServerSummary;
      } catch {
        /* a truncated line: no summary */
      }
    });
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    child,
    argv,
    async stop() {
      // Let in-flight closes reach the server, then stop it and give it a moment to report.
      await new Promise((r) => setTimeout(r, 200));
      child.kill('SIGINT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      child.kill('SIGKILL');
      return summary;
    },
  };
}

/**
 * Run `opts` against a twlab server inside a new sandbox built from `spec`. The --to host must be
 * the sandbox's server address (127.0.0.1 with 1 host, 198.51.100.2 with 2, 203.0.113.2 behind
 * the NAT of 3): UsageError otherwise.
 */
export async function runChurnInSandbox(
  opts: ChurnOptions,
  spec: SandboxSpec,
  emit?: (event: ChurnEvent) => void,
  hooks: SandboxRunHooks = {},
): Promise<SandboxChurnSummary> {
  const { hosts } = resolveTopology(spec);
  const expected = sandboxServerAddress(hosts);
  const to = parseHostPort(onlyTo(opts), '--to');
  if (to.host !== expected) {
    throw new UsageError(
      `--to: '${onlyTo(opts)}' is not the sandbox server's address (accepted with --hosts ${hosts}: ${expected}:PORT)`,
    );
  }
  planChurn(opts); // bad options fail before a sandbox is made
  const sandbox = await createSandbox(spec);
  try {
    const server = await startChurnServer(sandbox.server, opts);
    let summary: ChurnSummary;
    let serverSummary: ServerSummary | null = null;
    let nat: NatReport | undefined;
    try {
      await hooks.started?.(sandbox);
      summary = await remote(sandbox.client, CHURN, (e) => emit?.(e)).runChurn(opts);
      if (sandbox.router && sandbox.nat) {
        await new Promise((r) => setTimeout(r, SETTLE_MS));
        await hooks.ran?.(sandbox);
        nat = await readNat(sandbox.router, sandbox.nat, onlyTo(opts), opts.udp ? 'udp' : 'tcp');
      }
      await hooks.read?.(sandbox);
    } finally {
      serverSummary = await server.stop();
    }
    return {
      ...summary,
      settings: {
        ...summary.settings,
        sandbox: {
          hosts,
          ...(sandbox.nat ? { nat: sandbox.nat } : {}),
          mode: sandbox.mode,
          sysctls: sandbox.sysctls,
          server: server.argv,
        },
      },
      server: serverSummary,
      ...(nat ? { nat } : {}),
    };
  } finally {
    await sandbox.close();
  }
}
