/**
 * The dashboard's history chart (uPlot, inlined like the HTML report's): the chosen namespace's
 * TIME-WAIT count and the ports its worst destination holds, against that destination's usable
 * ports, one point per census refresh since the namespace was chosen (the last 10 minutes). The
 * page sends each census as a `twlab-census` event; a `twlab-netns` event starts a new history.
 */
import { inlineSafe, uplotAssets } from '../report/html.js';

/** 1 s refreshes: 10 minutes. */
const POINTS = 600;

export function chartSection(): string {
  return `<section id="history-box"><h2>History, since chosen</h2><div id="history"></div>
<p class="muted">One point per refresh. "held" and "usable" are for the worst destination (soonest out of ports, else the largest share held); held reaching usable is connect() failing with EADDRNOTAVAIL.</p></section>`;
}

/** uPlot's stylesheet and script, then ours. */
export function chartAssets(): { css: string; js: string } {
  const uplot = uplotAssets();
  return { css: inlineSafe(uplot.css, 'style'), js: inlineSafe(uplot.js, 'script') };
}

export const CHART_JS = String.raw`
(function () {
  var el = document.getElementById('history');
  var cols = [[], [], [], []];
  var plot = new uPlot({
    width: Math.max(300, el.clientWidth), height: 240,
    // From zero: how far the held ports are from the usable ones is the point of the chart.
    scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(1, max) * 1.05]; } } },
    axes: [{}, { label: 'sockets / ports', size: 60 }],
    series: [
      {},
      { label: 'TIME-WAIT', stroke: '#d97706', width: 2 },
      { label: 'held (worst destination)', stroke: '#dc2626', width: 2 },
      { label: 'usable', stroke: '#6b7280', dash: [6, 4], width: 1 },
    ],
  }, cols, el);
  document.addEventListener('twlab-netns', function () {
    cols = [[], [], [], []];
    plot.setData(cols);
  });
  document.addEventListener('twlab-census', function (e) {
    var c = e.detail.census, w = c.worst || c.pressure[0] || null;
    cols[0].push(Date.now() / 1000);
    cols[1].push(c.timeWait.count);
    cols[2].push(w ? w.inUse : null);
    cols[3].push(w ? w.rangeSize : null);
    if (cols[0].length > ${POINTS}) cols.forEach(function (a) { a.shift(); });
    plot.setData(cols);
    el.dataset.points = String(cols[0].length);
    el.dataset.last = JSON.stringify(cols.slice(1).map(function (a) { return a[a.length - 1]; }));
  });
  window.addEventListener('resize', function () { plot.setSize({ width: Math.max(300, el.clientWidth), height: 240 }); });
})();
`;
