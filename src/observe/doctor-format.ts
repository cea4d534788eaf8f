/**
 * Doctor's findings as text: each finding, its evidence, its fixes in rank order.
 */
import { renderTable } from '../report/table.js';
import type { DoctorResult, Fix } from './doctor.js';
import type { PortHolder } from './doctor-port.js';

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
