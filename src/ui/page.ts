/**
 * The dashboard page: one HTML document with its script and style inline (no external fetch),
 * the per-run token in a <meta> tag for the page's own POSTs. The TCP state diagram is drawn
 * as SVG boxes (RFC 793's layout) whose counts the script refreshes from /api/census. Above the
 * panels, the host view (host-page.ts) chooses which network namespace they show.
 */
import { escapeHtml, jsonForScript } from '../report/html-escape.js';
import { HOST_CSS, HOST_JS, hostSection } from './host-page.js';
import { CHART_JS, chartAssets, chartSection } from './page-chart.js';

/** [state (ss name), x, y] of each box in the diagram. */
const BOXES: Array<[string, number, number]> = [
  ['LISTEN', 300, 40],
  ['SYN-RECV', 110, 110],
  ['SYN-SENT', 490, 110],
  ['ESTAB', 300, 180],
  ['FIN-WAIT-1', 110, 255],
  ['CLOSE-WAIT', 490, 255],
  ['FIN-WAIT-2', 40, 330],
  ['CLOSING', 220, 330],
  ['LAST-ACK', 490, 330],
  ['TIME-WAIT', 110, 405],
];
const EDGES: Array<[string, string]> = [
  ['LISTEN', 'SYN-RECV'],
  ['SYN-SENT', 'ESTAB'],
  ['SYN-RECV', 'ESTAB'],
  ['ESTAB', 'FIN-WAIT-1'],
  ['ESTAB', 'CLOSE-WAIT'],
  ['FIN-WAIT-1', 'FIN-WAIT-2'],
  ['FIN-WAIT-1', 'CLOSING'],
  ['FIN-WAIT-2', 'TIME-WAIT'],
  ['CLOSING', 'TIME-WAIT'],
  ['CLOSE-WAIT', 'LAST-ACK'],
];
const BW = 120;
const BH = 40;

function stateDiagram(): string {
  const at = new Map(BOXES.map(([s, x, y]) => [s, { x, y }]));
  const lines = EDGES.map(([a, b]) => {
    const p = at.get(a)!;
    const q = at.get(b)!;
    return `<line x1="${p.x + BW / 2}" y1="${p.y + BH}" x2="${q.x + BW / 2}" y2="${q.y}" marker-end="url(#arrow)"/>`;
  }).join('');
  const boxes = BOXES.map(
    ([s, x, y]) =>
      `<g class="st" data-state="${s}"><rect x="${x}" y="${y}" width="${BW}" height="${BH}" rx="6"/>` +
      `<text x="${x + BW / 2}" y="${y + 16}" class="st-name">${s}</text>` +
      `<text x="${x + BW / 2}" y="${y + 33}" class="st-count" id="count-${s}">…</text></g>`,
  ).join('');
  return `<svg id="states" viewBox="0 0 650 460" width="100%" style="max-width:650px" role="img" aria-label="TCP state diagram with live counts">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#9ca3af"/></marker></defs>
<g class="edges">${lines}</g>${boxes}</svg>`;
}

const CSS = `
body { margin: 0; font: 14px/1.45 system-ui, "DejaVu Sans", sans-serif; color: #1f2937; background: #f9fafb; }
header { background: #111827; color: #f9fafb; padding: 14px 24px; display: flex; gap: 16px; align-items: baseline; }
header h1 { margin: 0; font-size: 20px; } header span { color: #9ca3af; }
main { display: grid; grid-template-columns: minmax(420px, 1fr) minmax(420px, 1fr); gap: 16px; padding: 16px 24px; max-width: 1400px; }
section { background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 12px 16px; }
h2 { font-size: 16px; margin: 0 0 10px; }
#states line { stroke: #9ca3af; stroke-width: 1.5; }
.st rect { fill: #eff6ff; stroke: #2563eb; } .st.hot rect { fill: #fef3c7; stroke: #d97706; }
.st text { text-anchor: middle; } .st-name { font-size: 11px; font-weight: 600; font-family: ui-monospace, monospace; }
.st-count { font-size: 15px; font-weight: 700; }
table { border-collapse: collapse; width: 100%; } th, td { padding: 4px 6px; border-bottom: 1px solid #e5e7eb; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.bar { height: 8px; background: #e5e7eb; border-radius: 4px; min-width: 80px; } .bar > div { height: 8px; background: #dc2626; border-radius: 4px; }
form label { display: inline-block; margin: 0 10px 8px 0; } input, select, button { font: inherit; padding: 3px 6px; }
input { width: 90px; } pre { background: #f3f4f6; padding: 8px; max-height: 260px; overflow: auto; font-size: 12px; white-space: pre-wrap; }
.muted { color: #6b7280; font-size: 12px; }
.finding { border-left: 4px solid #9ca3af; padding: 4px 10px; margin-bottom: 8px; } .finding.critical { border-color: #dc2626; }
.finding.warning { border-color: #d97706; } .finding ol { margin: 4px 0; padding-left: 20px; }
${HOST_CSS}`;

const JS = String.raw`
(function () {
  var token = document.querySelector('meta[name=twlab-token]').content;
  var claims = JSON.parse(document.getElementById('claims').textContent);
  function $(id) { return document.getElementById(id); }
  function post(path, body) {
    return fetch(path, { method: 'POST', headers: { 'content-type': 'application/json', 'x-twlab-token': token }, body: JSON.stringify(body) })
      .then(function (r) { return r.json().then(function (j) { if (!r.ok) throw new Error(j.error || r.status); return j; }); });
  }
  function fmtSec(s) { return s === null || s === undefined ? 'never' : s < 120 ? s.toFixed(1) + ' s' : (s / 60).toFixed(1) + ' min'; }
  // The namespace the panels show (host-page.ts's twlab-netns event); null: the dashboard's own.
  var netns = null;
  // One request per path and namespace at a time: a slow answer is not queued behind by more polls.
  var pending = {};
  function get(path) {
    var want = netns, url = path + (want ? '?netns=' + want : '');
    if (pending[url]) return Promise.resolve(null);
    pending[url] = true;
    return fetch(url).then(function (r) {
      return r.json().then(function (j) { if (!r.ok) throw new Error(j.error || r.status); return want === netns ? j : null; });
    }).finally(function () { delete pending[url]; });
  }
  function describe(d) {
    var c = d.census;
    if (!netns) { $('ns-title').textContent = "This dashboard's namespace"; $('ns-detail').textContent = 'ports ' + c.portRange.low + '-' + c.portRange.high; return; }
    $('ns-title').textContent = 'Namespace ' + c.netns.inode + ': ' + d.label;
    var procs = c.processes.map(function (p) { return p.pid + ' ' + p.comm; }).join(', ') + (c.processCount > c.processes.length ? ' +' + (c.processCount - c.processes.length) : '');
    var sys = c.sysctls ? Object.keys(c.sysctls).map(function (k) { return k.replace(/^net\.ipv4\./, '') + '=' + c.sysctls[k]; }).join('  ') : 'sysctls unreadable (read through /proc/PID/net)';
    $('ns-detail').textContent = (procs ? 'processes: ' + procs + ' | ' : '') + sys;
  }
  function findings() {
    get('/api/doctor').then(function (d) {
      if (!d) return;
      var box = $('findings');
      box.textContent = '';
      if (!d.findings.length) { box.textContent = 'no findings'; return; }
      d.findings.forEach(function (f) {
        var div = document.createElement('div'), h = document.createElement('b'), ev = document.createElement('div'), fx = document.createElement('ol');
        div.className = 'finding ' + f.severity;
        h.textContent = f.severity.toUpperCase() + ': ' + f.title;
        ev.className = 'muted';
        ev.textContent = Object.keys(f.evidence).map(function (k) { return k + '=' + f.evidence[k]; }).join('  ');
        f.fixes.forEach(function (x) { var li = document.createElement('li'); li.textContent = x.action + ' (' + x.benefit + '; ' + x.cost + ')'; fx.appendChild(li); });
        div.appendChild(h); div.appendChild(ev); div.appendChild(fx); box.appendChild(div);
      });
    }).catch(function (e) { $('findings').textContent = 'doctor failed: ' + e.message; });
  }
  function refresh() {
    get('/api/census').then(function (d) {
      if (!d) return;
      describe(d);
      document.dispatchEvent(new CustomEvent('twlab-census', { detail: d }));
      var c = d.census;
      document.querySelectorAll('#states .st').forEach(function (g) {
        var n = c.byState[g.dataset.state] || 0;
        $('count-' + g.dataset.state).textContent = n;
        g.classList.toggle('hot', n > 0 && g.dataset.state === 'TIME-WAIT');
      });
      $('total').textContent = c.total + ' sockets, ' + c.timeWait.count + ' in TIME-WAIT (' + c.timeWait.ratePerSec + '/s new), source ' + c.source;
      $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
      var fc = {};
      d.forecasts.forEach(function (f) { fc[f.local + '>' + f.remote] = f; });
      $('pressure').innerHTML = c.pressure.length ? c.pressure.map(function (p) {
        var f = fc[p.local + '>' + p.remote];
        return '<tr><td>' + p.local + '</td><td>' + p.remote + '</td><td class="num">' + p.inUse + ' / ' + p.rangeSize +
          '</td><td><div class="bar"><div style="width:' + Math.min(100, p.ratio * 100).toFixed(1) + '%"></div></div></td><td class="num">' +
          p.ratePerSec + '/s</td><td class="num">' + fmtSec(p.secondsToExhaustion) + '</td><td class="num">' +
          (f ? fmtSec(f.modelFirstFailureSec) : '-') + '</td></tr>';
      }).join('') : '<tr><td colspan="7" class="muted">no ephemeral ports held</td></tr>';
    }).catch(function (e) { $('updated').textContent = 'census failed: ' + e.message; });
  }
  document.addEventListener('twlab-netns', function (e) { netns = e.detail.inode; refresh(); findings(); });
  refresh();
  findings();
  setInterval(refresh, 1000);
  setInterval(findings, 5000);

  $('predict').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var f = new FormData(ev.target), body = {};
    f.forEach(function (v, k) { body[k] = v; });
    body.loopback = f.get('loopback') === 'on';
    body.natFullyRandom = f.get('natFullyRandom') === 'on';
    $('prediction').textContent = 'running the model...';
    post('/api/predict', body).then(function (p) {
      $('prediction').textContent = 'first EADDRNOTAVAIL: ' + (p.firstFailureSec === null ? 'none within ' + p.input.durationSec + ' s' : 'after ' + p.firstFailureSec + ' s (connection ' + p.firstFailureAtConnection + ')') +
        '\nTIME_WAIT in steady state: ' + Math.round(p.timeWaitSteadyState) +
        '\nmax sustainable rate per destination: ' + (p.maxSustainableRate === null ? 'not limited by ports' : p.maxSustainableRate + '/s') +
        (p.nat ? '\nNAT: first stall ' + (p.nat.firstStall ? 'at connection ' + p.nat.firstStall.atConnection + ' (' + p.nat.firstStall.sec + ' s)' : 'none') + ', ' + p.nat.stalls + ' stall(s); server TIME_WAIT collisions ' + p.nat.collisions + (p.nat.firstCollision ? ' from connection ' + p.nat.firstCollision.atConnection : '') : '') +
        '\n\nfixes:\n' + p.fixes.map(function (x) { return ' ' + x.rank + '. ' + x.fix + ': ' + x.effect + (x.firstFailureSec === null ? ', no failure' : ', fails after ' + x.firstFailureSec + ' s'); }).join('\n');
    }).catch(function (e) { $('prediction').textContent = 'refused: ' + e.message; });
  });

  var sel = $('claim');
  claims.forEach(function (c) { var o = document.createElement('option'); o.value = c.id; o.textContent = c.id + ' (~' + Math.round(c.estimateMs / 1000) + ' s): ' + c.claim; sel.appendChild(o); });
  $('run').addEventListener('click', function () {
    $('run').disabled = true;
    $('runlog').textContent = '';
    function log(t) { $('runlog').textContent += t + '\n'; }
    post('/api/runs', { claim: sel.value }).then(function (r) {
      log('run ' + r.id + ': ' + r.claim + ' started');
      var es = new EventSource(r.events);
      es.onmessage = function (m) {
        var e = JSON.parse(m.data);
        if (e.type === 'progress') log('  ' + e.message);
        else if (e.type === 'result') {
          log('\n' + e.result.id + ': ' + e.result.verdict.toUpperCase() + '\n' + e.result.explanation);
          $('verdict').textContent = e.result.verdict; es.close(); $('run').disabled = false;
        } else if (e.type === 'failed') { log('failed: ' + e.error); es.close(); $('run').disabled = false; }
      };
      es.onerror = function () { es.close(); $('run').disabled = false; };
    }).catch(function (e) { log('refused: ' + e.message); $('run').disabled = false; });
  });
})();
`;

export function dashboardPage(
  token: string,
  claims: Array<{ id: string; claim: string; estimateMs: number }>,
): string {
  const chart = chartAssets();
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>twlab ui</title>
<meta name="twlab-token" content="${escapeHtml(token)}"><style>${chart.css}</style><style>${CSS}</style></head><body>
<header><h1>twlab</h1><span id="total">…</span><span id="updated" class="muted"></span></header>
<main>
${hostSection()}
<section><h2>TCP states, live</h2>${stateDiagram()}</section>
<section><h2>Port pressure per destination</h2>
<table><thead><tr><th>local</th><th>remote</th><th class="num">ports held</th><th>pressure</th><th class="num">rate</th><th class="num">census: exhausted in</th><th class="num">model: fails in</th></tr></thead><tbody id="pressure"></tbody></table>
<p class="muted">"census" extrapolates the TIME_WAIT age rate; "model" runs twlab's port/TIME_WAIT simulation at that rate (120 s horizon, the namespace's own tcp_tw_reuse).</p></section>
${chartSection()}
<section><h2>Findings (doctor)</h2><div id="findings" class="muted">reading...</div></section>
<section><h2>Predict</h2><form id="predict">
<label>rate/s <input name="rate" value="500"></label><label>ports <input name="low" value="32768"> - <input name="high" value="60999"></label>
<label>tcp_tw_reuse <select name="twReuse"><option>0</option><option>1</option><option selected>2</option></select></label>
<label>destinations <input name="destinations" value="1"></label><label>close <select name="close"><option>client-first</option><option>server-first</option><option>rst</option></select></label>
<label>seconds <input name="durationSec" value="120"></label><label><input type="checkbox" name="loopback" style="width:auto"> loopback</label>
<label>NAT ports (N or LOW-HIGH, empty: none) <input name="natPorts" value=""></label><label>conntrack TIME_WAIT s <input name="conntrackTwTimeout" value="120"></label><label><input type="checkbox" name="natFullyRandom" style="width:auto"> fully-random</label>
<button>predict</button></form><pre id="prediction"></pre></section>
<section><h2>Run a lab claim</h2><select id="claim" style="max-width:100%"></select> <button id="run">run</button> <b id="verdict"></b><pre id="runlog"></pre></section>
</main>
<script type="application/json" id="claims">${jsonForScript(claims)}</script>
<script>${chart.js}</script><script>${JS}</script><script>${CHART_JS}</script><script>${HOST_JS}</script></body></html>
`;
}
