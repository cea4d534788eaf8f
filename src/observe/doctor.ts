/**
 * `twlab doctor`: findings about TCP teardown on this host (its network namespace), each with the
 * numbers it saw and fixes ranked by how much they help and what they cost. Everything is read
 * in this run: the census, sysctls, counters. Doctor only reads; it never writes a sysctl. Fixes
 * name only settings that exist under /proc/sys on this kernel.
 */
import { existsSync } from 'node:fs';
import { takeCensus, type CensusResult, type PressureEntry } from './census.js';
import { readSysctls, sysctlPath } from './sysctl.js';
import type { PortRange } from '../common/parse.js';
import { conntrackFindings } from './doctor-conntrack.js';
import { inspectPort, type PortReport } from './doctor-port.js';
import type { DumpOptions } from './sockdiag.js';

/** The sysctls doctor reads (net.core.somaxconn by full name, the rest under net.ipv4). */
export const DOCTOR_SYSCTLS = [
  'ip_local_port_range',
  'ip_local_reserved_ports',
  'tcp_tw_reuse',
  'tcp_tw_reuse_delay',
  'tcp_timestamps',
  'tcp_fin_timeout',
  'tcp_max_tw_buckets',
  'tcp_rfc1337',
  'net.core.somaxconn',
] as const;

export interface Fix {
  /** 1 = do this first. */
  rank: number;
  action: string;
  benefit: string;
  cost: string;
  /** The sysctl or socket option involved, when there is one. */
  setting?: string;
}

export interface Finding {
  id: string;
  severity: 'info' | 'warning' | 'critical';
  title: string;
  /** The numbers doctor saw. */
  evidence: Record<string, number | string | boolean | null>;
  fixes: Fix[];
}

export interface DoctorResult {
  findings: Finding[];
  sysctls: Record<string, string>;
  /** Sysctls doctor looked for that this kernel lacks. */
  missingSysctls: string[];
  census: CensusResult;
  port?: PortReport;
}

export interface DoctorOptions {
  port?: number;
  bindAddress?: string;
  tryBind?: boolean;
  source?: DumpOptions['source'];
  /** Window for the recent TIME_WAIT rate, in seconds (the census's default when omitted). */
  rateWindowSec?: number;
  /** The source NAT's port range, for its pool findings (conntrack does not record it). */
  natRange?: PortRange;
}

/** Pressure at or above this share of the usable ports is worth a finding. */
const PRESSURE_WARN = 0.1;
/** Seconds to exhaustion below this make the pressure critical. */
const EXHAUSTION_CRITICAL_S = 300;

// Long (~190 lines) on purpose: a list of independent findings, each a short rule over the same
// census, sysctls and counters read once at the top.
// eslint-disable-next-line max-lines-per-function -- long on purpose, as said above
export function runDoctor(opts: DoctorOptions = {}): DoctorResult {
  const census = takeCensus({
    ...(opts.source ? { source: opts.source } : {}),
    ...(opts.rateWindowSec ? { rateWindowSec: opts.rateWindowSec } : {}),
    top: 5,
  });
  const sysctls = readSysctls(DOCTOR_SYSCTLS);
  const missingSysctls = DOCTOR_SYSCTLS.filter((k) => sysctls[k] === undefined);
  const has = (key: string): boolean => sysctls[key] !== undefined;
  const num = (key: string): number | null => (has(key) ? Number(sysctls[key]!.split(' ')[0]) : null);
  const findings: Finding[] = [];

  const worst = census.pressure[0];
  if (worst && (worst.ratio >= PRESSURE_WARN || worst.secondsToExhaustion !== null)) {
    findings.push(pressureFinding(worst, census, sysctls, has, num));
  }

  const maxTw = num('tcp_max_tw_buckets');
  const overflow = census.counters.tcpExt['TCPTimeWaitOverflow'] ?? 0;
  // tcp_max_tw_buckets limits every minisocket, orphaned FIN-WAIT-2 ones included: sockstat's
  // "tw" counts exactly those, so it is the number to compare (the census shows them by state).
  const buckets = Math.max(census.counters.sockstat.tw, census.timeWait.count);
  if (maxTw !== null && (buckets >= maxTw * 0.5 || overflow > 0)) {
    findings.push({
      id: 'time-wait-buckets',
      severity: overflow > 0 ? 'warning' : 'info',
      title:
        overflow > 0
          ? 'The TIME-WAIT table overflowed: the kernel closed connections without TIME-WAIT'
          : 'TIME-WAIT sockets are near tcp_max_tw_buckets',
      evidence: {
        timeWait: census.timeWait.count,
        tcp_max_tw_buckets: maxTw,
        TCPTimeWaitOverflow: overflow,
        sockstatTw: census.counters.sockstat.tw,
        finWait2: census.byState['FIN-WAIT-2'] ?? 0,
      },
      fixes: [
        fix(
          1,
          'Reuse connections (keep-alive / a pool) so fewer of them close',
          'fewer TIME-WAIT sockets at the source',
          'application change',
        ),
        fix(
          2,
          'Let the peer close first where the protocol allows',
          'TIME-WAIT moves to the peer',
          'protocol or server change',
        ),
      ],
    });
  }

  const closeWait = census.byState['CLOSE-WAIT'] ?? 0;
  if (closeWait > 0) {
    findings.push({
      id: 'close-wait',
      severity: closeWait >= 100 ? 'warning' : 'info',
      title: 'Sockets in CLOSE-WAIT: the peer has closed, this side has not called close()',
      evidence: { closeWait },
      fixes: [
        fix(
          1,
          'Close the socket when read() returns 0 (EOF) or on error, in every code path',
          'frees the socket and its port',
          'application fix; the kernel never times CLOSE-WAIT out',
        ),
      ],
    });
  }

  const finWait2 = census.byState['FIN-WAIT-2'] ?? 0;
  if (finWait2 > 0) {
    findings.push({
      id: 'fin-wait-2',
      severity: 'info',
      title: 'Sockets in FIN-WAIT-2: this side closed, the peer has not',
      evidence: {
        finWait2,
        tcp_fin_timeout: num('tcp_fin_timeout'),
        orphans: census.counters.sockstat.orphan,
      },
      fixes: [
        fix(1, 'Make the peer close its end on EOF', 'the connection completes its teardown', 'peer change'),
        ...(has('tcp_fin_timeout')
          ? [
              fix(
                2,
                `Orphaned FIN-WAIT-2 sockets die after tcp_fin_timeout (${sysctls['tcp_fin_timeout']} s here); lowering it frees them sooner`,
                'bounded lifetime for abandoned connections',
                'a slow peer may get a RST',
                'net.ipv4.tcp_fin_timeout',
              ),
            ]
          : []),
      ],
    });
  }

  const overflows = census.counters.tcpExt['ListenOverflows'] ?? 0;
  if (overflows > 0) {
    const somaxconn = num('net.core.somaxconn');
    findings.push({
      id: 'listen-overflow',
      severity: 'warning',
      title:
        "A listener's accept queue overflowed: the kernel dropped connection attempts (clients retry their SYN, or see timeouts)",
      evidence: {
        ListenOverflows: overflows,
        ListenDrops: census.counters.tcpExt['ListenDrops'] ?? null,
        somaxconn,
        listeners: census.byState['LISTEN'] ?? 0,
      },
      fixes: [
        fix(
          1,
          'Accept faster (more acceptor threads/processes, SO_REUSEPORT listeners)',
          'the queue drains',
          'application change',
        ),
        ...(somaxconn !== null
          ? [
              fix(
                2,
                `Pass a larger backlog to listen(); the kernel caps it at net.core.somaxconn (${somaxconn} here)`,
                'absorbs bursts of new connections',
                'memory for queued connections; hides a slow acceptor',
                'net.core.somaxconn',
              ),
            ]
          : []),
      ],
    });
  }

  const reuse = num('tcp_tw_reuse');
  const timestamps = num('tcp_timestamps');
  if (reuse !== null && reuse !== 0 && timestamps === 0) {
    findings.push({
      id: 'tw-reuse-without-timestamps',
      severity: 'warning',
      title: 'tcp_tw_reuse is on but tcp_timestamps is off, so reuse never happens',
      evidence: { tcp_tw_reuse: reuse, tcp_timestamps: timestamps },
      fixes: [
        fix(
          1,
          'Set net.ipv4.tcp_timestamps=1 (both ends must send timestamps)',
          'tcp_tw_reuse starts to work',
          '12 bytes per segment',
          'net.ipv4.tcp_timestamps',
        ),
      ],
    });
  }

  if (num('tcp_rfc1337') === 0 && census.timeWait.count > 0) {
    findings.push({
      id: 'rfc1337',
      severity: 'info',
      title: 'A RST received in TIME-WAIT ends it early (tcp_rfc1337=0: TIME-WAIT assassination, RFC 1337)',
      evidence: {
        tcp_rfc1337: 0,
        timeWait: census.timeWait.count,
        TWKilled: census.counters.tcpExt['TWKilled'] ?? null,
      },
      fixes: [
        fix(
          1,
          'Set net.ipv4.tcp_rfc1337=1 to ignore RSTs in TIME-WAIT',
          'TIME-WAIT keeps its protection against old duplicates',
          'TIME-WAIT sockets no longer end early on RST',
          'net.ipv4.tcp_rfc1337',
        ),
      ],
    });
  }

  if (census.conntrack) findings.push(...conntrackFindings(census.conntrack, opts.natRange));

  const recycle = 'net.ipv4.tcp_tw_recycle';
  findings.push({
    id: 'tw-recycle',
    severity: 'info',
    title: existsSync(sysctlPath(recycle))
      ? 'tcp_tw_recycle exists on this kernel; it breaks clients behind NAT, leave it at 0'
      : 'tcp_tw_recycle, which older advice recommends, does not exist on this kernel',
    evidence: { present: existsSync(sysctlPath(recycle)) },
    fixes: [],
  });

  const result: DoctorResult = { findings, sysctls, missingSysctls, census };
  if (opts.port !== undefined) {
    result.port = inspectPort({
      port: opts.port,
      ...(opts.bindAddress ? { bindAddress: opts.bindAddress } : {}),
      ...(opts.source ? { source: opts.source } : {}),
      ...(opts.tryBind ? { tryBind: true } : {}),
    });
    findings.unshift(portFinding(result.port));
  }
  return result;
}

function fix(rank: number, action: string, benefit: string, cost: string, setting?: string): Fix {
  return { rank, action, benefit, cost, ...(setting ? { setting } : {}) };
}

function pressureFinding(
  p: PressureEntry,
  census: CensusResult,
  sysctls: Record<string, string>,
  has: (k: string) => boolean,
  num: (k: string) => number | null,
): Finding {
  const fixes: Fix[] = [];
  let rank = 1;
  fixes.push(
    fix(
      rank++,
      `Reuse connections to ${p.remote} (HTTP keep-alive, a connection pool)`,
      'removes the churn: no new port per request',
      'application change; pooled connections need health checks',
    ),
  );
  fixes.push(
    fix(
      rank++,
      `Let ${p.remote} close first (client reads EOF, then closes)`,
      'TIME-WAIT lands on the server, which needs no ephemeral ports for it',
      'protocol/server change; the server then holds the TIME-WAIT sockets',
    ),
  );
  if (has('tcp_tw_reuse')) {
    const ts = num('tcp_timestamps');
    fixes.push(
      fix(
        rank++,
        `Set net.ipv4.tcp_tw_reuse=1 (now ${sysctls['tcp_tw_reuse']}; 2 means loopback only): connect() may take over a TIME-WAIT 4-tuple` +
          (has('tcp_tw_reuse_delay')
            ? ` older than tcp_tw_reuse_delay (${sysctls['tcp_tw_reuse_delay']} ms)`
            : ''),
        'ports come back after about a second instead of 60 s',
        `needs TCP timestamps on both ends (tcp_timestamps=${ts ?? 'absent'} here); affects outgoing connections only`,
        'net.ipv4.tcp_tw_reuse',
      ),
    );
  }
  fixes.push(
    fix(
      rank++,
      `Add source addresses and bind each client socket to one with IP_BIND_ADDRESS_NO_PORT set`,
      `each local address adds ${p.rangeSize} ports towards ${p.remote}`,
      'more addresses to configure and route',
      'IP_BIND_ADDRESS_NO_PORT',
    ),
  );
  const range = census.portRange;
  if (has('ip_local_port_range')) {
    fixes.push(
      fix(
        rank++,
        `Widen net.ipv4.ip_local_port_range (now ${range.low}-${range.high}, ${range.usable} usable), e.g. to 1024-65535 minus the ports your services listen on`,
        `up to ${64512 - range.usable} more ports per destination`,
        'must keep clear of server ports (use ip_local_reserved_ports)',
        'net.ipv4.ip_local_port_range',
      ),
    );
  }
  fixes.push(
    fix(
      rank,
      'Close with SO_LINGER {on, 0}: the close sends RST and skips TIME-WAIT',
      'no TIME-WAIT at all on this side',
      'unsent data is discarded and the peer sees ECONNRESET; old duplicates may reach a new connection',
      'SO_LINGER',
    ),
  );
  return {
    id: 'port-pressure',
    severity:
      p.secondsToExhaustion !== null && p.secondsToExhaustion < EXHAUSTION_CRITICAL_S
        ? 'critical'
        : 'warning',
    title:
      p.secondsToExhaustion === null
        ? `${p.inUse} of ${p.rangeSize} ephemeral ports towards ${p.remote} are held`
        : `connect() to ${p.remote} runs out of ports in about ${Math.round(p.secondsToExhaustion)} s at the current rate`,
    evidence: {
      destination: p.remote,
      local: p.local,
      inUse: p.inUse,
      timeWait: p.timeWait,
      rangeSize: p.rangeSize,
      ratio: p.ratio,
      newTimeWaitPerSec: p.ratePerSec,
      secondsToExhaustion: p.secondsToExhaustion,
      portRange: `${range.low}-${range.high}`,
      tcp_tw_reuse: sysctls['tcp_tw_reuse'] ?? null,
      tcp_timestamps: sysctls['tcp_timestamps'] ?? null,
    },
    fixes,
  };
}

function portFinding(r: PortReport): Finding {
  const busy = r.prediction.withoutReuseAddr.verdict === 'fails';
  const tw = r.timeWait.map((h) => h.expiresMs ?? 0);
  return {
    id: 'port',
    severity: busy ? 'warning' : 'info',
    title: busy
      ? `Port ${r.port}: a restart without SO_REUSEADDR would fail (${r.listeners.length} listener(s), ${r.timeWait.length} TIME-WAIT leftover(s), ${r.others.length} other)`
      : `Port ${r.port} is free for a restart`,
    evidence: {
      port: r.port,
      bindAddress: r.bindAddress,
      listeners: r.listeners.length,
      timeWait: r.timeWait.length,
      timeWaitMaxLeftMs: tw.length ? Math.max(...tw) : null,
      others: r.others.length,
      withoutReuseAddr: r.prediction.withoutReuseAddr.verdict,
      withReuseAddr: r.prediction.withReuseAddr.verdict,
      ...(r.trial
        ? {
            trialWithoutReuseAddr: r.trial.withoutReuseAddr.ok ? 'bound' : r.trial.withoutReuseAddr.errno,
            trialWithReuseAddr: r.trial.withReuseAddr.ok ? 'bound' : r.trial.withReuseAddr.errno,
          }
        : {}),
    },
    fixes:
      r.listeners.length > 0
        ? [
            fix(
              1,
              'Stop the process that listens on the port first (SO_REUSEADDR never passes a listener)',
              'the port frees at once',
              'downtime; for hand-over use SO_REUSEPORT with the same user',
            ),
          ]
        : busy
          ? [
              fix(
                1,
                'Set SO_REUSEADDR on the listening socket before bind() (in the old server and the new one)',
                'binds over TIME-WAIT leftovers at once',
                'none for TCP servers; it does not allow two listeners',
              ),
              fix(
                2,
                `Or wait until the TIME-WAIT leftovers expire (at most ${tw.length ? Math.ceil(Math.max(...tw) / 1000) : 0} s here)`,
                'no code change',
                'downtime',
              ),
              fix(
                3,
                'Let clients close first so the server side holds no TIME-WAIT',
                'no leftovers on the server port',
                'protocol change',
              ),
            ]
          : [],
  };
}
