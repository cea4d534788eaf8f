/**
 * The report page's own script (browser JavaScript, inlined as text): the verdict filters and
 * the uPlot charts drawn from the data block. Kept as plain ES2019 with no imports: the page
 * must work from file:// with nothing else.
 */
export const CLIENT_JS = String.raw`
(function () {
  var data = JSON.parse(document.getElementById('twlab-data').textContent);
  // Filters: seed and verdict, combined.
  var seedSel = document.getElementById('f-seed');
  var verdictSel = document.getElementById('f-verdict');
  function applyFilters() {
    var seed = seedSel.value, verdict = verdictSel.value, shown = 0;
    document.querySelectorAll('tr.claim').forEach(function (row) {
      var ok = (!seed || row.dataset.seed === seed) && (!verdict || row.dataset.verdict === verdict);
      row.hidden = !ok;
      var detail = document.getElementById('d-' + row.dataset.id);
      if (detail && !ok) detail.hidden = true;
      if (ok) shown++;
    });
    document.getElementById('f-count').textContent = shown + ' of ' + data.claims.length + ' claims';
  }
  seedSel.addEventListener('change', applyFilters);
  verdictSel.addEventListener('change', applyFilters);
  document.querySelectorAll('tr.claim').forEach(function (row) {
    row.addEventListener('click', function () {
      var d = document.getElementById('d-' + row.dataset.id);
      if (d) d.hidden = !d.hidden;
    });
  });
  applyFilters();

  var palette = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#0891b2'];
  function width(el) { return Math.max(320, Math.min(1100, el.clientWidth || 640)); }

  // One line chart per claim with series: x = seconds since the experiment started.
  data.charts.forEach(function (chart) {
    var el = document.getElementById(chart.el);
    if (!el) return;
    var xs = {};
    chart.series.forEach(function (s) { s.points.forEach(function (p) { xs[p[0]] = true; }); });
    var x = Object.keys(xs).map(Number).sort(function (a, b) { return a - b; });
    var cols = [x.map(function (ms) { return ms / 1000; })];
    chart.series.forEach(function (s) {
      var byX = {};
      s.points.forEach(function (p) { byX[p[0]] = p[1]; });
      cols.push(x.map(function (ms) { return ms in byX ? byX[ms] : null; }));
    });
    var units = {};
    chart.series.forEach(function (s) { units[s.unit] = true; });
    var unitList = Object.keys(units);
    var opts = {
      title: chart.title,
      width: width(el),
      height: 260,
      scales: { x: { time: false } },
      axes: [{ label: 'seconds since start' }].concat(unitList.map(function (u, i) {
        return { label: u, scale: u, side: i === 0 ? 3 : 1, grid: { show: i === 0 } };
      })),
      series: [{ label: 's' }].concat(chart.series.map(function (s, i) {
        return { label: s.name + ' (' + s.unit + ')', scale: s.unit, stroke: palette[i % palette.length], width: 2,
                 points: { show: true, size: 5 }, spanGaps: true };
      })),
    };
    new uPlot(opts, cols, el);
  });

  // Connections before failure per fix: bars.
  var fixEl = document.getElementById('chart-fixes');
  if (fixEl && data.fixes.length) {
    var xsF = data.fixes.map(function (_, i) { return i + 1; });
    var failed = data.fixes.map(function (f) { return f.connectionsBeforeFailure; });
    var noFail = data.fixes.map(function (f) { return f.connectionsBeforeFailure === null && !f.error ? f.attempted : null; });
    var bars = uPlot.paths.bars({ size: [0.6, 60] });
    new uPlot({
      title: 'Connections before the first failure, per fix',
      width: width(fixEl),
      height: 300,
      scales: { x: { time: false, range: [0.4, data.fixes.length + 0.6] } },
      axes: [
        { values: function (u, vals) { return vals.map(function (v) { var f = data.fixes[v - 1]; return Number.isInteger(v) && f ? f.id : ''; }); },
          splits: function () { return xsF; }, rotate: 0, size: 40 },
        { label: 'connections' },
      ],
      series: [
        { label: 'fix' },
        { label: 'failed after', fill: '#dc2626cc', stroke: '#dc2626', paths: bars, points: { show: false } },
        { label: 'no failure within the bound', fill: '#059669cc', stroke: '#059669', paths: bars, points: { show: false } },
      ],
    }, [xsF, failed, noFail], fixEl);
  }
  document.body.dataset.chartsReady = 'yes';
})();
`;
