/**
 * Doctor's findings about a namespace's conntrack table (it NATs, or a firewall tracks it): the
 * table against nf_conntrack_max, the source-NAT port pool per destination, and SYNs conntrack
 * dropped. From the census's conntrack section; only reads.
 */
import type { PortRange } from '../common/parse.js';
import type { ConntrackSummary, NatPorts } from './conntrack-types.js';
import type { Finding, Fix } from './doctor.js';

/** A source NAT whose rule gives no port range picks from 1024-65535 (nf_nat's default pool). */
const DEFAULT_NAT_POOL: PortRange = { low: 1024, high: 65535 };

const fix = (rank: number, action: string, benefit: string, cost: string, setting?: string): Fix => ({
  rank,
  action,
  benefit,
  cost,
  ...(setting ? { setting } : {}),
});

const severityOf = (ratio: number): Finding['severity'] =>
  ratio >= 0.9 ? 'critical' : ratio >= 0.5 ? 'warning' : 'info';

/** `natRange`: the NAT rule's port range when the caller knows it (the table does not record it). */
export function conntrackFindings(ct: ConntrackSummary, natRange?: PortRange): Finding[] {
  const findings: Finding[] = [];
  const count = ct.count ?? ct.entries;
  if (ct.max && count / ct.max >= 0.25) {
    const [state, held] = Object.entries(ct.tcpByState).sort((a, b) => b[1] - a[1])[0] ?? ['', 0];
    findings.push({
      id: 'conntrack-table-fill',
      severity: ct.stats.earlyDrop > 0 ? 'critical' : severityOf(count / ct.max),
      title: 'The conntrack table is filling up: when full, new connections are dropped (their SYNs vanish)',
      evidence: {
        entries: count,
        nf_conntrack_max: ct.max,
        fill: Math.round((count / ct.max) * 1000) / 1000,
        earlyDrop: ct.stats.earlyDrop,
        drop: ct.stats.drop,
        ...(state ? { mostHeldState: `${state} ${held}` } : {}),
      },
      fixes: [
        ...(state === 'TIME_WAIT'
          ? [
              fix(
                1,
                "Shorten conntrack's TIME_WAIT timeout in this namespace (120 s by default)",
                'closed connections leave the table sooner',
                'a late segment of a closed connection no longer matches its entry',
                'net.netfilter.nf_conntrack_tcp_timeout_time_wait',
              ),
            ]
          : []),
        fix(
          2,
          'Reuse connections (keep-alive, pools) so fewer are opened and tracked',
          'fewer entries at the source',
          'application change',
        ),
        fix(
          3,
          'Raise nf_conntrack_max in the host (the initial namespace: one limit for the whole kernel)',
          'room for more entries',
          'kernel memory (~300 bytes per entry); not settable from inside a container',
          'net.netfilter.nf_conntrack_max',
        ),
      ],
    });
  }

  for (const n of ct.natPorts.slice(0, 5)) {
    const pool = n.range ?? natRange ?? DEFAULT_NAT_POOL;
    const size = pool.high - pool.low + 1;
    if (n.portsUsed / size < 0.1) continue;
    findings.push(natPoolFinding(n, pool, size, n.range !== null || natRange !== undefined));
  }

  if (ct.stats.insertFailed > 0 || ct.stats.drop > 0) {
    findings.push({
      id: 'conntrack-insert-failed',
      severity: 'warning',
      title:
        "Conntrack failed to insert new entries and dropped packets: a connection's first SYN vanished (the client retries after 1 s)",
      evidence: {
        insertFailed: ct.stats.insertFailed,
        drop: ct.stats.drop,
        clashResolve: ct.stats.clashResolve,
      },
      fixes: [
        fix(
          1,
          'Give the source NAT a random port per connection (nftables fully-random, iptables --random-fully)',
          'fewer clashes between connections that pick a NAT port at the same time',
          'source ports are no longer preserved',
        ),
        fix(
          2,
          'Add source-NAT addresses',
          'each address is its own pool of ports per destination',
          'more addresses',
        ),
      ],
    });
  }
  return findings;
}

/**
 * Ports held by open connections are what runs out (severity); ports of closed ones (TIME_WAIT,
 * CLOSE) this kernel hands out again, yet the server's own TIME_WAIT for such a 4-tuple can make
 * the next SYN stall: with most of the pool closed, that is worth saying too.
 */
function natPoolFinding(n: NatPorts, pool: PortRange, size: number, known: boolean): Finding {
  const open = n.portsUsed - n.closed;
  const ratio = n.portsUsed / size;
  return {
    id: 'nat-port-pressure',
    severity: open / size >= 0.5 ? severityOf(open / size) : ratio >= 0.5 ? 'warning' : 'info',
    title:
      `Source-NAT ports towards ${n.destination} (${n.protocol}): ${n.portsUsed} of ${size} held, ${n.closed} by closed connections; ` +
      (open / size >= 0.5
        ? 'open connections are using up the pool: new ones will fail'
        : "reused ports can meet the server's TIME_WAIT and stall 1 s"),
    evidence: {
      natAddress: n.natAddress,
      destination: n.destination,
      portsHeld: n.portsUsed,
      heldByClosed: n.closed,
      pool: `${pool.low}-${pool.high}`,
      poolSize: size,
      poolKnown: known,
      ratio: Math.round(ratio * 1000) / 1000,
    },
    fixes: [
      fix(
        1,
        'Reuse connections (keep-alive, pools) towards this destination',
        'each reused connection holds one NAT port instead of one per request',
        'application change',
      ),
      fix(
        2,
        'Add source-NAT addresses (or spread over more destination addresses/ports)',
        'each (NAT address, destination) pair has its own pool',
        'more addresses to own and allow',
      ),
      fix(
        3,
        "Let the client close first, so the server does not hold TIME_WAIT for the NAT's reused ports",
        'measured on 6.18: server-first churn through a 100-port NAT stalls 1 s once ports come round',
        'the client holds TIME_WAIT instead (its own ports)',
      ),
    ],
  };
}
