/**
 * The fixes table: every remedy for the seed's failing client, measured the same way. Two hosts,
 * 100 ephemeral ports, tcp_tw_reuse=0 (unless the remedy is tcp_tw_reuse), at most 1000
 * connections, stop at the first failure; then both hosts' tables are read. The costs are what
 * that run measured: resets the server saw, payloads that did not arrive, TIME_WAIT left on each side.
 */
import {
  SMALL_RANGE,
  counters,
  errorText,
  rangeSize,
  runKeepOpen,
  runSeedClient,
  runUdp,
  states,
  type SeedMeasurement,
  type SeedRun,
} from './harness.js';
import { SANDBOX_NET } from '../sandbox/index.js';
import { SEED0 } from './claims/s0-common.js';
import type { FixExperiment } from './runner.js';
import type { FixResult, LabContext } from './types.js';
import {
  NAT_POOL,
  poolSize,
  runNatChurn,
  runText,
  type NatChurnRun,
  type NatChurnSpec,
} from './claims/n-common.js';

/** Connections per remedy: ten times the port range, so "no failure" means something. */
export const FIX_COUNT = rangeSize(SMALL_RANGE) * 10;
/** The kernel's default range (S0-02 reads it): what "a wider range" means in practice. */
const WIDE_RANGE = { low: 32768, high: 60999 };
/** A NAT pool ten times the experiments' one. */
const WIDE_NAT_POOL = { low: 40000, high: 40999 };
const BASE: Omit<SeedRun, 'count'> = { hosts: 2, sysctls: { 'net.ipv4.tcp_tw_reuse': 0 } };

function costsOf(m: SeedMeasurement): FixResult['costs'] {
  const total = m.payloadsComplete + m.payloadsIncomplete;
  return {
    clientRstsSent: m.clientRstsSent,
    serverResets: m.serverEstabResets,
    payloadLost: m.payloadsIncomplete > 0 ? `${m.payloadsIncomplete} of ${total}` : 'none',
    clientTimeWait: m.clientTimeWait,
    serverTimeWait: m.serverTimeWait,
  };
}

function fromSeed(
  fix: { id: string; name: string; source: string },
  m: SeedMeasurement,
  note: (m: SeedMeasurement) => string,
  extra: FixResult['costs'] = {},
): FixResult {
  return {
    ...fix,
    connectionsBeforeFailure: m.failedAfter,
    attempted: m.attempted,
    connectionsPerSecond: m.connectionsPerSecond,
    firstError: m.firstError,
    costs: { ...costsOf(m), ...extra },
    note: note(m),
  };
}

const failText = (m: SeedMeasurement): string =>
  m.failedAfter === null
    ? `ran all ${m.attempted} connections on ${m.ports} ports`
    : `failed after ${m.failedAfter} connections on ${m.ports} ports (${m.firstError ?? '?'})`;

/** A remedy that is one variation of the seed's run. */
function seedFix(
  fix: { id: string; name: string; source: string },
  run: Omit<SeedRun, 'count'>,
  note: (m: SeedMeasurement) => string,
  estimateMs = 2_000,
): FixExperiment {
  return {
    ...fix,
    estimateMs,
    run: async (ctx: LabContext) =>
      fromSeed(fix, await runSeedClient(ctx, { ...run, count: FIX_COUNT }), note),
  };
}

export const FIXES: readonly FixExperiment[] = [
  seedFix(
    { id: 'none', name: 'none (the seed client)', source: `${SEED0}, post` },
    BASE,
    (m) => `Baseline: ${failText(m)}; its ports sit in TIME_WAIT (${m.clientTimeWait} on the client).`,
  ),
  seedFix(
    { id: 'reuseaddr', name: 'SO_REUSEADDR on the client', source: `${SEED0}, comments 4 and 10` },
    { ...BASE, client: { reuseAddr: true } },
    (m) => `No help: ${failText(m)}; SO_REUSEADDR relaxes bind(), not connect()'s choice of a free 4-tuple.`,
  ),
  seedFix(
    { id: 'linger0', name: 'SO_LINGER {1,0} (abortive close)', source: `${SEED0}, comments 2 and 3` },
    { ...BASE, client: { linger: 0, shutdownFirst: false } },
    (m) =>
      `${failText(m)}; every close is a RST (${m.clientRstsSent} RSTs sent), so the server cannot tell a crash from a normal end and unsent data would be thrown away.`,
  ),
  {
    id: 'tw-reuse',
    name: 'tcp_tw_reuse=1 on the client',
    source: 'known practice (ip-sysctl.rst); seed 001, sysctl list',
    estimateMs: 3_500,
    async run(ctx) {
      const fix = {
        id: 'tw-reuse',
        name: 'tcp_tw_reuse=1 on the client',
        source: 'known practice (ip-sysctl.rst); seed 001, sysctl list',
      };
      const m = await runSeedClient(ctx, {
        hosts: 2,
        sysctls: { 'net.ipv4.tcp_tw_reuse': 0 },
        hostSysctls: { client: { 'net.ipv4.tcp_tw_reuse': 1 } },
        count: FIX_COUNT,
        retryAfterMs: 1100,
      });
      const retry = m.retry ? (m.retry.ok ? 'succeeded' : `failed (${m.retry.error ?? '?'})`) : 'not needed';
      return fromSeed(
        fix,
        m,
        (x) =>
          `${failText(x)} when connecting as fast as it can: a TIME_WAIT port is reused only once it is older than tcp_tw_reuse_delay; a retry 1.1 s after the failure ${retry}. Sustained rate is bounded by ports per second.`,
        { retryAfter1100ms: retry },
      );
    },
  },
  {
    id: 'keep-open',
    name: 'keep one connection open (framed messages)',
    source: `${SEED0}, comment 5`,
    estimateMs: 1_500,
    async run(ctx) {
      const { sb, client: r, firstError, messagesReceived } = await runKeepOpen(ctx, FIX_COUNT);
      const [c, s, cc, sc] = await Promise.all([
        states(sb.client),
        states(sb.server),
        counters(sb.client),
        counters(sb.server),
      ]);
      return {
        id: 'keep-open',
        name: 'keep one connection open (framed messages)',
        source: `${SEED0}, comment 5`,
        connectionsBeforeFailure: r.firstError ? r.succeeded : null,
        attempted: FIX_COUNT,
        connectionsPerSecond: Math.round(r.perSecond),
        firstError,
        costs: {
          clientRstsSent: cc.outRsts,
          serverResets: sc.estabResets,
          payloadLost:
            r.succeeded === messagesReceived ? 'none' : `${r.succeeded - messagesReceived} messages`,
          clientTimeWait: c.timeWait,
          serverTimeWait: s.timeWait,
          portsUsed: r.localPortsUsed,
        },
        note: `${r.succeeded} messages on ${r.localPortsUsed} connection; needs message framing (a 4-byte length here) in the protocol.`,
      };
    },
  },
  {
    id: 'udp',
    name: 'UDP instead of TCP',
    source: `${SEED0}, comments 2 and 6`,
    estimateMs: 1_500,
    async run(ctx) {
      const r = await runUdp(ctx, { hosts: 2, count: FIX_COUNT });
      const lost = r.client.succeeded - r.server.datagrams;
      return {
        id: 'udp',
        name: 'UDP instead of TCP',
        source: `${SEED0}, comments 2 and 6`,
        connectionsBeforeFailure: r.client.firstError ? r.client.succeeded : null,
        attempted: r.client.attempted,
        connectionsPerSecond: Math.round(r.client.perSecond),
        firstError: errorText(r.client.firstError),
        costs: {
          clientRstsSent: 'n/a (UDP)',
          serverResets: 'n/a (UDP)',
          payloadLost: lost > 0 ? `${lost} of ${r.client.succeeded} datagrams` : 'none',
          clientTimeWait: r.clientTimeWait,
          serverTimeWait: 'n/a (UDP)',
        },
        note: `No connection, no TIME_WAIT; delivery, ordering and flow control become the application's job (${lost} lost here).`,
      };
    },
  },
  seedFix(
    {
      id: 'server-first',
      name: 'let the server close first',
      source: 'known practice; seed 001 ("remote closes first", inverted)',
    },
    { ...BASE, client: { close: 'server-first' } },
    (m) =>
      `${failText(m)}: TIME_WAIT moved to the server (${m.serverTimeWait} there, ${m.clientTimeWait} on the client), one per distinct client port (${m.localPortsUsed} used: the client's ports were free again at once); the client must wait for the server's FIN.`,
  ),
  seedFix(
    {
      id: 'wide-range',
      name: `a wider port range (${rangeSize(WIDE_RANGE)} ports)`,
      source: `${SEED0}, comment 1 (more ports)`,
    },
    { ...BASE, portRange: WIDE_RANGE },
    (m) =>
      `${failText(m)} within the bound; only moves the wall: every port still spends TIME_WAIT, so the sustained rate stays below ports / TIME_WAIT length.`,
  ),
  seedFix(
    {
      id: 'more-sources',
      name: '4 source addresses: SO_REUSEADDR + IP_BIND_ADDRESS_NO_PORT + bind(ip, 0)',
      source: 'known practice (Cloudflare, "bind before connect")',
    },
    { ...BASE, extraClientAddresses: 3, client: { reuseAddr: true, bindNoPort: true, bindPort: 0 } },
    (m) =>
      `${failText(m)}, ${m.localPortsUsed} distinct port numbers over ${String((m.settings['bindAddresses'] as string[] | undefined)?.length ?? '?')} source addresses: each address has its own ports, so the wall moves out with every address.`,
  ),
  {
    id: 'bind-trap',
    name: 'plain bind(ip, 0) before connect, 2 destinations (trap)',
    source: 'known pitfall (bind picks the port before it knows the destination)',
    estimateMs: 2_500,
    async run(ctx) {
      const fix = {
        id: 'bind-trap',
        name: 'plain bind(ip, 0) before connect, 2 destinations (trap)',
        source: 'known pitfall (bind picks the port before it knows the destination)',
      };
      const twoDest = { ...BASE, destinations: 2, count: FIX_COUNT };
      const [bound, plain] = await Promise.all([
        runSeedClient(ctx, { ...twoDest, client: { bindAddresses: [SANDBOX_NET.client], bindPort: 0 } }),
        runSeedClient(ctx, twoDest),
      ]);
      return fromSeed(
        fix,
        bound,
        (m) =>
          `${failText(m)}; without the bind, the same client to the same 2 destinations ${failText(plain).replace(/^ran/, 'ran')}: bind(ip, 0) ties each port up for every destination.`,
        { withoutBindFailedAfter: plain.failedAfter ?? `none in ${plain.attempted}` },
      );
    },
  },
];

// ---- Behind a NAT --------------------------------------------------------------------------
// The NAT remedies, measured the same way as each other: the client behind the sandbox's
// 100-port source NAT (3 hosts, the client's own 10,000 ports outside the pool, so only the NAT
// can run short), the server closing first (the case that stalls: N-03), NAT_FIX_COUNT
// connections at most, stop at the first failure. "Before failure" counts the connections before
// the first failure or stall (a connection that took 500 ms or more: a SYN sent again).

/** Connections per NAT remedy: three times the pool, so the pool goes round twice. */
export const NAT_FIX_COUNT = poolSize(NAT_POOL) * 3;
const NAT_SOURCE = 'issue 14; N-03 (server closes first behind a NAT)';

function fromNat(fix: { id: string; name: string; source: string }, r: NatChurnRun, note: string): FixResult {
  const stall = r.firstStall
    ? `stall ${Math.round(r.firstStall.ms)} ms at #${r.firstStall.atIteration}`
    : null;
  return {
    ...fix,
    connectionsBeforeFailure: r.troubleFree ? null : r.beforeTrouble,
    attempted: r.attempted,
    connectionsPerSecond: r.connectionsPerSecond,
    firstError:
      r.firstError && (!r.firstStall || r.failedAtIteration! <= r.firstStall.atIteration)
        ? r.firstError
        : (stall ?? r.firstError),
    costs: {
      stallsOver500ms: r.stalls,
      synsSentAgain: r.clientSynRetrans,
      natPortsUsed: r.natPortsUsed,
      insertFailed: r.insertFailed,
      conntrackTimeWait: r.conntrackByState['TIME_WAIT'] ?? 0,
      conntrackTimeWaitS: r.conntrackTimeWaitS,
      clientTimeWait: r.clientTimeWait,
      serverTimeWait: r.serverTimeWait,
    },
    note: `${runText(r)}; ${note}`,
  };
}

function natFix(
  fix: { id: string; name: string; source: string },
  spec: NatChurnSpec,
  note: (r: NatChurnRun) => string,
): FixExperiment {
  return {
    ...fix,
    // Several sandbox hosts and, server-first, a second of stall per collision: on a loaded
    // 2-core machine these took 60-90 s, so the budget (4 x the estimate) is 120 s.
    estimateMs: 30_000,
    run: async (ctx) => {
      const r = await runNatChurn(ctx, { count: NAT_FIX_COUNT, ...spec });
      return fromNat(fix, r, note(r));
    },
  };
}

const serverFirst: NatChurnSpec = { close: 'server-first' };

export const NAT_FIXES: readonly FixExperiment[] = [
  natFix(
    { id: 'nat-none', name: 'none behind a 100-port NAT (server closes first)', source: NAT_SOURCE },
    serverFirst,
    (r) =>
      `baseline: once the pool has gone round, reused NAT ports meet the server's TIME_WAIT (${r.serverTimeWait} held there).`,
  ),
  natFix(
    {
      id: 'nat-fully-random',
      name: 'fully-random NAT ports (--random-fully)',
      source: 'N-02; kube-ovn #1956',
    },
    { ...serverFirst, fullyRandom: true },
    () => 'a random port is still one the server remembers once the pool has gone round (N-02).',
  ),
  natFix(
    {
      id: 'nat-wide-pool',
      name: `a wider NAT pool / more SNAT ports (${poolSize(WIDE_NAT_POOL)})`,
      source: 'known practice (more SNAT addresses or ports)',
    },
    { ...serverFirst, pool: WIDE_NAT_POOL },
    (r) =>
      `moves the wall: no port came round within ${r.attempted} connections; the same collisions start after ${r.poolSize} (N-03), so the sustained rate stays below pool / the server's 60 s TIME_WAIT.`,
  ),
  natFix(
    {
      id: 'nat-ct-short-tw',
      name: 'conntrack TIME_WAIT timeout 2 s on the NAT',
      source: 'N-04; devops-insider (nf_conntrack_tcp_timeout_time_wait)',
    },
    { ...serverFirst, ctTimeWaitS: 2 },
    () =>
      "the expired entries no longer guard their ports: a port is handed out with no sequence check against the old connection, and the server's TIME_WAIT can then refuse the SYN until connect times out.",
  ),
  natFix(
    {
      id: 'nat-keep-open',
      name: 'keep-alive: one connection reused (framed messages)',
      source: `${SEED0}, comment 5; known practice`,
    },
    { close: 'client-first', reuseConnection: true },
    (r) =>
      `one NAT port, one conntrack entry (${r.natPortsUsed} port used); needs message framing in the protocol.`,
  ),
  natFix(
    {
      id: 'nat-client-first',
      name: 'let the client close first',
      source: 'N-03 (its control); known practice',
    },
    { close: 'client-first' },
    (r) =>
      `TIME_WAIT stays on the client (${r.clientTimeWait} there, ${r.serverTimeWait} on the server), so a reused NAT port meets nothing the server remembers; the client needs ports of its own for it.`,
  ),
];
