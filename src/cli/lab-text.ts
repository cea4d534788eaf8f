/**
 * The lab's report as terminal text: one block per claim (verdict, source, evidence, conditions,
 * explanation), a verdict summary, then the fixes table.
 */
import { renderTable, wrapText } from '../common/table.js';
import type { ClaimResult, FixResult, LabReport } from '../report/lab-report.js';
import { formatValue } from '../report/evidence.js';

const WIDTH = 100;

function field(label: string, text: string): string[] {
  const indent = ' '.repeat(14);
  const lines = wrapText(text, WIDTH - indent.length);
  return lines.map((l, i) => (i === 0 ? `  ${label.padEnd(12)}${l}` : `${indent}${l}`));
}

export function renderClaim(r: ClaimResult): string {
  const out = [`${r.id}  ${r.verdict.toUpperCase()}  (${(r.durationMs / 1000).toFixed(1)} s)`];
  out.push(...field('claim', r.claim));
  out.push(...field('source', `${r.source.seed}, ${r.source.where}: "${r.source.quote}"`));
  // One line per evidence field; a list of measurements gets one line per item.
  const lines: string[] = [];
  for (const [k, v] of Object.entries(r.evidence)) {
    if (Array.isArray(v) && v.some((x) => typeof x === 'object' && x !== null)) {
      v.forEach((x, i) => lines.push(`${k}[${i}] = ${formatValue(x, true)}`));
    } else
      lines.push(
        `${k} = ${typeof v === 'object' && v !== null && !Array.isArray(v) ? formatValue(v, true) : formatValue(v)}`,
      );
  }
  lines.forEach((l, i) => out.push(...field(i === 0 ? 'evidence' : '', l)));
  r.conditions.forEach((c, i) => out.push(...field(i === 0 ? 'conditions' : '', `- ${c}`)));
  out.push(...field('why', r.explanation));
  return out.join('\n');
}

export function renderFixes(fixes: readonly FixResult[]): string {
  return renderTable<FixResult>(
    [
      { header: 'fix', value: (f) => f.name, maxWidth: 30 },
      {
        header: 'connections before failure',
        value: (f) =>
          f.error
            ? 'not measured'
            : f.connectionsBeforeFailure === null
              ? `none failed in ${f.attempted}`
              : `${f.connectionsBeforeFailure} (${f.firstError ?? '?'})`,
        maxWidth: 24,
      },
      { header: 'conn/s', value: (f) => (f.error ? '-' : f.connectionsPerSecond.toFixed(0)), align: 'right' },
      {
        header: 'measured costs',
        value: (f) =>
          f.error
            ? f.note
            : Object.entries(f.costs)
                .map(([k, v]) => `${k}=${String(v)}`)
                .join(', '),
        maxWidth: 44,
      },
    ],
    fixes,
  );
}

/** The verdict counts, e.g. "confirmed 3, refuted 5, depends 2". */
export function verdictCounts(claims: readonly ClaimResult[]): string {
  const counts = new Map<string, number>();
  for (const c of claims) counts.set(c.verdict, (counts.get(c.verdict) ?? 0) + 1);
  return [...counts.entries()].map(([v, n]) => `${v} ${n}`).join(', ');
}

export function renderLabReport(report: LabReport): string {
  const parts: string[] = [
    `twlab lab: ${report.claims.length} claims and ${report.fixes.length} fixes tested on Linux ${report.kernel}\n`,
  ];
  for (const c of report.claims) parts.push(`${renderClaim(c)}\n`);
  if (report.claims.length > 0)
    parts.push(
      renderTable<ClaimResult>(
        [
          { header: 'id', value: (c) => c.id },
          { header: 'verdict', value: (c) => c.verdict },
          { header: 'claim', value: (c) => c.claim, maxWidth: 70 },
        ],
        report.claims,
      ),
    );
  if (report.fixes.length > 0) {
    parts.push(
      "Fixes for the seed's failing client (client closes first, connect/send/close in a loop; each remedy measured the same way):\n",
    );
    parts.push(renderFixes(report.fixes));
    for (const f of report.fixes)
      parts.push(...wrapText(`${f.name}: ${f.note}`, WIDTH).map((l, i) => (i ? `    ${l}` : `  - ${l}`)));
    parts.push('');
  }
  const verdicts = report.claims.length > 0 ? `Verdicts: ${verdictCounts(report.claims)}. ` : '';
  parts.push(`${verdicts}Total ${(report.durationMs / 1000).toFixed(1)} s.`);
  return `${parts.join('\n')}\n`;
}
