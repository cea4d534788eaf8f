/**
 * `twlab top` as text: one table per interval, rows grouped under their namespace's owner
 * (container, pod, service) where discovery knows it, most at risk first within and across groups.
 */
import { renderTable } from '../common/table.js';
import { ownerLabel } from '../observe/owner-label.js';
import type { TopDocument, TopProcess } from '../observe/top-view.js';

function failed(p: TopProcess): string {
  const parts = Object.entries(p.failedConnects)
    .sort((a, b) => b[1] - a[1])
    .map(([errno, n]) => `${errno} ${n}`);
  return parts.length ? parts.join(', ') : '-';
}

function destination(p: TopProcess): string {
  const d = p.destinations[0];
  if (!d) return '-';
  const held = d.portsHeld === null ? '' : ` ${d.portsHeld}/${d.rangeSize} held`;
  const left = d.secondsToExhaustion === null ? '' : `, out in ${d.secondsToExhaustion} s`;
  return `${d.remote}${held}${left}`;
}

function groupLabel(p: TopProcess, selfNetns: number | undefined): string {
  const ns = p.netns === null ? 'netns ?' : `netns ${p.netns}${p.netns === selfNetns ? '*' : ''}`;
  return p.owner ? `${ownerLabel({ owner: p.owner, processes: [], processCount: 0 })} (${ns})` : ns;
}

export function formatTop(doc: TopDocument, rows: number, selfNetns: number | undefined): string {
  const when = new Date().toISOString().slice(11, 19);
  const lost = doc.lost.events > 0 ? `LOST ${doc.lost.events} events (${doc.lost.reason})` : 'no events lost';
  const out = [
    `twlab top ${when}  ${(doc.durationMs / 1000).toFixed(0)} s  every ${doc.intervalMs / 1000} s  ${lost}`,
  ];
  const shown = doc.processes.slice(0, rows);
  const groups = new Map<string, TopProcess[]>();
  for (const p of shown) {
    const label = groupLabel(p, selfNetns);
    groups.set(label, [...(groups.get(label) ?? []), p]);
  }
  for (const [label, procs] of groups) {
    out.push('', label);
    out.push(
      renderTable<TopProcess>(
        [
          { header: '  PID', value: (p) => `  ${p.pid === 0 ? '?' : p.pid}` },
          { header: 'COMMAND', value: (p) => p.comm.slice(0, 16) },
          { header: 'CONN/S', value: (p) => String(p.rates.connects), align: 'right' },
          { header: 'FAIL/S', value: (p) => String(p.rates.failedConnects), align: 'right' },
          { header: 'ACTCLOSE/S', value: (p) => String(p.rates.activeCloses), align: 'right' },
          { header: 'PASCLOSE/S', value: (p) => String(p.rates.passiveCloses), align: 'right' },
          { header: 'ACCEPT/S', value: (p) => String(p.rates.accepts), align: 'right' },
          { header: 'TW', value: (p) => String(p.timeWaitAlive), align: 'right' },
          { header: 'FAILED (total)', value: failed, maxWidth: 32 },
          { header: 'TOP DESTINATION', value: destination, maxWidth: 48 },
        ],
        procs,
      ).trimEnd(),
    );
  }
  if (doc.processes.length > shown.length)
    out.push('', `... ${doc.processes.length - shown.length} more processes`);
  if (shown.length === 0) out.push('', 'no TCP connects, closes or accepts seen yet');
  return `${out.join('\n')}\n`;
}
