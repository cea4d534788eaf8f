/**
 * The seed's experiment, driven from the lab: the instrumented server in the server host, the
 * churn client in the client host, and both hosts' TCP tables read right after. S0 claims and the
 * fixes table measure every variation through `runSeedClient`, so they are comparable.
 */
import type { PortRange } from '../common/parse.js';
import { SANDBOX_NET } from '../sandbox/index.js';
import type { NatSpec, Sandbox, SandboxHost, SandboxSpec } from '../sandbox/types.js';
import type { Linger } from '../sockets/options.js';
import type { ServerClose, ServerOptions, ServerStats, UdpServerStats } from './probes/server.js';
import type { StateCount } from './probes/tcp-table.js';
import type { TcpCounters } from './probes/counters.js';
import type { LabContext } from './types.js';
import { CENSUS, COUNTERS, SERVER_PROBE, TCP_TABLE, remote } from './probes/remote.js';
import { CHURN } from '../traffic/remote.js';
import type { ChurnError, ChurnOptions as EngineOptions } from '../traffic/churn-types.js';

/** The seed's failing client, scaled down: 100 ephemeral ports, so exhaustion comes in a blink. */
/** A probe's first error as the lab prints it: "connect EADDRNOTAVAIL", or null. */
export function errorText(err: { syscall: string; errno: string } | null | undefined): string | null {
  return err ? `${err.syscall} ${err.errno}` : null;
}

export const SMALL_RANGE: PortRange = { low: 40000, high: 40099 };
export const rangeSize = (r: PortRange): number => r.high - r.low + 1;
export const SERVER_PORT = 12347; // the seed's port

/** A probe server running in a host: its port, and finish() to stop it and get its counts. */
export interface ProbeServer {
  port: number;
  done: Promise<ServerStats>;
  finish(): Promise<ServerStats>;
}

export function startServer(
  host: SandboxHost,
  opts: Partial<ServerOptions> & { close: ServerClose },
): Promise<ProbeServer> {
  const full: ServerOptions = {
    address: '0.0.0.0',
    port: SERVER_PORT,
    payloadBytes: 3,
    // A safety net only: the lab stops its servers explicitly (see finish()).
    idleMs: 10_000,
    maxMs: 30_000,
    ...opts,
  };
  return new Promise((resolve, reject) => {
    let port = 0;
    const done = remote(host, SERVER_PROBE, (ev) => {
      if (ev.type === 'listening' && ev.port) {
        port = ev.port;
        resolve({
          port,
          done,
          finish: async () => {
            await remote(host, SERVER_PROBE).stopServe({ port });
            return done;
          },
        });
      }
    }).serveProbe(full);
    done.catch(reject);
    done.then(() => {
      if (!port) reject(new Error('the lab server ended before listening'));
    }, reject);
  });
}

/** How the seed's client varies, in the lab's words (recorded as the run's settings). */
export interface SeedClientOptions {
  /** Default "foo", the seed's. */
  payload?: string;
  /** client-first (default): the seed's send, shutdown, close; server-first: close after the server's FIN. */
  close?: 'client-first' | 'server-first';
  reuseAddr?: boolean;
  linger?: Linger;
  /** bind() before connect to these local addresses, in turn, at port `bindPort` (default 0). */
  bindAddresses?: string[];
  bindPort?: number;
  /** IP_BIND_ADDRESS_NO_PORT with bindAddresses: connect() picks the port. */
  bindNoPort?: boolean;
  /**
   * client-first: shutdown(SHUT_RDWR) before close, as the seed does (default true, also with
   * SO_LINGER 0). false with linger 0 is the usual abortive close: close() alone, a RST, no FIN.
   */
  shutdownFirst?: boolean;
  /** Keep going after a failure (count every failure) instead of stopping at the first. */
  continueOnError?: boolean;
}

/** What a client run of the churn engine did, in the lab's terms. */
export interface ClientResult {
  attempted: number;
  /** Iterations that succeeded: connections, or messages sent whole. */
  succeeded: number;
  firstError: ChurnError | null;
  /** Successes per second of the run. */
  perSecond: number;
  /** Distinct local ports the client used. */
  localPortsUsed: number;
  /** Reads or sends that failed with ECONNRESET. */
  resetsSeen: number;
}

/** twlab's churn engine (traffic/churn.ts, what `twlab churn` runs) in a host. */
async function runClient(host: SandboxHost, opts: EngineOptions): Promise<ClientResult> {
  const s = await remote(host, CHURN).runChurn(opts);
  return {
    attempted: s.attempted,
    succeeded: s.succeeded,
    firstError: s.firstError,
    perSecond: s.connectionsPerSecond,
    localPortsUsed: s.localPortsUsed,
    resetsSeen: s.errors.filter((e) => e.errno === 'ECONNRESET').reduce((n, e) => n + e.count, 0),
  };
}

/** The seed's client, connecting to `to` in turn, one connection at a time, in the client host. */
export async function churn(
  host: SandboxHost,
  opts: SeedClientOptions & { to: Array<{ address: string; port: number }>; count: number; maxMs: number },
): Promise<ClientResult> {
  const engine: EngineOptions = {
    to: opts.to.map((t) => `${t.address}:${t.port}`),
    count: opts.count,
    durationS: opts.maxMs / 1000,
    close: opts.close ?? 'client-first',
    shutdown: opts.shutdownFirst ?? true,
    stopOnError: !opts.continueOnError,
    timeoutMs: 5000,
    ...(opts.payload !== undefined ? { payload: opts.payload } : {}),
    ...(opts.reuseAddr !== undefined ? { reuseAddr: opts.reuseAddr } : {}),
    ...(opts.linger !== undefined ? { linger: opts.linger } : {}),
    ...(opts.bindAddresses ? { bind: opts.bindAddresses.map((a) => `${a}:${opts.bindPort ?? 0}`) } : {}),
    ...(opts.bindNoPort ? { bindNoPort: true } : {}),
  };
  return runClient(host, engine);
}

/** The comment's alternative: one connection kept open, `count` length-prefixed messages, then a close. */
export function keepOpen(
  host: SandboxHost,
  opts: { to: { address: string; port: number }; count: number; maxMs: number },
): Promise<ClientResult> {
  return runClient(host, {
    to: `${opts.to.address}:${opts.to.port}`,
    reuseConnection: true,
    count: opts.count,
    durationS: opts.maxMs / 1000,
  });
}

/** TCP sockets of a host by state (optionally only those on `port`), from the kernel's table. */
export function states(host: SandboxHost, port?: number): Promise<StateCount> {
  return remote(host, TCP_TABLE).countStates(port === undefined ? {} : { port });
}

/** The host's TCP counters (RSTs sent, resets seen), from its own namespace. */
export function counters(host: SandboxHost): Promise<TcpCounters> {
  return remote(host, COUNTERS).tcpCounters();
}

/** How one variation of the seed's client is run. */
export interface SeedRun {
  /** 3: the client behind the router's source NAT (`nat`); its client/server roles stay as with 2. */
  hosts: 1 | 2 | 3;
  nat?: NatSpec;
  portRange?: PortRange;
  sysctls?: Record<string, string | number>;
  hostSysctls?: SandboxSpec['hostSysctls'];
  /** Connections at most (the bound; "none failed within N"). */
  count: number;
  client?: SeedClientOptions;
  /** Connect to this many server ports in turn (default 1). */
  destinations?: number;
  /** Extra client addresses (2 hosts), bound before connect in turn. */
  extraClientAddresses?: number;
  /** After the first failure, wait this long and try one more connection. */
  retryAfterMs?: number;
  /** Sample the client host's census this often during the run (TIME_WAIT, free ports). */
  sampleMs?: number;
}

export interface SeedMeasurement {
  hosts: 1 | 2 | 3;
  portRange: string;
  ports: number;
  settings: Record<string, unknown>;
  attempted: number;
  succeeded: number;
  /** Connections that succeeded before the first failure; null when none failed within `attempted`. */
  failedAfter: number | null;
  firstError: string | null;
  connectionsPerSecond: number;
  localPortsUsed: number;
  clientTimeWait: number;
  serverTimeWait: number;
  /** Connections the server application saw end with ECONNRESET. */
  serverAppResets: number;
  /** RSTs the client host's kernel sent (Tcp OutRsts; with 1 host: the one shared namespace). */
  clientRstsSent: number;
  /** Connections the server host's kernel saw reset while established or in CLOSE_WAIT (EstabResets). */
  serverEstabResets: number;
  payloadsComplete: number;
  payloadsIncomplete: number;
  clientResetsSeen: number;
  retry?: { afterMs: number; ok: boolean; error: string | null };
  /**
   * With `sampleMs`: [ms since the churn started, client TIME_WAIT sockets, ephemeral ports still
   * free towards the busiest destination], from censuses of the client host taken during the run.
   */
  samples?: Array<[number, number, number]>;
}

/** Census samples of a host until `stop` resolves, at most one call in flight (bounded at 600). */
async function sampleCensus(
  host: SandboxHost,
  everyMs: number,
  stop: Promise<unknown>,
): Promise<Array<[number, number, number]>> {
  const out: Array<[number, number, number]> = [];
  const t0 = Date.now();
  let done = false;
  void stop.finally(() => (done = true));
  while (!done && out.length < 600) {
    const c = await remote(host, CENSUS).takeCensus({ top: 1 });
    out.push([Date.now() - t0, c.timeWait.count, c.portRange.usable - (c.pressure[0]?.inUse ?? 0)]);
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return out;
}

/** Add `n` more addresses to the client host's link (198.51.100.11...), for source-address fixes. */
async function addClientAddresses(sb: Sandbox, n: number): Promise<string[]> {
  const addrs = Array.from({ length: n }, (_, i) => `198.51.100.${11 + i}`);
  for (const a of addrs) {
    const r = await sb.client.exec([
      'ip',
      'addr',
      'add',
      `${a}/${SANDBOX_NET.prefix}`,
      'dev',
      SANDBOX_NET.ifname,
    ]);
    if (r.code !== 0) throw new Error(`ip addr add ${a} in the client host failed: ${r.stderr.trim()}`);
  }
  return [sb.client.address, ...addrs];
}

/** Run one variation of the seed's experiment in a fresh sandbox and measure both sides. */
export async function runSeedClient(ctx: LabContext, run: SeedRun): Promise<SeedMeasurement> {
  const range = run.portRange ?? SMALL_RANGE;
  const sb = await ctx.sandbox({
    hosts: run.hosts,
    ...(run.nat ? { nat: run.nat } : {}),
    portRange: range,
    ...(run.sysctls ? { sysctls: run.sysctls } : {}),
    ...(run.hostSysctls ? { hostSysctls: run.hostSysctls } : {}),
  });
  const client = run.client ?? {};
  const destinations = run.destinations ?? 1;
  const servers = await Promise.all(
    Array.from({ length: destinations }, (_, i) =>
      startServer(sb.server, {
        port: SERVER_PORT + i,
        close: client.close === 'server-first' ? 'server-first' : 'after-client',
      }),
    ),
  );
  let bindAddresses = client.bindAddresses;
  if (run.extraClientAddresses) bindAddresses = await addClientAddresses(sb, run.extraClientAddresses);
  ctx.progress(
    `connecting up to ${run.count} times (${rangeSize(range)} ports, ${run.hosts === 1 ? 'loopback' : `${run.hosts} hosts`})`,
  );
  let sampled: (() => void) | undefined;
  const sampling =
    run.sampleMs === undefined
      ? undefined
      : sampleCensus(sb.client, run.sampleMs, new Promise<void>((r) => (sampled = r)));
  const result = await churn(sb.client, {
    ...client,
    ...(bindAddresses ? { bindAddresses } : {}),
    to: servers.map((s) => ({ address: sb.server.address, port: s.port })),
    count: run.count,
    maxMs: 20_000,
  });
  let retry: SeedMeasurement['retry'];
  if (run.retryAfterMs !== undefined && result.firstError) {
    ctx.progress(`failed after ${result.succeeded}; retrying in ${run.retryAfterMs} ms`);
    await new Promise((r) => setTimeout(r, run.retryAfterMs));
    const again = await churn(sb.client, {
      ...client,
      to: [{ address: sb.server.address, port: servers[0]!.port }],
      count: 1,
      maxMs: 5000,
    });
    retry = {
      afterMs: run.retryAfterMs,
      ok: again.succeeded === 1,
      error: errorText(again.firstError),
    };
  }
  sampled?.();
  const samples = await sampling;
  // Read the tables once the server has finished every connection, so a slow server's
  // half-closed sockets (client in FIN_WAIT2) have reached TIME_WAIT.
  const stats = await Promise.all(servers.map((s) => s.finish()));
  const [clientTable, serverTable, clientCounters, serverCounters] = await Promise.all([
    states(sb.client),
    states(sb.server),
    counters(sb.client),
    counters(sb.server),
  ]);
  const sum = (f: (s: ServerStats) => number): number => stats.reduce((a, s) => a + f(s), 0);
  // With one host both ends share one table: count TIME_WAIT by which end holds the server port.
  const serverPorts = new Set(servers.map((s) => s.port));
  let clientTw = clientTable.timeWait;
  let serverTw = serverTable.timeWait;
  if (run.hosts === 1) {
    const table = await remote(sb.client, TCP_TABLE).tcpTable();
    serverTw = table.filter((r) => r.state === 'TIME_WAIT' && serverPorts.has(r.localPort)).length;
    clientTw = table.filter((r) => r.state === 'TIME_WAIT' && !serverPorts.has(r.localPort)).length;
  }
  return {
    hosts: run.hosts,
    portRange: `${range.low}-${range.high}`,
    ports: rangeSize(range),
    settings: {
      ...Object.fromEntries(
        sb.sysctls.map((s) => [s.key, s.status === 'applied' ? (s.value ?? s.requested) : s.status]),
      ),
      ...client,
      ...(bindAddresses ? { bindAddresses } : {}),
      destinations,
    },
    attempted: result.attempted,
    succeeded: result.succeeded,
    failedAfter: result.firstError ? result.succeeded : null,
    firstError: errorText(result.firstError),
    connectionsPerSecond: Math.round(result.perSecond),
    localPortsUsed: result.localPortsUsed,
    clientTimeWait: clientTw,
    serverTimeWait: serverTw,
    serverAppResets: sum((s) => s.resets),
    clientRstsSent: clientCounters.outRsts,
    serverEstabResets: serverCounters.estabResets,
    payloadsComplete: sum((s) => s.completePayloads),
    payloadsIncomplete: sum((s) => s.incompletePayloads),
    clientResetsSeen: result.resetsSeen,
    ...(retry ? { retry } : {}),
    ...(samples ? { samples } : {}),
  };
}

/** UDP instead of TCP: a datagram per "connection" from a fresh socket each time. */
export async function runUdp(
  ctx: LabContext,
  run: { hosts: 1 | 2; count: number; portRange?: PortRange },
): Promise<{ client: ClientResult; server: UdpServerStats; clientTimeWait: number; ports: number }> {
  const range = run.portRange ?? SMALL_RANGE;
  const sb = await ctx.sandbox({ hosts: run.hosts, portRange: range });
  const server = await new Promise<{ port: number; done: Promise<UdpServerStats> }>((resolve, reject) => {
    const done = remote(sb.server, SERVER_PROBE, (ev) => {
      if (ev.type === 'listening' && ev.port) resolve({ port: ev.port, done });
    }).serveUdpProbe({ address: '0.0.0.0', port: SERVER_PORT, idleMs: 10_000, maxMs: 30_000 });
    done.catch(reject);
  });
  // A fresh socket per datagram (socket, connect, send, close), as `twlab churn --udp` does.
  const client = await runClient(sb.client, {
    to: `${sb.server.address}:${server.port}`,
    udp: true,
    count: run.count,
    durationS: 20,
  });
  await remote(sb.server, SERVER_PROBE).stopServe({ port: server.port });
  const [table, stats] = await Promise.all([states(sb.client), server.done]);
  return { client, server: stats, clientTimeWait: table.timeWait, ports: rangeSize(range) };
}

/** What one keep-open run measured; the server has finished, so tables read after are final. */
export interface KeepOpenRun {
  sb: Sandbox;
  client: ClientResult;
  /** "syscall ERRNO" of the client's first failure, or null. */
  firstError: string | null;
  /** Framed messages the server read. */
  messagesReceived: number;
}

/**
 * The experiment, also the fixes table's keep-open row: 2 hosts, 100 ports, tcp_tw_reuse=0, one
 * connection carrying `count` length-prefixed messages to a framed server.
 */
export async function runKeepOpen(ctx: LabContext, count: number): Promise<KeepOpenRun> {
  const sb = await ctx.sandbox({
    hosts: 2,
    portRange: SMALL_RANGE,
    sysctls: { 'net.ipv4.tcp_tw_reuse': 0 },
  });
  const server = await startServer(sb.server, { close: 'framed' });
  const client = await keepOpen(sb.client, {
    to: { address: sb.server.address, port: server.port },
    count,
    maxMs: 20_000,
  });
  const stats = await server.finish();
  return {
    sb,
    client,
    firstError: client.firstError ? `${client.firstError.syscall} ${client.firstError.errno}` : null,
    messagesReceived: stats.framedMessages,
  };
}
