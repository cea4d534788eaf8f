/**
 * `census --all-namespaces` as a terminal table: one row per namespace, most at risk first; and
 * the heading that names one namespace (`--netns`) above today's census tables.
 */
import { renderTable } from '../common/table.js';
import { formatCensus } from './census-format.js';
import type { HostCensus, NetnsCensus } from '../observe/census-all.js';
import { ownerLabel } from '../observe/owner-label.js';

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
