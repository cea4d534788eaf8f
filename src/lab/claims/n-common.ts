/**
 * What the NAT claims (N-*) and the NAT rows of the fixes table share: one churn through the
 * sandbox's source NAT (client - router - server, `--nat`), measured on all three hosts. The
 * client's own ports are never the limit here (10,000 of them, outside the NAT's pool), so what
 * runs out or stalls is the NAT's pool and what the server still holds.
 */
import type { PortRange } from '../../common/parse.js';
import type { Sandbox } from '../../sandbox/types.js';
import { CHURN, CONNTRACK, SERVER } from '../../traffic/remote.js';
import type { ChurnSummary } from '../../traffic/churn-types.js';
import { errorText, states } from '../harness.js';
import { COUNTERS, NAT_PROBE, pollFor, remote, rowsOn } from '../probes/remote.js';
import type { LabContext } from '../types.js';

/** The NAT's pool in most NAT experiments: 100 ports, as the seed's client has. */
export const NAT_POOL: PortRange = { low: 40000, high: 40099 };
/** The client's own ephemeral range: wide, and outside the pool (so the NAT never keeps a client port). */
export const NAT_CLIENT_RANGE: PortRange = { low: 20000, high: 29999 };
export const NAT_SERVER_PORT = 12360;
/** Connections per run: twice the pool, so "more than the pool" means something. */
export const NAT_COUNT = 200;
export const CT_TW_KEY = 'net.netfilter.nf_conntrack_tcp_timeout_time_wait';
/** Where a connection counts as stalled (churn's `stalls.overMs`: a SYN sent again after 1 s). */
export const STALL_MS = 500;

export const poolText = (r: PortRange): string => `${r.low}-${r.high}`;
export const poolSize = (r: PortRange): number => r.high - r.low + 1;

/** Sources outside the seeds: a page, an issue thread or an article, with its address. */
export const FIELD = 'NAT (field sources)';

export interface NatChurnSpec {
  close: 'client-first' | 'server-first';
  pool?: PortRange;
  fullyRandom?: boolean;
  /** The router's conntrack TIME_WAIT timeout (s); absent: the kernel's default, read back. */
  ctTimeWaitS?: number;
  count?: number;
  concurrency?: number;
  /** One connection, one framed message per iteration (keep-alive / connection reuse). */
  reuseConnection?: boolean;
  /** An iteration that has not finished after this long fails with ETIMEDOUT. Default 5000. */
  timeoutMs?: number;
}

/** One churn through the NAT, measured on the client, the router and the server. */
export interface NatChurnRun {
  pool: string;
  poolSize: number;
  fullyRandom: boolean;
  close: 'client-first' | 'server-first';
  reuseConnection: boolean;
  concurrency: number;
  /** The router's conntrack TIME_WAIT timeout as read back (s), or what the kernel did with the write. */
  conntrackTimeWaitS: string;
  attempted: number;
  succeeded: number;
  /** "connect ETIMEDOUT" or null. */
  firstError: string | null;
  failedAtIteration: number | null;
  /** Successful connections that took STALL_MS or longer, and the first of them. */
  stalls: number;
  firstStall: { atIteration: number; ms: number } | null;
  maxLatencyMs: number;
  /** Connections that succeeded before the first failure (all of them when none failed). */
  beforeFailure: number;
  /** Connections that succeeded before the first failure or stall (all of them when neither came). */
  beforeTrouble: number;
  troubleFree: boolean;
  durationMs: number;
  connectionsPerSecond: number;
  /** Distinct NAT ports the router's table holds towards the server after the run. */
  natPortsUsed: number;
  /** The router's TCP conntrack entries by state after the run. */
  conntrackByState: Record<string, number>;
  /** Least time left (s) of a TIME_WAIT entry after the run: entries that were alive while their ports were handed out again. */
  conntrackTimeWaitMinLeftS: number | null;
  insertFailed: number;
  drop: number;
  /** SYNs the client sent again (TcpExt TCPSynRetrans). */
  clientSynRetrans: number;
  clientTimeWait: number;
  serverTimeWait: number;
}

/** A raw-engine server in `sb.server` that outlives the run (the sandbox's close ends it). */
export async function startNatServer(
  sb: Sandbox,
  opts: { close: 'client-first' | 'server-first'; framed?: boolean },
): Promise<void> {
  const served = remote(sb.server, SERVER).runServer({
    address: '0.0.0.0',
    port: NAT_SERVER_PORT,
    close: opts.close,
    // The raw engine keeps up with a full-speed client: Node's accept queue would overflow and
    // the dropped SYNs would show as stalls that have nothing to do with the NAT.
    engine: 'raw',
    ...(opts.framed ? { framing: 'length-prefixed' as const } : {}),
    idleTimeoutMs: 5000,
    durationMs: 90_000,
  });
  served.catch(() => undefined);
  const up = await pollFor(
    async () => ((await rowsOn(sb.server, NAT_SERVER_PORT, 'LISTEN')).length ? true : undefined),
    10_000,
    20,
  );
  if (!up) throw new Error(`the server did not listen on ${NAT_SERVER_PORT} within 10 s`);
}

/** A 3-host NAT sandbox for `spec`. */
export function natSandbox(
  ctx: LabContext,
  spec: Pick<NatChurnSpec, 'pool' | 'fullyRandom' | 'ctTimeWaitS'>,
  extra: { serverSysctls?: Record<string, string | number> } = {},
): Promise<Sandbox> {
  return ctx.sandbox({
    hosts: 3,
    nat: { ports: spec.pool ?? NAT_POOL, ...(spec.fullyRandom ? { fullyRandom: true } : {}) },
    portRange: NAT_CLIENT_RANGE,
    ...(spec.ctTimeWaitS !== undefined || extra.serverSysctls
      ? {
          hostSysctls: {
            ...(spec.ctTimeWaitS !== undefined ? { router: { [CT_TW_KEY]: spec.ctTimeWaitS } } : {}),
            ...(extra.serverSysctls ? { server: extra.serverSysctls } : {}),
          },
        }
      : {}),
  });
}

/** The router's conntrack TIME_WAIT timeout: the value written and read back, else read now. */
export async function ctTimeWaitOf(sb: Sandbox): Promise<string> {
  const o = sb.sysctls.find((s) => s.key === CT_TW_KEY);
  if (o) return o.status === 'applied' ? (o.value ?? o.requested) : o.status;
  return (await sb.router!.readSysctl(CT_TW_KEY)) ?? 'not-present';
}

/** Connections before the first failure or stall. */
export function beforeTrouble(s: Pick<ChurnSummary, 'succeeded' | 'firstError' | 'stalls'>): number {
  const limits = [s.succeeded];
  if (s.firstError) limits.push(s.firstError.atIteration - 1);
  if (s.stalls.first) limits.push(s.stalls.first.atIteration - 1);
  return Math.max(0, Math.min(...limits));
}

/** Run one churn through the NAT in a fresh sandbox and read all three hosts. */
export async function runNatChurn(ctx: LabContext, spec: NatChurnSpec): Promise<NatChurnRun> {
  const pool = spec.pool ?? NAT_POOL;
  const sb = await natSandbox(ctx, spec);
  await startNatServer(sb, { close: spec.close, framed: spec.reuseConnection === true });
  const count = spec.count ?? NAT_COUNT;
  ctx.progress(
    `${spec.close} through a ${poolSize(pool)}-port NAT${spec.fullyRandom ? ' (fully-random)' : ''}: up to ${count} connections`,
  );
  const before = await remote(sb.client, COUNTERS).synCounters();
  const s = await remote(sb.client, CHURN).runChurn({
    to: `${sb.server.address}:${NAT_SERVER_PORT}`,
    count,
    durationS: 40,
    close: spec.close,
    stopOnError: true,
    timeoutMs: spec.timeoutMs ?? 5000,
    ...(spec.concurrency ? { concurrency: spec.concurrency } : {}),
    ...(spec.reuseConnection ? { reuseConnection: true } : {}),
  });
  // In-flight closes settle (the server's FIN, the last ACK) before the tables are read.
  await new Promise((r) => setTimeout(r, 300));
  const [ct, entries, after, client, server, ctTw] = await Promise.all([
    remote(sb.router!, CONNTRACK).readConntrack({ natRange: pool }),
    remote(sb.router!, NAT_PROBE).natEntries({ dport: NAT_SERVER_PORT }),
    remote(sb.client, COUNTERS).synCounters(),
    states(sb.client),
    states(sb.server),
    ctTimeWaitOf(sb),
  ]);
  const mine = ct.natPorts.find(
    (n) => n.protocol === 'tcp' && n.destination === `${sb.server.address}:${NAT_SERVER_PORT}`,
  );
  const tw = entries.filter((e) => e.state === 'TIME_WAIT').map((e) => e.timeoutS);
  const carried = beforeTrouble(s);
  return {
    pool: poolText(pool),
    poolSize: poolSize(pool),
    fullyRandom: spec.fullyRandom === true,
    close: spec.close,
    reuseConnection: spec.reuseConnection === true,
    concurrency: spec.concurrency ?? 1,
    conntrackTimeWaitS: ctTw,
    attempted: s.attempted,
    succeeded: s.succeeded,
    firstError: errorText(s.firstError),
    failedAtIteration: s.firstError?.atIteration ?? null,
    stalls: s.stalls.count,
    firstStall: s.stalls.first,
    maxLatencyMs: s.latencyMs.max,
    beforeFailure: s.firstError ? Math.max(0, s.firstError.atIteration - 1) : s.succeeded,
    beforeTrouble: carried,
    troubleFree: s.firstError === null && s.stalls.count === 0,
    durationMs: s.durationMs,
    connectionsPerSecond: Math.round(s.connectionsPerSecond),
    natPortsUsed: mine?.portsUsed ?? 0,
    conntrackByState: ct.tcpByState,
    conntrackTimeWaitMinLeftS: tw.length ? Math.min(...tw) : null,
    insertFailed: ct.stats.insertFailed,
    drop: ct.stats.drop,
    clientSynRetrans: after.synRetrans - before.synRetrans,
    clientTimeWait: client.timeWait,
    serverTimeWait: server.timeWait,
  };
}

/** "300 of 300, 4 stalls (first #131, 1021 ms)" or "ETIMEDOUT at #140 after 139". */
export function runText(r: NatChurnRun): string {
  const head = r.firstError
    ? `${r.firstError} at connection ${r.failedAtIteration ?? '?'} after ${r.succeeded} succeeded`
    : `${r.succeeded} of ${r.attempted} succeeded`;
  const stalls =
    r.stalls > 0
      ? `, ${r.stalls} stalled over ${STALL_MS} ms (first #${r.firstStall?.atIteration ?? '?'}, ${Math.round(r.firstStall?.ms ?? 0)} ms)`
      : ', none stalled';
  return `${head}${stalls}, ${r.natPortsUsed} NAT ports, ${r.clientSynRetrans} SYNs sent again, ${(r.durationMs / 1000).toFixed(1)} s`;
}
