/**
 * Doctor's findings as text: each finding, its evidence, its fixes in rank order.
 */
import { renderTable } from '../common/table.js';
import type { DoctorResult, Finding, Fix } from '../observe/doctor.js';
import type { HostDoctor, NetnsDoctor } from '../observe/doctor-all.js';
import { ownerLabel } from '../observe/owner-label.js';
import type { PortHolder } from '../observe/doctor-port.js';

export function formatDoctor(d: DoctorResult): string {
  const out: string[] = [];
  const c = d.census;
  out.push(
    `TCP sockets: ${c.total} (${Object.entries(c.byState)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}); source ${c.source}`,
    `Sysctls: ${Object.entries(d.sysctls)
      .map(([k, v]) => `${k.replace(/^net\.core\./, '')}=${v}`)
      .join(' ')}`,
    '',
  );
  if (d.port) {
    const p = d.port;
    const holders: PortHolder[] = [...p.listeners, ...p.timeWait, ...p.others];
    out.push(`Port ${p.port}:`);
    if (holders.length === 0) out.push('  no socket holds it');
    else
      out.push(
        renderTable<PortHolder>(
          [
            { header: 'STATE', value: (h) => h.state },
            { header: 'LOCAL', value: (h) => h.local },
            { header: 'REMOTE', value: (h) => h.remote },
            {
              header: 'TIME LEFT',
              value: (h) => (h.expiresMs === undefined ? '' : `${(h.expiresMs / 1000).toFixed(1)} s`),
              align: 'right',
            },
          ],
          holders.slice(0, 50),
        ) + (holders.length > 50 ? `  ... and ${holders.length - 50} more\n` : ''),
      );
    out.push(
      `  restart binding ${p.bindAddress}:${p.port} without SO_REUSEADDR: ${p.prediction.withoutReuseAddr.verdict} (${p.prediction.withoutReuseAddr.reason})`,
      `  restart binding ${p.bindAddress}:${p.port} with SO_REUSEADDR:    ${p.prediction.withReuseAddr.verdict} (${p.prediction.withReuseAddr.reason})`,
    );
    if (p.trial) {
      const t = (r: typeof p.trial.withReuseAddr): string => (r.ok ? 'bound' : `failed, ${r.errno}`);
      out.push(
        `  tried just now: without SO_REUSEADDR ${t(p.trial.withoutReuseAddr)}; with SO_REUSEADDR ${t(p.trial.withReuseAddr)}`,
      );
    }
    out.push('');
  }
  d.findings.forEach((f, i) => {
    out.push(`${i + 1}. [${f.severity}] ${f.title}`);
    const ev = Object.entries(f.evidence)
      .map(([k, v]) => `${k}=${v === null ? '-' : String(v)}`)
      .join(' ');
    if (ev) out.push(`   evidence: ${ev}`);
    if (f.fixes.length)
      out.push(
        renderTable<Fix>(
          [
            { header: '#', value: (x) => String(x.rank), align: 'right' },
            { header: 'FIX', value: (x) => x.action, maxWidth: 48 },
            { header: 'HELPS', value: (x) => x.benefit, maxWidth: 28 },
            { header: 'COSTS', value: (x) => x.cost, maxWidth: 30 },
          ],
          f.fixes,
        )
          .split('\n')
          .map((l) => (l ? `   ${l}` : l))
          .join('\n'),
      );
  });
  if (d.missingSysctls.length) out.push(`Not on this kernel: ${d.missingSysctls.join(', ')}`);
  return `${out.join('\n')}\n`;
}

/**
 * One line for a namespace's first finding, naming who and the numbers: "docker web-1: 190 of 200
 * ports to 10.0.0.5:443 held, out in 3.3 s at 15/s; first fix: Reuse connections ...".
 */
export function findingSummary(d: NetnsDoctor, f: Finding): string {
  const e = f.evidence;
  const what =
    f.id === 'port-pressure'
      ? `${e['inUse']} of ${e['rangeSize']} ports to ${e['destination']} held` +
        (e['secondsToExhaustion'] === null
          ? ', not running out at this rate'
          : `, out in ${e['secondsToExhaustion']} s at ${e['newTimeWaitPerSec']}/s`)
      : f.title;
  const first = f.fixes[0];
  return `${ownerLabel(d)} (netns ${d.netns.inode}): ${what}${first ? `; first fix: ${first.action}` : ''}`;
}

/** Whether a namespace has something to say (a port nobody holds is nothing to report). */
function worthShowing(d: NetnsDoctor): boolean {
  return (
    d.findings.some((f) => f.severity !== 'info' || f.id !== 'port') ||
    (d.port?.listeners.length ?? 0) + (d.port?.timeWait.length ?? 0) + (d.port?.others.length ?? 0) > 0
  );
}

export function formatNetnsDoctor(d: NetnsDoctor): string {
  return `== ${ownerLabel(d)} (network namespace ${d.netns.inode}${d.netns.self ? ", twlab's own" : ''}) ==\n${formatDoctor(d)}`;
}

/** Worst namespaces first: a one-line summary of each, then each one's findings in full. */
export function formatHostDoctor(h: HostDoctor): string {
  const shown = h.namespaces.filter(worthShowing);
  const out: string[] = [
    `Network namespaces: ${h.host.seen} found, ${h.host.read} read, ${shown.length} with something to report` +
      (h.host.skipped.length ? `, ${h.host.skipped.length} skipped` : ''),
  ];
  if (shown.length === 0) return `${out[0]}\n`;
  out.push(
    '',
    ...shown.map((d, i) => `${i + 1}. ${d.findings[0] ? findingSummary(d, d.findings[0]) : ownerLabel(d)}`),
    '',
  );
  for (const d of shown) out.push(formatNetnsDoctor(d));
  return `${out.join('\n')}\n`;
}
