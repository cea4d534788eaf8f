/**
 * `twlab predict`: when does a connection-churning client run out of ephemeral ports, how many
 * TIME_WAIT sockets does it keep, and which fix helps, computed by running src/model. Settings the
 * user leaves out are read (read-only) from this host's sysctls, and the output says which.
 */
import type { Command } from 'commander';
import { UsageError } from '../common/errors.js';
import {
  type PortRange,
  parseChoice,
  parseIntInRange,
  parseNumberInRange,
  parsePortRange,
} from '../common/parse.js';
import {
  checkPairs,
  CLOSE_ORDERS,
  type CloseOrder,
  PORT_SLOT_BUDGET,
  type PortMode,
  predict,
  RATE_CAP,
  WORK_BUDGET,
} from '../model/index.js';
import type { Coarsening, NatPorts, Prediction, PredictInput, PredictNat } from '../model/index.js';
import { parseNatPorts } from '../model/index.js';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_CT_TIME_WAIT_SEC,
  DEFAULT_HZ,
  DEFAULT_PORT_RANGE,
  DEFAULT_TCP_TIMESTAMPS,
  DEFAULT_TW_REUSE,
  DEFAULT_TW_REUSE_DELAY_MS,
  TYPICAL_MAX_TW_BUCKETS,
} from '../model/kernel-rules.js';
import { hostHz } from '../observe/kernel-config.js';
import { readSysctl } from '../observe/sysctl.js';
import { parseReservedPorts } from '../observe/sysctl.js';
import { action, option, printJson } from './command.js';

interface PredictFlags {
  rate: number;
  portRange?: PortRange;
  twReuse?: 0 | 1 | 2;
  twReuseDelay?: number;
  maxTwBuckets?: number;
  reservedPorts?: PortRange[];
  timestamps?: 0 | 1;
  loopback?: boolean;
  destinations: number;
  sourceAddresses: number;
  bindBeforeConnect?: boolean;
  bindNoPort?: boolean;
  close: CloseOrder;
  duration: number;
  hold: number;
  peerClose: number;
  hz?: number;
  seed: number;
  json?: boolean;
  natPorts?: NatPorts;
  natFullyRandom?: boolean;
  conntrackTwTimeout?: number;
  connectTimeout?: number;
}

/** The NAT of the flags, or undefined; its settings without --nat-ports are a usage error. */
function resolveNat(flags: PredictFlags): PredictNat | undefined {
  if (!flags.natPorts) {
    const stray = flags.natFullyRandom
      ? '--nat-fully-random'
      : flags.conntrackTwTimeout !== undefined
        ? `--conntrack-tw-timeout ${flags.conntrackTwTimeout}`
        : flags.connectTimeout !== undefined
          ? `--connect-timeout ${flags.connectTimeout}`
          : undefined;
    if (stray) throw new UsageError(`${stray}: only with --nat-ports (the NAT it describes)`);
    return undefined;
  }
  return {
    ports: flags.natPorts.ports,
    low: flags.natPorts.low,
    fullyRandom: flags.natFullyRandom ?? false,
    conntrackTimeWaitSec: flags.conntrackTwTimeout ?? DEFAULT_CT_TIME_WAIT_SEC,
    connectTimeoutSec: flags.connectTimeout,
  };
}

/** Where a setting's value came from. */
export type SettingSource = 'flag' | 'host' | 'default';

export interface Setting {
  value: string | number | boolean;
  source: SettingSource;
}

/** A rate: a number > 0. */
export function parseRate(text: string): number {
  const n = parseNumberInRange(text, '--rate', 0, 10_000_000);
  if (n <= 0)
    throw new UsageError(`--rate: ${text.trim()} is out of range (accepted: a number > 0, up to 10000000)`);
  return n;
}

/** A duration in seconds: >= 0. */
export function parseDuration(text: string): number {
  return parseNumberInRange(text, '--duration', 0, 31_536_000);
}

/** A host sysctl read as an integer, or undefined when absent or unreadable. */
function hostInt(key: string): number | undefined {
  try {
    const v = readSysctl(key);
    return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
  } catch {
    return undefined;
  }
}

/** The prediction input from the flags, filling gaps from this host; and where each value came from. */
export function resolveInput(flags: PredictFlags): {
  input: PredictInput;
  settings: Record<string, Setting>;
} {
  const settings: Record<string, Setting> = {};
  function pick<T extends string | number | boolean>(
    name: string,
    flag: T | undefined,
    host: () => T | undefined,
    fallback: T,
  ): T {
    if (flag !== undefined) {
      settings[name] = { value: flag, source: 'flag' };
      return flag;
    }
    const h = host();
    if (h !== undefined) {
      settings[name] = { value: h, source: 'host' };
      return h;
    }
    settings[name] = { value: fallback, source: 'default' };
    return fallback;
  }
  const rangeText = pick(
    'ip_local_port_range',
    flags.portRange ? `${flags.portRange.low}-${flags.portRange.high}` : undefined,
    () => readSysctl('ip_local_port_range')?.replace(' ', '-'),
    `${DEFAULT_PORT_RANGE.low}-${DEFAULT_PORT_RANGE.high}`,
  );
  const portRange = parsePortRange(rangeText, '--port-range');
  const twReuse = pick('tcp_tw_reuse', flags.twReuse, () => hostInt('tcp_tw_reuse'), DEFAULT_TW_REUSE) as
    0 | 1 | 2;
  const twReuseDelayMs = pick(
    'tcp_tw_reuse_delay',
    flags.twReuseDelay,
    () => hostInt('tcp_tw_reuse_delay'),
    DEFAULT_TW_REUSE_DELAY_MS,
  );
  const maxTwBuckets = pick(
    'tcp_max_tw_buckets',
    flags.maxTwBuckets,
    () => hostInt('tcp_max_tw_buckets'),
    TYPICAL_MAX_TW_BUCKETS,
  );
  const timestamps = pick(
    'tcp_timestamps',
    flags.timestamps,
    () => hostInt('tcp_timestamps'),
    DEFAULT_TCP_TIMESTAMPS,
  );
  const reservedText = pick(
    'ip_local_reserved_ports',
    flags.reservedPorts?.map((r) => (r.low === r.high ? `${r.low}` : `${r.low}-${r.high}`)).join(','),
    () => readSysctl('ip_local_reserved_ports'),
    '',
  );
  const hz = pick('CONFIG_HZ', flags.hz, hostHz, DEFAULT_HZ);
  if (flags.bindBeforeConnect && flags.bindNoPort) {
    throw new UsageError(
      '--bind-before-connect and --bind-no-port: choose one (bind-no-port is the fix for the other)',
    );
  }
  const portMode: PortMode = flags.bindBeforeConnect
    ? 'bind-before-connect'
    : flags.bindNoPort
      ? 'bind-no-port'
      : 'connect';
  if (flags.peerClose > 0 && flags.close !== 'client-first') {
    throw new UsageError(
      `--peer-close ${flags.peerClose}: only with --close client-first (the peer's FIN ends the client's FIN_WAIT only when the client closes first)`,
    );
  }
  checkPairs(flags.destinations, flags.sourceAddresses, '--destinations x --source-addresses');
  const input: PredictInput = {
    rate: flags.rate,
    portRange,
    reservedPorts: parseReservedPorts(String(reservedText)),
    twReuse,
    twReuseDelayMs,
    maxTwBuckets,
    timestamps: timestamps !== 0,
    loopback: flags.loopback ?? false,
    destinations: flags.destinations,
    sourceAddresses: flags.sourceAddresses,
    portMode,
    close: flags.close,
    durationSec: flags.duration,
    holdSec: flags.hold,
    peerCloseMs: flags.peerClose,
    hz,
    seed: flags.seed,
  };
  const nat = resolveNat(flags);
  if (nat) input.nat = nat;
  return { input, settings };
}

function secs(s: number): string {
  return s < 10 ? `${s.toFixed(3)} s` : s < 600 ? `${s.toFixed(1)} s` : `${(s / 60).toFixed(1)} min`;
}

function rateText(r: number | null): string {
  return r === null
    ? `not limited by ports (no rate up to ${RATE_CAP}/s fails)`
    : `${r.toFixed(r < 100 ? 2 : 0)}/s`;
}

function failureText(
  p: {
    firstFailureSec: number | null;
    firstFailureAtConnection: number | null;
    firstFailureErrno: string | null;
  },
  duration: number,
): string {
  if (p.firstFailureSec === null) return `never within ${secs(duration)}`;
  const how =
    p.firstFailureErrno === 'EADDRINUSE'
      ? ': EADDRINUSE from bind()'
      : p.firstFailureErrno === 'ETIMEDOUT'
        ? ': ETIMEDOUT from connect(), its SYNs dropped by the NAT'
        : '';
  return `after ${secs(p.firstFailureSec)} (connection ${p.firstFailureAtConnection}${how})`;
}

/** The line that says the figures come from a coarser model, and how much coarser. */
function coarseText(c: Coarsening): string {
  const how = [
    c.poolsAsOne > 1 ? `${c.poolsAsOne} identical port pools simulated as one` : '',
    c.scaledDownBy > 1 ? `rate and ports scaled down ${c.scaledDownBy}x` : '',
  ].filter(Boolean);
  return `(coarse model: ${how.join(', ')}, counts multiplied back; an exact run would exceed the model's work bound, see --help)`;
}

export function formatPrediction(p: Prediction, settings: Record<string, Setting>): string {
  const i = p.input;
  const size = i.portRange.high - i.portRange.low + 1;
  const mode = {
    connect: 'plain connect()',
    'bind-before-connect': 'bind(0) before connect()',
    'bind-no-port': 'IP_BIND_ADDRESS_NO_PORT',
  }[i.portMode];
  const lines = [
    `Workload: ${i.rate}/s new connections to ${i.destinations} destination(s) from ${i.sourceAddresses} source address(es), ${mode}, ${i.close} close, ${i.loopback ? 'loopback' : 'not loopback'}, each open ${i.holdSec ?? 0} s${i.peerCloseMs ? `, the peer closes ${i.peerCloseMs} ms after the client` : ''}`,
    `Settings: ports ${i.portRange.low}-${i.portRange.high} (${size}), tcp_tw_reuse=${i.twReuse}, tcp_tw_reuse_delay=${i.twReuseDelayMs} ms, tcp_max_tw_buckets=${i.maxTwBuckets}, tcp_timestamps=${i.timestamps ? 1 : 0}, HZ=${i.hz}`,
  ];
  const fromHost = Object.entries(settings)
    .filter(([, s]) => s.source === 'host')
    .map(([k]) => k);
  const fromDefault = Object.entries(settings)
    .filter(([, s]) => s.source === 'default')
    .map(([k]) => k);
  if (fromHost.length) lines.push(`  read from this host: ${fromHost.join(', ')}`);
  if (fromDefault.length) lines.push(`  kernel defaults (not readable here): ${fromDefault.join(', ')}`);
  if (i.nat) lines.push(...natSettingsLines(i));
  lines.push(
    '',
    `${i.portMode === 'bind-before-connect' ? 'First failure to get a port:' : i.nat ? 'First failure:             ' : 'First EADDRNOTAVAIL:       '} ${failureText(p, i.durationSec)}`,
    ...(p.nat ? natLines(p, i) : []),
    `TIME_WAIT, steady state:    ${p.timeWaitSteadyState} on the client host${i.close === 'server-first' ? `, ${p.serverTimeWaitSteadyState} held by the server` : ''}`,
    `Largest sustainable rate:   ${rateText(p.maxSustainableRate)} per destination`,
    `(model: ${p.connectionsModelled} connections over ${secs(p.simulatedSec)} simulated; a constant-rate run that has not failed by then never does)`,
    ...(p.coarse ? [coarseText(p.coarse)] : []),
    '',
    'Fixes, best first:',
  );
  for (const f of p.fixes) {
    lines.push(
      `${String(f.rank).padStart(3)}. ${f.fix}`,
      `     ${f.effect}: first failure ${failureText(f, i.durationSec)}${f.nat ? `; NAT stalls ${f.nat.stalls}, collisions ${f.nat.collisions}` : ''}; TIME_WAIT ${f.timeWaitSteadyState}; sustains ${rateText(f.maxSustainableRate)} per destination${f.coarse ? ' (coarse model)' : ''}`,
      `     caveat: ${f.caveat}`,
    );
  }
  return lines.join('\n') + '\n';
}

function natSettingsLines(i: PredictInput): string[] {
  const n = i.nat!;
  const where = n.low !== undefined ? ` (${n.low}-${n.low + n.ports - 1})` : ' (outside the client ports)';
  const timeout = n.connectTimeoutSec ?? DEFAULT_CONNECT_TIMEOUT_MS / 1000;
  return [
    `NAT: ${n.ports} port(s)${where} per destination, ${n.fullyRandom ? 'fully-random' : 'not fully-random'}, conntrack TIME_WAIT ${n.conntrackTimeWaitSec} s; connect() gives up after ${timeout} s`,
  ];
}

/** The NAT's figures: stalls (SYNs the NAT dropped), collisions with the server's TIME_WAIT. */
function natLines(p: Prediction, i: PredictInput): string[] {
  const n = p.nat!;
  const stall = n.firstStall
    ? `after ${secs(n.firstStall.sec)} (connection ${n.firstStall.atConnection}: its SYN found no free NAT port, connect() took ${secs(n.firstStall.ms / 1000)}); ${n.stalls} stall(s), ${n.drops} SYN(s) dropped in the run`
    : `never within ${secs(i.durationSec)}`;
  const lines = [`First NAT stall:            ${stall}`];
  if (i.close === 'server-first') {
    lines.push(
      `Server TIME_WAIT collisions: ${
        n.firstCollision
          ? `from connection ${n.firstCollision.atConnection} (${secs(n.firstCollision.sec)}), ${n.collisions} in the run: a reused NAT port meets the server's TIME_WAIT (measured: about half such SYNs are answered with an ACK and sent again; a few stall 1 s or more)`
          : `none within ${secs(i.durationSec)}`
      }`,
    );
  }
  lines.push(
    `NAT ports held at the end:  ${n.heldAtEnd.open + n.heldAtEnd.timeWait + n.heldAtEnd.close} (open ${n.heldAtEnd.open}, TIME_WAIT ${n.heldAtEnd.timeWait}, CLOSE ${n.heldAtEnd.close}); ${n.evictions} taken by evicting a closing entry`,
  );
  return lines;
}

const PREDICT_HELP = `
Examples:
  twlab predict --rate 800                             this host's settings, one destination
  twlab predict --rate 800 --port-range 32768-60999 --tw-reuse 0 --json
  twlab predict --rate 5000 --destinations 50 --bind-before-connect
  twlab predict --rate 300 --loopback --close server-first --duration 600
  twlab predict --rate 2000 --loopback --tw-reuse 1 --peer-close 200   a peer slow to close
  twlab predict --rate 100 --nat-ports 100 --close server-first          behind a 100-port NAT
  twlab predict --rate 50 --hold 5 --nat-ports 40000-40099 --nat-fully-random --conntrack-tw-timeout 30 --json

Every figure comes from running the model (src/model): Linux's port choice (__inet_hash_connect,
inet_csk_find_open_port), TIME_WAIT (60 s on the timer wheel), tcp_tw_reuse and its delay,
tcp_max_tw_buckets. docs/model-validation.md compares it with the kernel.

Behind a NAT (--nat-ports): the router's conntrack and its port choice (nf_nat_core.c:
keep the client's port when in range and free unless fully-random; else up to 128 tries from a
random offset, the last 32 of which may evict an entry in TIME_WAIT/CLOSE whose connection's
sequence number the new SYN has passed; entries live nf_conntrack_tcp_timeout_time_wait after
their close). A SYN with no free NAT port is dropped: the client sends it again after 1 s, 2 s,
... (a stall) until --connect-timeout (ETIMEDOUT). With --close server-first the server's own
TIME_WAIT is on each NAT port: a connection given such a port is counted as a collision (a
stall risk: measured, about half such SYNs are answered with an ACK and sent again, a few stall
1 s or more). The sustainable rate behind a NAT is the largest with no failure, stall or collision.

Bounded work: each of the model's runs (about 250 per prediction) walks at most
${WORK_BUDGET.toLocaleString('en-US')} connection attempts and keeps at most ${PORT_SLOT_BUDGET.toLocaleString('en-US')} port slots. A run that would
need more is made coarser: identical destination pools simulated as one, then rate, ports and
tcp_max_tw_buckets scaled down together (times kept, counts multiplied back). The output says so
("coarse model"; "coarse" in --json). Any accepted input answers in under a minute on one core and
under 500 MB (test/model/predict-bounds.test.ts).`;

/** Seconds, > 0 and at most the kernel's own connect() timeout. */
function parseConnectTimeout(t: string): number {
  const v = parseNumberInRange(t, '--connect-timeout', 0, DEFAULT_CONNECT_TIMEOUT_MS / 1000);
  if (v <= 0)
    throw new UsageError(
      `--connect-timeout: ${t.trim()} is out of range (accepted: a number > 0, up to ${DEFAULT_CONNECT_TIMEOUT_MS / 1000})`,
    );
  return v;
}

export function registerPredict(program: Command): void {
  program
    .command('predict')
    .description('Model when a connection-churning client runs out of ephemeral ports, and what fixes it')
    .requiredOption('--rate <n>', 'new connections per second (whole host, > 0)', option(parseRate))
    .option(
      '--port-range <A-B>',
      'ip_local_port_range (default: this host)',
      option((t) => parsePortRange(t, '--port-range')),
    )
    .option(
      '--tw-reuse <n>',
      'tcp_tw_reuse 0|1|2 (default: this host)',
      option((t) => Number(parseChoice(t, '--tw-reuse', ['0', '1', '2'] as const)) as 0 | 1 | 2),
    )
    .option(
      '--tw-reuse-delay <ms>',
      'tcp_tw_reuse_delay (default: this host)',
      option((t) => parseIntInRange(t, '--tw-reuse-delay', 1, 2_147_483_647)),
    )
    .option(
      '--max-tw-buckets <n>',
      'tcp_max_tw_buckets (default: this host)',
      option((t) => parseIntInRange(t, '--max-tw-buckets', 0, 2_147_483_647)),
    )
    .option(
      '--reserved-ports <list>',
      'ip_local_reserved_ports, e.g. 8080,9000-9010 (default: this host)',
      option(parseReservedList),
    )
    .option(
      '--timestamps <0|1>',
      'TCP timestamps negotiated (default: this host tcp_timestamps)',
      option((t) => Number(parseChoice(t, '--timestamps', ['0', '1'] as const)) as 0 | 1),
    )
    .option('--loopback', 'the destinations are loopback addresses (what tcp_tw_reuse=2 asks for)')
    .option(
      '--destinations <n>',
      'distinct destinations, connected to round-robin',
      option((t) => parseIntInRange(t, '--destinations', 1, 32767)),
      1,
    )
    .option(
      '--source-addresses <n>',
      'client source addresses (bind(addr, 0) per socket)',
      option((t) => parseIntInRange(t, '--source-addresses', 1, 32767)),
      1,
    )
    .option(
      '--bind-before-connect',
      'bind(addr, 0) before connect(): the port is taken for every destination',
    )
    .option('--bind-no-port', 'bind(addr, 0) with IP_BIND_ADDRESS_NO_PORT: the port is chosen at connect()')
    .option(
      '--close <order>',
      `who closes first: ${CLOSE_ORDERS.join(', ')}`,
      option((t) => parseChoice(t, '--close', CLOSE_ORDERS)),
      'client-first',
    )
    .option('--duration <s>', 'the horizon of the question, seconds (>= 0)', option(parseDuration), 3600)
    .option(
      '--hold <s>',
      'how long each connection stays open, seconds',
      option((t) => parseNumberInRange(t, '--hold', 0, 86_400)),
      0,
    )
    .option(
      '--peer-close <ms>',
      "client-first: the peer application's time to close its end after the client's close(); the port stays held until then",
      option((t) => parseNumberInRange(t, '--peer-close', 0, 3_600_000)),
      0,
    )
    .option(
      '--hz <n>',
      "the kernel's CONFIG_HZ (TIME_WAIT timer granularity; default: this kernel's config)",
      option((t) => parseIntInRange(t, '--hz', 100, 1000)),
    )
    .option(
      '--seed <n>',
      'seed of the model (port choice randomness)',
      option((t) => parseIntInRange(t, '--seed', 0, 4_294_967_295)),
      1,
    )
    .option(
      '--nat-ports <N|LOW-HIGH>',
      'a source NAT in the path with N ports per destination (or the snat range LOW-HIGH: client ports inside it may be kept)',
      option((t) => parseNatPorts(t)),
    )
    .option('--nat-fully-random', "the NAT's snat rule has fully-random (never keeps the client's port)")
    .option(
      '--conntrack-tw-timeout <s>',
      `the NAT router's nf_conntrack_tcp_timeout_time_wait, seconds (default ${DEFAULT_CT_TIME_WAIT_SEC})`,
      option((t) => parseIntInRange(t, '--conntrack-tw-timeout', 0, 2_147_483)),
    )
    .option(
      '--connect-timeout <s>',
      `behind a NAT: how long connect() waits for its SYN to be answered (default: the kernel's ${DEFAULT_CONNECT_TIMEOUT_MS / 1000} s)`,
      option(parseConnectTimeout),
    )
    .option('--json', 'print one JSON document on stdout')
    .addHelpText('after', PREDICT_HELP)
    .action(
      action((flags: PredictFlags) => {
        const { input, settings } = resolveInput(flags);
        const prediction = predict(input);
        if (flags.json) printJson({ ...prediction, settings });
        else process.stdout.write(formatPrediction(prediction, settings));
      }),
    );
}

/** "8080,9000-9010" with every port checked. */
function parseReservedList(text: string): PortRange[] {
  if (text.trim() === '') return [];
  return text
    .split(',')
    .map((part) => parsePortRange(part.includes('-') ? part : `${part}-${part}`, '--reserved-ports'));
}
