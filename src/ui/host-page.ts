/**
 * The dashboard's host view: a table of every network namespace (GET /api/host), most at risk
 * first, refreshed every few seconds (rows the server's time budget left unread show greyed, as last
 * read). Clicking a row selects that namespace: the script keeps the
 * choice in the address (#netns=INODE, so a reload or a shared link keeps it) and tells the
 * per-namespace panels with a `twlab-netns` event on document. Names come from containers and pods
 * (anyone who can start one chooses them): they are set as text, never as HTML.
 */

export const HOST_CSS = `
#host { grid-column: 1 / -1; } #host .rows { max-height: 60vh; overflow: auto; }
#host thead th { position: sticky; top: 0; background: #fff; }
#host table tbody tr { cursor: pointer; } #host tbody tr:hover { background: #f3f4f6; }
#host tbody tr.selected { background: #dbeafe; } #host th, #host td { white-space: nowrap; }
#host td.owner { max-width: 300px; overflow: hidden; text-overflow: ellipsis; }
#host td.soon { color: #b91c1c; font-weight: 700; } #host tr.stale td { color: #9ca3af; } #host .notes { margin: 6px 0 0; padding-left: 18px; }
#nsbar { grid-column: 1 / -1; background: #111827; color: #f9fafb; border-color: #111827; display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap; }
#nsbar b { font-size: 15px; } #nsbar button { margin-left: auto; }
#nsbar span { order: 3; flex-basis: 100%; color: #d1d5db; font-size: 12px; font-family: ui-monospace, monospace; }
`;

export function hostSection(): string {
  return `<section id="host"><h2>Network namespaces on this host <span class="muted" id="host-summary"></span></h2>
<div class="rows"><table><thead><tr><th>netns</th><th>owner</th><th class="num">sockets</th><th class="num">ESTAB</th><th class="num">TIME-WAIT</th><th>ports</th><th>worst destination</th><th class="num">held</th><th>pressure</th><th class="num">new/s</th><th class="num">exhausted in</th></tr></thead>
<tbody id="host-rows"><tr><td colspan="11" class="muted">reading every namespace...</td></tr></tbody></table></div>
<ul class="notes muted" id="host-notes"></ul>
<p class="muted">Most at risk first: soonest out of ports at the recent TIME-WAIT rate ("never": not at this rate), then the largest share of the namespace's own port range held. Click a row for its panels below.</p></section>
<section id="nsbar"><b id="ns-title">This dashboard's namespace</b><span id="ns-detail"></span><button id="ns-own" hidden>back to this dashboard's namespace</button></section>`;
}

export const HOST_JS = String.raw`
(function () {
  function $(id) { return document.getElementById(id); }
  function cell(tr, text, cls) { var td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td); return td; }
  function exhausted(w) {
    var s = w ? w.secondsToExhaustion : undefined;
    return s === undefined ? '-' : s === null ? 'never' : s < 120 ? s.toFixed(1) + ' s' : (s / 60).toFixed(1) + ' min';
  }
  var selected = null;
  var rows = [];
  function fromHash() { var m = /^#netns=(\d{1,16})$/.exec(location.hash); return m ? m[1] : null; }
  function select(inode, label) {
    selected = inode;
    if (inode) history.replaceState(null, '', '#netns=' + inode); else history.replaceState(null, '', location.pathname);
    document.querySelectorAll('#host-rows tr').forEach(function (tr) { tr.classList.toggle('selected', tr.dataset.inode === inode); });
    $('ns-own').hidden = !inode;
    document.dispatchEvent(new CustomEvent('twlab-netns', { detail: { inode: inode, label: label } }));
  }
  function render(d) {
    var h = d.host;
    $('host-summary').textContent = h.seen + ' found, ' + h.read + ' read' + (h.skipped.length ? ', ' + h.skipped.length + ' skipped' : '') +
      '; ' + h.totals.total + ' TCP sockets, ' + h.totals.timeWait + ' in TIME-WAIT; read in ' + Math.round(d.timing.readMs) + ' ms';
    rows = d.namespaces;
    var body = $('host-rows');
    body.textContent = '';
    rows.forEach(function (n) {
      var tr = document.createElement('tr'), w = n.worst;
      tr.dataset.inode = String(n.netns.inode);
      cell(tr, n.netns.inode + (n.netns.self ? ' *' : ''));
      cell(tr, n.label, 'owner').title = n.label;
      cell(tr, n.total, 'num');
      cell(tr, n.byState.ESTAB || 0, 'num');
      cell(tr, n.timeWait.count, 'num');
      cell(tr, n.portRange.low + '-' + n.portRange.high + (n.portRangeAssumed ? ' ?' : ''));
      cell(tr, w ? w.remote : '-');
      cell(tr, w ? w.inUse + ' / ' + w.rangeSize : '-', 'num');
      var bar = cell(tr, ''), outer = document.createElement('div'), inner = document.createElement('div');
      outer.className = 'bar'; inner.style.width = (w ? Math.min(100, w.ratio * 100) : 0).toFixed(1) + '%';
      outer.appendChild(inner); bar.appendChild(outer);
      cell(tr, w ? w.ratePerSec + '/s' : '-', 'num');
      cell(tr, exhausted(w), 'num' + (w && w.secondsToExhaustion !== null && w.secondsToExhaustion < 300 ? ' soon' : ''));
      if (String(n.netns.inode) === selected) tr.classList.add('selected');
      if (n.readAt !== d.timing.at) { tr.classList.add('stale'); tr.title = 'not read in this view (time budget): as read at ' + new Date(n.readAt).toLocaleTimeString(); }
      tr.addEventListener('click', function () { select(tr.dataset.inode, n.label); });
      body.appendChild(tr);
    });
    var notes = $('host-notes');
    notes.textContent = '';
    var lines = d.notes.slice();
    if (rows.some(function (n) { return n.netns.self; })) lines.unshift("* this dashboard's own namespace");
    if (rows.some(function (n) { return n.portRangeAssumed; })) lines.push('? read through /proc/PID/net (no setns): its sysctls unknown, twlab\'s port range assumed');
    h.skipped.forEach(function (s) { lines.push('skipped ' + s.inode + ': ' + s.reason + ': ' + s.message); });
    lines.forEach(function (t) { var li = document.createElement('li'); li.textContent = t; notes.appendChild(li); });
  }
  var busy = false;
  function refresh() {
    if (busy) return;
    busy = true;
    fetch('/api/host').then(function (r) { return r.json(); }).then(render)
      .catch(function (e) { $('host-summary').textContent = 'host view failed: ' + e.message; })
      .finally(function () { busy = false; });
  }
  $('ns-own').addEventListener('click', function () { select(null, null); });
  var first = fromHash();
  if (first) select(first, null);
  refresh();
  setInterval(refresh, 5000);
})();
`;
