/** The report's stylesheet (system fonts only: nothing to fetch or embed). */
export const REPORT_CSS = `
:root { --fg: #1f2937; --muted: #6b7280; --line: #e5e7eb; --bg: #f9fafb; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
header { background: #111827; color: #f9fafb; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: #d1d5db; }
main { max-width: 1180px; margin: 0 auto; padding: 8px 28px 40px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 18px; margin: 18px 0; }
h2 { font-size: 17px; margin: 2px 0 12px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { font-size: 12px; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); }
td.num, th.num { text-align: right; white-space: nowrap; }
td.id { font-weight: 600; white-space: nowrap; font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
td.seed { font-size: 12px; color: var(--muted); font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
tr.claim { cursor: pointer; }
tr.claim:hover { background: #f3f4f6; }
tr.detail > td { background: #fcfcfd; padding: 10px 16px 16px; }
.evidence th { width: 30%; font-weight: 500; color: var(--muted); font-family: ui-monospace, monospace; font-size: 12px; }
.evidence td { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; word-break: break-word; }
.verdict { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; white-space: nowrap; }
.v-confirmed { background: #dcfce7; color: #166534; }
.v-refuted { background: #fee2e2; color: #991b1b; }
.v-depends { background: #fef3c7; color: #92400e; }
.v-not-applicable { background: #e0e7ff; color: #3730a3; }
.v-not-tested { background: #e5e7eb; color: #374151; }
header .verdict { margin-left: 4px; }
.filters { display: flex; gap: 16px; align-items: center; margin-bottom: 10px; flex-wrap: wrap; }
.filters select { font: inherit; padding: 3px 6px; }
.hint { color: var(--muted); font-size: 12px; }
.error { color: #b91c1c; }
.chart { margin: 12px 0 18px; }
.seqs { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 14px; }
.seq-fig { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 8px; background: #fff; }
.seq-fig figcaption { margin-bottom: 6px; }
.seq-head { font-weight: 700; font-size: 13px; fill: #111827; }
.seq-rung { stroke: #e5e7eb; stroke-dasharray: 2 3; }
.seq-life { stroke: #9ca3af; stroke-dasharray: 4 3; }
.seq-box { fill: #dbeafe; stroke: #2563eb; }
.seq-box.tw { fill: #fef3c7; stroke: #d97706; }
.seq-box.closed { fill: #e5e7eb; stroke: #6b7280; }
.seq-label { font-size: 11.5px; font-family: ui-monospace, "DejaVu Sans Mono", monospace; fill: #111827; }
.seq-time { font-size: 11px; fill: #6b7280; font-family: ui-monospace, monospace; }
`;
