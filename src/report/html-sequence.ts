/**
 * A close variant's sequence diagram as inline SVG: two lifelines (client, server), time going
 * down, one box per state change as the tracer recorded it. Not a chart (no scale to read values
 * from), so drawn here rather than with the charting library.
 */
import type { CloseSequence, SideTransition } from './lab-report.js';
import { escapeHtml } from './html-escape.js';

const W = 660;
const ROW = 30;
const TOP = 46;
/** Times in a left column, then the two lifelines. */
const X = { client: 200, server: 500 } as const;

/**
 * The transitions to draw: a full socket's `X -> CLOSE` at the moment the kernel hands it to a
 * TIME-WAIT minisocket is not an end (the sock_diag `X -> TIME-WAIT` says where it went), so it
 * is left out when that follows for the same side.
 */
export function drawnTransitions(ts: readonly SideTransition[]): SideTransition[] {
  return ts.filter(
    (t, i) =>
      !(
        t.to === 'CLOSE' &&
        t.source === 'tracepoint' &&
        ts.some((u, j) => j > i && u.side === t.side && u.source === 'sock_diag' && u.from === t.from)
      ),
  );
}

export function sequenceSvg(seq: CloseSequence): string {
  const ts = drawnTransitions(seq.transitions);
  const h = TOP + ROW * Math.max(ts.length, 1) + 20;
  const parts: string[] = [
    `<svg class="seq" role="img" viewBox="0 0 ${W} ${h}" width="100%" style="max-width:${W}px" aria-label="${escapeHtml(seq.variant)} close sequence">`,
  ];
  for (const side of ['client', 'server'] as const) {
    const port = side === 'client' ? seq.clientPort : seq.serverPort;
    parts.push(
      `<text x="${X[side]}" y="18" class="seq-head" text-anchor="middle">${side} :${port}</text>`,
      `<line x1="${X[side]}" y1="26" x2="${X[side]}" y2="${h - 8}" class="seq-life"/>`,
    );
  }
  ts.forEach((t, i) => {
    const y = TOP + i * ROW;
    const x = X[t.side];
    const label = `${t.from} → ${t.to}`;
    // A dotted rung to the time column, so each step reads against its time.
    parts.push(`<line x1="74" y1="${y - 3}" x2="${x - 95}" y2="${y - 3}" class="seq-rung"/>`);
    const cls = t.to === 'TIME-WAIT' ? 'seq-box tw' : t.to === 'CLOSE' ? 'seq-box closed' : 'seq-box';
    parts.push(
      `<g class="seq-step" data-side="${t.side}"><rect x="${x - 95}" y="${y - 14}" width="190" height="22" rx="4" class="${cls}"/>`,
      `<text x="${x}" y="${y + 1}" text-anchor="middle" class="seq-label">${escapeHtml(label)}</text>`,
      `<text x="70" y="${y + 1}" text-anchor="end" class="seq-time">${t.atMs.toFixed(1)} ms</text>`,
      t.source === 'sock_diag' ? `<text x="${x + 100}" y="${y + 1}" class="seq-time">◆</text>` : '',
      '</g>',
    );
  });
  if (ts.length === 0)
    parts.push(`<text x="${W / 2}" y="${TOP}" text-anchor="middle">no transitions recorded</text>`);
  parts.push('</svg>');
  return parts.join('');
}
