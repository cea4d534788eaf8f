/**
 * The census as terminal tables (the --json document is the CensusResult itself).
 */
import { renderTable } from '../common/table.js';
import type { CensusResult, PressureEntry } from '../observe/census.js';
import type { ConntrackSummary, NatPorts } from '../observe/conntrack-types.js';

function ms(v: number | null): string {
  return v === null ? '-' : `${(v / 1000).toFixed(1)} s`;
}

export function formatCensus(c: CensusResult): string {
  const out: string[] = [];
  const filter = [
    c.filter.states ? `state ${c.filter.states.join(',')}` : '',
    c.filter.port !== undefined ? `port ${c.filter.port}` : '',
  ].filter(Boolean);
  out.push(
    `TCP sockets: ${c.total} (source: ${c.source}${filter.length ? `; ${filter.join(', ')}` : ''})`,
    '',
  );
  const states = Object.entries(c.byState).sort((a, b) => b[1] - a[1]);
  out.push(
    renderTable(
      [
        { header: 'STATE', value: (r: [string, number]) => r[0] },
        { header: 'COUNT', value: (r: [string, number]) => String(r[1]), align: 'right' },
      ],
      states,
    ),
  );
  const tw = c.timeWait;
  out.push(
    `TIME-WAIT: ${tw.count}; time left min ${ms(tw.remainingMs.min)}, median ${ms(tw.remainingMs.p50)}, max ${ms(tw.remainingMs.max)}; ` +
      `${tw.ratePerSec}/s new over the last ${c.rate.windowSec} s`,
  );
  const reserved = c.portRange.usable !== c.portRange.high - c.portRange.low + 1;
  out.push(
    `Ephemeral ports: ${c.portRange.low}-${c.portRange.high}` +
      (reserved
        ? ` (${c.portRange.usable} usable after ip_local_reserved_ports)`
        : ` (${c.portRange.usable})`),
    '',
  );
  if (c.pressure.length === 0) {
    out.push('Port pressure: no ephemeral ports held by outgoing connections.');
  } else {
    out.push(`Port pressure (top ${c.pressure.length} of ${c.pressureDestinations} destinations):`);
    out.push(
      renderTable<PressureEntry>(
        [
          { header: 'DESTINATION', value: (p) => p.remote },
          { header: 'LOCAL', value: (p) => p.local },
          { header: 'IN USE', value: (p) => String(p.inUse), align: 'right' },
          { header: 'TIME-WAIT', value: (p) => String(p.timeWait), align: 'right' },
          { header: 'OF', value: (p) => String(p.rangeSize), align: 'right' },
          { header: 'USED', value: (p) => `${(p.ratio * 100).toFixed(1)}%`, align: 'right' },
          { header: 'NEW/S', value: (p) => String(p.ratePerSec), align: 'right' },
          {
            header: 'EXHAUSTED IN',
            value: (p) =>
              p.secondsToExhaustion === null ? 'never at this rate' : `${p.secondsToExhaustion} s`,
            align: 'right',
          },
        ],
        c.pressure,
      ),
    );
  }
  const s = c.counters.sockstat;
  const ext = Object.entries(c.counters.tcpExt)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  out.push(
    `Kernel counters: sockstat inuse ${s.inuse} orphan ${s.orphan} tw ${s.tw} alloc ${s.alloc} (TCP6 inuse ${s.inuse6})`,
    `TcpExt: ${ext}`,
  );
  if (c.conntrack) out.push('', ...formatConntrack(c.conntrack));
  return `${out.join('\n')}\n`;
}

/** The conntrack section: entries, NAT ports per destination, the counters that show trouble. */
export function formatConntrack(ct: ConntrackSummary): string[] {
  const count = (r: Record<string, number>): string =>
    Object.entries(r)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
  const out = [
    `Conntrack: ${ct.entries} entries (${count(ct.byProtocol)})` +
      (ct.max ? `; table ${ct.count ?? ct.entries} of nf_conntrack_max ${ct.max} (kernel-wide)` : '') +
      (ct.source === 'procfs'
        ? `; read from /proc${ct.fallbackReason ? ` (${ct.fallbackReason})` : ''}`
        : ''),
  ];
  if (Object.keys(ct.tcpByState).length > 0) out.push(`  TCP by state: ${count(ct.tcpByState)}`);
  if (ct.natPorts.length > 0) {
    out.push(
      renderTable<NatPorts>(
        [
          { header: 'PROTO', value: (n) => n.protocol },
          { header: 'NAT ADDRESS', value: (n) => n.natAddress },
          { header: 'DESTINATION', value: (n) => n.destination },
          { header: 'NAT PORTS HELD', value: (n) => String(n.portsUsed), align: 'right' },
          { header: 'LOWEST-HIGHEST', value: (n) => `${n.lowestPort}-${n.highestPort}` },
        ],
        ct.natPorts.slice(0, 20),
      ),
    );
  }
  const s = ct.stats;
  out.push(
    `  counters: found ${s.found}, insert_failed ${s.insertFailed}, drop ${s.drop}, early_drop ${s.earlyDrop}, ` +
      `invalid ${s.invalid}, clash_resolve ${s.clashResolve}, chaintoolong ${s.chainTooLong}`,
  );
  return out;
}
