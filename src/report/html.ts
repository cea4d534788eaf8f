/**
 * `twlab lab --html FILE`: the lab's report as ONE self-contained HTML file (every script, style
 * and font inline, nothing fetched), readable offline from file://. uPlot (npm `uplot`) is read
 * from node_modules at render time and inlined; the data travels as one JSON block.
 *
 * Contents: the verdict table (filters by seed and verdict; a row opens its evidence and
 * explanation), a chart per claim that recorded series (ClaimResult.series), the fixes' bars
 * (connections before failure), and a sequence diagram per close variant from the tracer.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { ClaimResult, CloseSequence, LabReport } from './lab-report.js';
import { formatValue } from './evidence.js';
import { escapeHtml, jsonForScript } from './html-escape.js';
import { sequenceSvg } from './html-sequence.js';
import { CLIENT_JS } from './html-client.js';
import { REPORT_CSS } from './html-style.js';

const VERDICTS = ['confirmed', 'refuted', 'depends', 'not-applicable', 'not-tested'] as const;

/** uPlot's script and stylesheet, from the installed package (also the dashboard's). */
export function uplotAssets(): { js: string; css: string } {
  const require = createRequire(import.meta.url);
  const dir = join(dirname(require.resolve('uplot/package.json')), 'dist');
  return {
    js: readFileSync(join(dir, 'uPlot.iife.min.js'), 'utf8'),
    css: readFileSync(join(dir, 'uPlot.min.css'), 'utf8'),
  };
}

/** Inline code must not close its own <script>/<style> element early. */
export function inlineSafe(code: string, tag: 'script' | 'style'): string {
  return code.replace(new RegExp(`</${tag}`, 'gi'), `<\\/${tag}`);
}

function evidenceRows(evidence: Record<string, unknown>): string {
  return Object.entries(evidence)
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(formatValue(v))}</td></tr>`)
    .join('');
}

/** Addresses in an escaped source line (the NAT family names its pages) as links. */
function linkify(escaped: string): string {
  return escaped.replace(
    /https:\/\/[^\s"<>]+/g,
    (url) => `<a href="${url}" rel="noreferrer noopener">${url}</a>`,
  );
}

function claimRows(c: ClaimResult): string {
  const chart =
    c.series.length > 0
      ? `<p><a href="#chart-${escapeHtml(c.id)}">its measured series: chart below</a></p>`
      : '';
  const conditions = c.conditions.length
    ? `<ul class="conditions">${c.conditions.map((x) => `<li>${escapeHtml(x)}</li>`).join('')}</ul>`
    : '';
  return (
    `<tr class="claim" data-id="${escapeHtml(c.id)}" data-seed="${escapeHtml(c.source.seed)}" data-verdict="${c.verdict}">` +
    `<td class="id">${escapeHtml(c.id)}</td><td><span class="verdict v-${c.verdict}">${c.verdict}</span></td>` +
    `<td>${escapeHtml(c.claim)}</td><td class="seed">${escapeHtml(c.source.seed)}</td>` +
    `<td class="num">${(c.durationMs / 1000).toFixed(1)} s</td></tr>` +
    `<tr class="detail" id="d-${escapeHtml(c.id)}" hidden><td colspan="5">` +
    `<p class="explanation">${escapeHtml(c.explanation)}</p>${conditions}` +
    `<p class="source">${linkify(escapeHtml(c.source.where))}: <q>${escapeHtml(c.source.quote)}</q></p>` +
    (c.error ? `<p class="error">experiment failed: ${escapeHtml(c.error)}</p>` : '') +
    `<table class="evidence">${evidenceRows(c.evidence)}</table>${chart}</td></tr>`
  );
}

export interface HtmlReportInput {
  report: LabReport;
  /** Close variants recorded with the tracer during this run (lab/close-sequences.ts). */
  sequences?: CloseSequence[];
}

export function renderLabHtml({ report, sequences = [] }: HtmlReportInput): string {
  const uplot = uplotAssets();
  const seeds = [...new Set(report.claims.map((c) => c.source.seed))].sort();
  const counts = VERDICTS.map(
    (v) => [v, report.claims.filter((c) => c.verdict === v).length] as const,
  ).filter(([, n]) => n > 0);
  const charts = report.claims
    .filter((c) => c.series.length > 0)
    .map((c) => ({ el: `chart-${c.id}`, title: `${c.id}: measured during the run`, series: c.series }));
  const data = {
    kernel: report.kernel,
    claims: report.claims.map((c) => ({ id: c.id, verdict: c.verdict })),
    charts,
    fixes: report.fixes.map((f) => ({
      id: f.id,
      name: f.name,
      connectionsBeforeFailure: f.connectionsBeforeFailure,
      attempted: f.attempted,
      error: f.error ?? null,
    })),
  };
  const chartsSection = charts.length
    ? `<section><h2>Measured series</h2>${charts
        .map((c) => `<div class="chart" id="${escapeHtml(c.el)}"></div>`)
        .join('')}</section>`
    : '';
  const fixesSection = report.fixes.length
    ? `<section><h2>Fixes</h2><div class="chart" id="chart-fixes"></div><table class="fixes"><thead><tr><th>fix</th><th>name</th><th class="num">before failure</th><th class="num">conn/s</th><th>first error</th><th>note</th></tr></thead><tbody>${report.fixes
        .map(
          (f) =>
            `<tr><td class="id">${escapeHtml(f.id)}</td><td>${escapeHtml(f.name)}</td><td class="num">${
              f.connectionsBeforeFailure ?? `none in ${f.attempted}`
            }</td><td class="num">${Math.round(f.connectionsPerSecond)}</td><td>${escapeHtml(f.firstError ?? '-')}</td><td>${escapeHtml(f.error ?? f.note)}</td></tr>`,
        )
        .join('')}</tbody></table></section>`
    : '';
  const seqSection = sequences.length
    ? `<section><h2>How a connection ends: traced on this kernel</h2><p class="hint">State changes of both sides recorded with tracefs (<code>sock:inet_sock_set_state</code>) during this run; ◆ marks a TIME-WAIT/FIN-WAIT-2 minisocket phase seen through sock_diag.</p><div class="seqs">${sequences
        .map(
          (s) =>
            `<figure class="seq-fig" data-variant="${s.variant}"><figcaption><b>${escapeHtml(s.variant)}</b>: ${escapeHtml(s.action)}</figcaption>${
              s.error ? `<p class="error">${escapeHtml(s.error)}</p>` : sequenceSvg(s)
            }</figure>`,
        )
        .join('')}</div></section>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>twlab lab report: ${escapeHtml(report.kernel)}</title>
<style>${inlineSafe(uplot.css, 'style')}</style>
<style>${REPORT_CSS}</style>
</head><body>
<header><h1>twlab lab report</h1><p>Linux ${escapeHtml(report.kernel)} · started ${escapeHtml(report.startedAt)} · ${(report.durationMs / 1000).toFixed(1)} s · ${counts
    .map(([v, n]) => `<span class="verdict v-${v}">${n} ${v}</span>`)
    .join(' ')}</p></header>
<main>
<section><h2>Claims</h2>
<div class="filters"><label>seed <select id="f-seed"><option value="">all</option>${seeds
    .map((s) => `<option>${escapeHtml(s)}</option>`)
    .join('')}</select></label>
<label>verdict <select id="f-verdict"><option value="">all</option>${VERDICTS.map((v) => `<option>${v}</option>`).join('')}</select></label>
<span id="f-count"></span><span class="hint">click a row for its evidence</span></div>
<table class="claims"><thead><tr><th>id</th><th>verdict</th><th>claim</th><th>seed</th><th class="num">time</th></tr></thead>
<tbody>${report.claims.map(claimRows).join('')}</tbody></table></section>
${chartsSection}
${fixesSection}
${seqSection}
</main>
<script type="application/json" id="twlab-data">${jsonForScript(data)}</script>
<script>${inlineSafe(uplot.js, 'script')}</script>
<script>${inlineSafe(CLIENT_JS, 'script')}</script>
</body></html>
`;
}

/** Render and write the file (the CLI's --html). */
export function writeLabHtml(file: string, input: HtmlReportInput): void {
  writeFileSync(file, renderLabHtml(input));
}
