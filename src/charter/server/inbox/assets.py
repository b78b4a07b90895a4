"""The inbox's stylesheet and script, served from /ui/static (no inline code: the CSP forbids it).

The script only enhances: every page and form works without it. It listens to /ui/events and, when
the store changes, re-fetches the page and swaps each ``data-live`` region whose ``data-version``
differs, so a note being typed in an unchanged form is kept. Colours meet WCAG AA contrast (4.5:1
for text, 3:1 for focus rings and controls) on the white background.
"""

from __future__ import annotations

CSS = """
:root { --ink:#1b1b1b; --muted:#4a4a4a; --line:#c8c8c8; --bg:#ffffff; --soft:#f3f4f6;
  --blue:#0b4f8a; --red:#9b1c1c; --green:#1d5e20; --amber:#7a4b00; --focus:#1a5fb4; }
* { box-sizing: border-box; }
body { margin:0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--ink);
  background:var(--bg); }
a { color: var(--blue); }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.skip { position:absolute; left:-9999px; top:0; background:var(--ink); color:#fff; padding:.5em 1em; }
.skip:focus { left:1em; z-index:10; }
.visually-hidden { position:absolute !important; width:1px; height:1px; overflow:hidden; clip:rect(0 0 0 0);
  white-space:nowrap; }
header { display:flex; flex-wrap:wrap; gap:1em 2em; align-items:center; padding:.6em 1.5em;
  border-bottom:1px solid var(--line); background:var(--soft); }
.brand { margin:0; font-weight:700; }
.brand a { color:var(--ink); text-decoration:none; }
header nav ul, .tabs ul { list-style:none; display:flex; gap:1.2em; margin:0; padding:0; flex-wrap:wrap; }
header nav a[aria-current="page"] { font-weight:700; color:var(--ink); text-decoration-thickness:3px; }
.count { display:inline-block; min-width:1.6em; padding:0 .4em; border-radius:1em; background:var(--red);
  color:#fff; font-size:.85em; text-align:center; }
.who { margin-left:auto; display:flex; gap:.6em; align-items:center; }
.who form { display:inline; margin:0; }
.roles { color:var(--muted); }
main { padding:1em 1.5em 3em; max-width:1400px; }
h1 { font-size:1.6em; margin:.4em 0; }
h2 { font-size:1.2em; margin:1.2em 0 .4em; }
h3 { font-size:1em; margin:1em 0 .3em; }
.lede { color:var(--muted); }
.crumbs { margin:.2em 0; }
.tabs { margin:.5em 0 1em; }
.tabs a[aria-current="true"] { font-weight:700; color:var(--ink); }
table { border-collapse:collapse; width:100%; }
/* fixed layout: the browser lays a long list out from its first rows (1,000 rows paint at once) */
table.list { table-layout:fixed; }
table.list col.c-id { width:12em; } table.list col.c-action { width:16em; }
table.list col.c-agent { width:10em; } table.list col.c-group { width:8em; }
table.list col.c-quorum { width:6em; } table.list col.c-time { width:7em; }
table.list col.c-status { width:7em; } table.list td { overflow:hidden; text-overflow:ellipsis; }
caption { text-align:left; color:var(--muted); padding:.3em 0; }
th, td { text-align:left; padding:.4em .6em; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:var(--soft); }
td.args, .args { font-family: ui-monospace, Menlo, Consolas, monospace; font-size:.9em;
  word-break:break-all; }
pre.args { background:var(--soft); padding:.8em; overflow:auto; max-height:24em; white-space:pre-wrap; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; }
.badge { display:inline-block; padding:0 .5em; border-radius:.3em; font-size:.8em; font-weight:600;
  border:1px solid currentColor; vertical-align:middle; }
.badge-pending, .badge-open, .badge-require_approval, .badge-escalate { color:var(--amber); }
.badge-approved, .badge-allowed, .badge-allow, .badge-redeemed { color:var(--green); }
.badge-denied, .badge-deny, .badge-halt, .badge-expired, .badge-fallback { color:var(--red); }
.grid { display:grid; grid-template-columns: minmax(0,3fr) minmax(0,2fr); gap:2em; }
@media (max-width: 900px) { .grid { grid-template-columns: 1fr; } }
dl.facts { display:grid; grid-template-columns:max-content 1fr; gap:.2em 1em; margin:0; }
dl.facts dt { font-weight:600; }
dl.facts dd { margin:0; }
ul.plain, ol.plain { padding-left:1.2em; }
.card { border:1px solid var(--line); border-radius:.4em; padding:1em; background:#fff; display:flex;
  flex-direction:column; gap:.4em; }
.card > button { align-self:flex-start; }
.narrow { max-width:28em; }
label { font-weight:600; }
input, select, textarea { font:inherit; padding:.4em; border:1px solid #6b6b6b; border-radius:.3em;
  color:var(--ink); background:#fff; }
.help { color:var(--muted); font-size:.9em; margin:0; }
.buttons { display:flex; gap:.8em; margin-top:.4em; }
button { font:inherit; padding:.45em 1.1em; border-radius:.3em; border:1px solid #3d3d3d; background:#fff;
  color:var(--ink); cursor:pointer; }
button.primary { background:var(--blue); border-color:var(--blue); color:#fff; }
button.danger { background:var(--red); border-color:var(--red); color:#fff; }
button.link { border:none; background:none; color:var(--blue); text-decoration:underline; padding:0; }
form.inline { display:flex; gap:.4em; margin:0; }
.flash { padding:.6em 1em; border-radius:.3em; border:1px solid; }
.flash.ok { color:var(--green); background:#eef7ee; }
.flash.error { color:var(--red); background:#fbeeee; }
.notice { padding:.6em 1em; border-left:4px solid var(--amber); background:#fdf6e8; }
.sod { color:var(--muted); }
.via { color:var(--muted); font-size:.9em; }
q.note { font-style:italic; }
li.current { font-weight:700; }
ol.timeline > li { margin-bottom:.6em; }
.explain li { margin:.15em 0; }
progress { width:6em; vertical-align:middle; }
.empty { color:var(--muted); }
"""

JS = """
(function () {
  'use strict';
  var src = document.body.getAttribute('data-events');
  if (!src || !window.EventSource || !window.fetch || !window.DOMParser) { return; }
  var seen = null, busy = false, again = false;
  var mark = document.body.getAttribute('data-mark') || '';
  var status = document.getElementById('live-status');

  function swap(html) {
    var doc = new DOMParser().parseFromString(html, 'text/html');
    var changed = 0;
    document.querySelectorAll('[data-live]').forEach(function (el) {
      var fresh = doc.querySelector('[data-live="' + el.getAttribute('data-live') + '"]');
      if (fresh && fresh.getAttribute('data-version') !== el.getAttribute('data-version')) {
        el.replaceWith(document.importNode(fresh, true));
        changed += 1;
      }
    });
    if (changed && status) { status.textContent = 'Updated at ' + new Date().toLocaleTimeString(); }
    document.body.setAttribute('data-refreshed', String(Date.now()));
  }

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.href, { credentials: 'same-origin', headers: { 'X-Inbox-Refresh': '1' } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html) { swap(html); } })
      .catch(function () {})
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }

  var events = new EventSource(src);
  events.addEventListener('change', function (e) {
    var version = JSON.parse(e.data);
    document.body.setAttribute('data-connected', '1');
    if (seen === null) {
      // the first event after loading: redraw only if the store moved since the page was made
      if (version.split('/')[0] !== mark) { refresh(); }
    } else if (version !== seen) { refresh(); }
    seen = version;
  });
})();
"""

#: name -> (body, media type)
FILES = {
    "inbox.css": (CSS, "text/css; charset=utf-8"),
    "inbox.js": (JS, "text/javascript; charset=utf-8"),
}
