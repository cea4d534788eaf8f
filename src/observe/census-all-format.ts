/**
 * `census --all-namespaces` as a terminal table: one row per namespace, most at risk first; and
 * the heading that names one namespace (`--netns`) above today's census tables.
 */
import { renderTable } from '../report/table.js';
import { formatCensus } from './census-format.js';
import type { HostCensus, NetnsCensus } from './census-all.js';
import type { NetnsInfo } from './namespaces.js';

/** "docker web-1 (3f2a1b9c0d1e)", "pod shop/cart-7d9 (besteffort)", "service nginx", "pid 812 nginx +3". */
export function ownerLabel(
  ns: Pick<NetnsInfo, 'owner' | 'processes' | 'processCount'> & { netns?: { host: boolean } },
): string {
  const o = ns.owner;
  if (o) {
    const name = o.name ?? o.id.slice(0, 12);
    if (o.kind === 'pod' && o.pod) {
      const pod = o.pod.name ? `${o.pod.namespace ? `${o.pod.namespace}/` : ''}${o.pod.name}` : o.pod.uid;
      return `pod ${pod} (${o.pod.qos})`;
    }
    const where = o.pod ? ` in pod ${o.pod.name ?? o.pod.uid}` : '';
    const id = o.name ? ` (${o.id.slice(0, 12)})` : '';
    if (o.kind === 'service') return `service ${name}`;
    return `${o.runtime ?? o.kind} ${name}${o.name ? id : ''}${where}`;
  }
  if (ns.netns?.host) return 'host (initial namespace)';
  const first = ns.processes[0];
  if (!first) return '(no process)';
  const more = ns.processCount > 1 ? ` +${ns.processCount - 1}` : '';
  return `pid ${first.pid} ${first.comm}${more}`;
}

function exhaustedIn(c: NetnsCensus): string {
  const s = c.worst?.secondsToExhaustion;
  if (s === undefined) return '-';
  return s === null ? 'never at this rate' : `${s} s`;
}

export function formatHostCensus(h: HostCensus): string {
  const rows = h.namespaces;
  const out: string[] = [
    `Network namespaces: ${h.host.seen} found, ${h.host.read} read` +
      (h.host.skipped.length ? `, ${h.host.skipped.length} skipped` : '') +
      `; ${h.host.totals.total} TCP sockets, ${h.host.totals.timeWait} in TIME-WAIT`,
    '',
  ];
  out.push(
    renderTable<NetnsCensus>(
      [
        { header: 'NETNS', value: (c) => `${c.netns.inode}${c.netns.self ? '*' : ''}` },
        { header: 'OWNER', value: (c) => ownerLabel(c) },
        { header: 'SOCKETS', value: (c) => String(c.total), align: 'right' },
        { header: 'ESTAB', value: (c) => String(c.byState['ESTAB'] ?? 0), align: 'right' },
        { header: 'TIME-WAIT', value: (c) => String(c.timeWait.count), align: 'right' },
        {
          header: 'PORTS',
          value: (c) => `${c.portRange.low}-${c.portRange.high}${c.portRangeAssumed ? '?' : ''}`,
        },
        { header: 'WORST DESTINATION', value: (c) => c.worst?.remote ?? '-' },
        {
          header: 'HELD',
          value: (c) =>
            c.worst ? `${c.worst.inUse}/${c.worst.rangeSize} ${(c.worst.ratio * 100).toFixed(1)}%` : '-',
          align: 'right',
        },
        { header: 'NEW/S', value: (c) => (c.worst ? String(c.worst.ratePerSec) : '-'), align: 'right' },
        { header: 'EXHAUSTED IN', value: exhaustedIn, align: 'right' },
      ],
      rows,
    ),
  );
  const notes: string[] = [];
  if (rows.some((c) => c.netns.self)) notes.push("* twlab's own namespace");
  if (rows.some((c) => c.portRangeAssumed))
    notes.push(
      "? read through /proc/PID/net (no setns): the namespace's sysctls are unknown, twlab's port range assumed",
    );
  for (const s of h.host.skipped) notes.push(`skipped ${s.inode}: ${s.reason}: ${s.message}`);
  if (notes.length) out.push('', ...notes);
  return `${out.join('\n')}\n`;
}

/** One namespace: who it is and its own sysctls, then today's census tables. */
export function formatNetnsCensus(c: NetnsCensus): string {
  const sysctls = c.sysctls
    ? Object.entries(c.sysctls)
        .map(([k, v]) => `${k.replace(/^net\.ipv4\./, '')}=${v}`)
        .join(', ')
    : 'unreadable (read through /proc/PID/net, no setns)';
  return (
    `Network namespace ${c.netns.inode}${c.netns.self ? " (twlab's own)" : ''}: ${ownerLabel(c)}\n` +
    `Sysctls: ${sysctls}\n\n` +
    formatCensus(c)
  );
}
