/**
 * The inspector's one page: everything inline, nothing loaded from the network. It draws each
 * statechart from the machine definitions (`/api/machines`) as nested state boxes with their
 * transitions, highlights the states every actor is in, and follows `/events` (Server-Sent Events),
 * whose status pushes bring the open alarms, shown in a red bar at the top. Its buttons act through
 * the operator API (POST /api/...). It is assembled from constant parts: the style, the markup, and
 * the script's three parts (charts, actions, the feed).
 */

import { SCRIPT_ACTIONS } from './page-actions.ts';

/** Dark panels; the states an actor is in are outlined in the highlight colour. */
const STYLE = `  :root { --bg:#0f1419; --panel:#161c24; --line:#2a3441; --text:#d7dde5; --dim:#7d8896; --hi:#f5a623; --ok:#3fb950; --bad:#f85149; }
  * { box-sizing: border-box; }
  body { margin:0; font:13px/1.4 system-ui, sans-serif; background:var(--bg); color:var(--text); }
  header { padding:10px 16px; border-bottom:1px solid var(--line); display:flex; gap:24px; align-items:baseline; flex-wrap:wrap; }
  header h1 { font-size:16px; margin:0; }
  .fact b { color:var(--hi); font-weight:600; }
  main { display:grid; grid-template-columns: minmax(0,3fr) minmax(0,2fr); gap:12px; padding:12px; }
  section { background:var(--panel); border:1px solid var(--line); border-radius:6px; padding:10px; overflow:auto; }
  h2 { font-size:13px; margin:0 0 8px; color:var(--dim); text-transform:uppercase; letter-spacing:.05em; }
  .chart { margin-bottom:14px; }
  .chart h3 { margin:0 0 6px; font-size:14px; }
  .state { border:1px solid var(--line); border-radius:6px; padding:4px 6px; margin:3px; display:inline-block; vertical-align:top; min-width:90px; }
  .state > .name { font-weight:600; }
  .state.compound { display:block; }
  .state.active { border-color:var(--hi); box-shadow:0 0 0 1px var(--hi) inset; }
  .state.active > .name { color:var(--hi); }
  .state.final > .name::after { content:" ◉"; }
  .state .tr { color:var(--dim); font-size:11px; white-space:nowrap; }
  .state .inv { color:#79c0ff; font-size:11px; }
  .trail { color:var(--dim); font-size:12px; margin:4px 0 8px; }
  .trail li { display:inline; }
  .trail li + li::before { content:" → "; }
  table { border-collapse:collapse; width:100%; }
  td, th { text-align:left; padding:2px 6px; border-bottom:1px solid var(--line); vertical-align:top; }
  th { color:var(--dim); font-weight:500; }
  #events { max-height:420px; overflow:auto; font-family:ui-monospace, monospace; font-size:11px; }
  #events pre { margin:0; white-space:pre-wrap; word-break:break-all; color:var(--dim); }
  select { background:var(--bg); color:var(--text); border:1px solid var(--line); }
  .st-blocked { color:var(--bad); font-weight:600; } .st-retrying { color:var(--hi); } .st-flowing { color:var(--ok); } .st-idle { color:var(--dim); }
  .conn { font-size:11px; } .conn.up { color:var(--ok); } .conn.down { color:var(--bad); }
  .st-paused { color:#79c0ff; font-weight:600; }
  button { background:var(--bg); color:var(--text); border:1px solid var(--line); border-radius:4px; padding:1px 8px; cursor:pointer; font:inherit; }
  button:hover { border-color:var(--hi); } button:disabled { opacity:.5; cursor:default; }
  #act-result.ok { color:var(--ok); } #act-result.bad { color:var(--bad); }
  #alarms { background:var(--bad); color:#fff; padding:6px 16px; }
  #alarms ul { margin:0; padding:0; list-style:none; }
  #alarms b { margin-right:8px; } #alarms .since { opacity:.8; margin-left:8px; font-size:11px; }
`;

/** The open alarms (a red bar, hidden while none is open), the facts bar (epoch, agent, phase, parked, depth, leader), the charts, devices, switches and events. */
const MARKUP = `<div id="alarms" role="alert" hidden><ul></ul></div>
<header>
  <h1>baton inspector</h1>
  <span class="fact">epoch <b id="f-epoch">–</b></span>
  <span class="fact">active agent <b id="f-agent">–</b></span>
  <span class="fact">phase <b id="f-phase">–</b></span>
  <span class="fact">parked <b id="f-parked">–</b></span>
  <span class="fact">queue depth <b id="f-depth">–</b></span>
  <span class="fact">leader <b id="f-leader">–</b></span>
  <span id="conn" class="conn down">● disconnected</span>
</header>
<main>
  <div>
    <section id="charts"><h2>Statecharts</h2></section>
  </div>
  <div>
    <section><h2>Devices</h2><table id="devices"><thead><tr><th>device</th><th>state</th><th>next seq / watermark</th><th>lag (oldest)</th><th>detail</th><th>actions</th></tr></thead><tbody></tbody></table></section>
    <section><h2>Dead letters</h2><table id="dead-letters"><thead><tr><th>id</th><th>device / seq</th><th>answer</th><th>now</th><th>actions</th></tr></thead><tbody></tbody></table></section>
    <section><h2>Operator</h2><div><button id="handover" data-act="handover">Handover</button> to <input id="handover-to" placeholder="any idle agent" size="14"> <span id="act-result"></span></div>
      <table id="audit"><thead><tr><th>when</th><th>action</th><th>target</th><th>by</th><th>outcome</th><th>detail</th></tr></thead><tbody></tbody></table></section>
    <section><h2>Switch history</h2><table id="switches"><thead><tr><th>switch</th><th>from → to</th><th>epoch</th><th>switching</th><th>draining</th><th>replaying</th><th>moved</th><th>replayed</th></tr></thead><tbody></tbody></table></section>
    <section><h2>Events <select id="filter"><option value="">all actors</option></select></h2><div id="events"></div></section>
  </div>
</main>
`;

/** The page's state and helpers; draws each statechart as nested state boxes and marks the states each actor is in. */
const SCRIPT_CHARTS = `const token = new URLSearchParams(location.search).get('token');
const q = token ? '?token=' + encodeURIComponent(token) : '';
const defs = {};          // machine name -> graph
const actors = new Map(); // actor name -> { machine, value, el, trail }
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

function activeIds(root, value) {
  const out = [root];
  const walk = (prefix, v) => {
    if (typeof v === 'string') { out.push(prefix + '.' + v); return; }
    for (const [k, sub] of Object.entries(v || {})) { out.push(prefix + '.' + k); walk(prefix + '.' + k, sub); }
  };
  walk(root, value);
  return out;
}
function topState(value) { return typeof value === 'string' ? value : Object.keys(value || {})[0]; }

function drawNode(g, id) {
  const n = g.nodes.find((x) => x.id === id);
  const kids = g.nodes.filter((x) => x.parent === id);
  const trs = g.edges.filter((e) => e.source === id);
  const el = document.createElement('div');
  el.className = 'state ' + n.type;
  el.dataset.state = id.split('.').slice(1).join('.') || id;
  el.innerHTML = '<div class="name">' + esc(n.type === 'history' ? 'H' : n.key) + '</div>' +
    n.invokes.map((s) => '<div class="inv">runs ' + esc(s) + '</div>').join('') +
    trs.map((t) => '<div class="tr">' + esc(t.label) + ' → ' + esc(t.target.split('.').slice(1).join('.') || t.target) + '</div>').join('');
  for (const k of kids) el.appendChild(drawNode(g, k.id));
  return el;
}

function ensureActor(name, machine) {
  if (actors.has(name)) return actors.get(name);
  const g = defs[machine];
  const wrap = document.createElement('div');
  wrap.className = 'chart';
  wrap.dataset.machine = name;
  wrap.innerHTML = '<h3>' + esc(name) + ' <span class="trail-label" style="color:var(--dim);font-weight:400">(' + esc(machine) + ')</span></h3><ol class="trail"></ol>';
  const body = drawNode(g, g.id);
  body.classList.add('root');
  wrap.appendChild(body);
  const order = ['coordinator', 'dispatcher'];
  const charts = $('charts');
  const before = [...charts.querySelectorAll('.chart')].find((c) => order.indexOf(name) >= 0 && order.indexOf(c.dataset.machine) === -1 || (order.indexOf(name) === -1 && order.indexOf(c.dataset.machine) === -1 && c.dataset.machine > name));
  charts.insertBefore(wrap, before || null);
  const opt = document.createElement('option');
  opt.value = name; opt.textContent = name; $('filter').appendChild(opt);
  const a = { machine, value: null, el: wrap, trail: [] };
  actors.set(name, a);
  return a;
}

function setState(name, machine, value) {
  const a = ensureActor(name, machine);
  a.value = value;
  const ids = new Set(activeIds(defs[machine].id, value));
  for (const s of a.el.querySelectorAll('.state')) {
    const full = s.classList.contains('root') ? defs[machine].id : defs[machine].id + '.' + s.dataset.state;
    s.classList.toggle('active', ids.has(full));
  }
  const top = topState(value);
  if (a.trail[a.trail.length - 1] !== top) {
    a.trail.push(top);
    if (a.trail.length > 40) a.trail.shift();
    a.el.querySelector('.trail').innerHTML = a.trail.map((t) => '<li>' + esc(t) + '</li>').join('');
  }
}

`;

/** Follows `/events`: the event list and its filter, the status (alarms, facts, devices, switches), the connection. */
const SCRIPT_FEED = `function addEvent(e) {
  const f = $('filter').value;
  const div = document.createElement('div');
  div.dataset.actor = e.actor;
  div.hidden = !!f && f !== e.actor;
  div.innerHTML = '<div>' + new Date(e.at).toISOString().slice(11, 23) + ' <b>' + esc(e.actor) + '</b> ' + esc(e.type) + '</div>' + (e.payload ? '<pre>' + esc(JSON.stringify(e.payload)) + '</pre>' : '');
  const box = $('events');
  box.prepend(div);
  while (box.childElementCount > 300) box.lastElementChild.remove();
}
$('filter').onchange = () => { const f = $('filter').value; for (const d of $('events').children) d.hidden = !!f && f !== d.dataset.actor; };

// the open alarms come with each status push (once a second), the oldest first
function setAlarms(list) {
  $('alarms').hidden = list.length === 0;
  $('alarms').firstElementChild.innerHTML = list.map((a) => '<li data-alarm="' + esc(a.id) + '"><b>' + esc(a.kind) + '</b>' + esc(a.text) + '<span class="since">since ' + new Date(a.since).toISOString().slice(11, 19) + '</span></li>').join('');
}

function setStatus(s) {
  setAlarms(s.alarms || []);
  $('f-epoch').textContent = s.assignment ? s.assignment.epoch : '–';
  $('f-agent').textContent = s.assignment ? s.assignment.agentId : 'none';
  $('f-phase').textContent = s.assignment ? s.assignment.phase : '–';
  $('f-parked').textContent = s.parked;
  $('f-depth').textContent = s.queueDepth == null ? '–' : s.queueDepth;
  $('f-leader').textContent = s.leading ? 'this runtime' : (s.leader || 'none');
  refreshDevices();
  refreshDeadLetters();
  setAudit(s.audit || []);
  const ms = (a, b) => (a && b ? (new Date(b) - new Date(a)) + ' ms' : '–');
  $('switches').tBodies[0].innerHTML = s.switches.map((w) => '<tr><td>' + esc(w.id) + '</td><td>' + esc(w.fromAgent) + ' → ' + esc(w.toAgent || '?') + '</td><td>' + w.epoch + '</td><td>' + ms(w.startedAt, w.drainingAt) + '</td><td>' + ms(w.drainingAt, w.replayingAt) + '</td><td>' + ms(w.replayingAt, w.completedAt) + '</td><td>' + w.moved + '</td><td>' + w.replayed + '</td></tr>').join('');
}

// the devices table follows the status pushes: /api/devices once per push, one request at a time
let devicesAsked = false;
const age = (ms) => (ms == null ? '' : ' (' + (ms < 10000 ? Math.round(ms) + ' ms' : Math.round(ms / 1000) + ' s') + ')');
function deviceDetail(d) {
  const since = (t) => (t > 0 ? ' since ' + new Date(t).toISOString().slice(11, 19) : '');
  if (d.blocked) return 'seq ' + d.blocked.seq + ' refused (' + (d.blocked.status == null ? 'no status' : 'status ' + d.blocked.status) + (d.blocked.response ? ': ' + d.blocked.response : '') + ')' + since(d.blocked.since) + '; to free: Retry (once the device accepts it) or Skip';
  if (d.retrying) return 'retrying seq ' + d.retrying.seq + ' (attempt ' + d.retrying.attempt + ': ' + d.retrying.reason + ')' + since(d.retrying.since);
  return d.lastError ? 'last error: ' + d.lastError.text : '';
}
async function refreshDevices() {
  if (devicesAsked) return;
  devicesAsked = true;
  try {
    const r = await fetch('/api/devices' + q);
    if (!r.ok) return;
    const list = await r.json();
    $('devices').tBodies[0].innerHTML = list.map((d) => '<tr><td>' + esc(d.deviceId) + '</td><td class="st-' + esc(d.state) + '">' + esc(d.state) + '</td><td>' + (d.nextSeq == null ? '–' : d.nextSeq) + ' / ' + d.watermark + '</td><td>' + (d.lag == null ? '–' : d.lag) + age(d.oldestUnappliedMs) + '</td><td>' + esc(deviceDetail(d)) + '</td><td>' + deviceButtons(d) + '</td></tr>').join('');
  } catch {
    // the next status push asks again
  } finally {
    devicesAsked = false;
  }
}

async function main() {
  const r = await fetch('/api/machines' + q);
  Object.assign(defs, await r.json());
  ensureActor('coordinator', 'coordinator');
  ensureActor('dispatcher', 'dispatcher');
  const es = new EventSource('/events' + q);
  es.onopen = () => { $('conn').className = 'conn up'; $('conn').textContent = '● live'; };
  es.onerror = () => { $('conn').className = 'conn down'; $('conn').textContent = '● reconnecting'; };
  es.addEventListener('snapshot', (m) => { const d = JSON.parse(m.data); setState(d.actor, d.machine, d.value); });
  es.addEventListener('event', (m) => addEvent(JSON.parse(m.data)));
  es.addEventListener('status', (m) => setStatus(JSON.parse(m.data)));
}
main();
`;

/** The whole page, the same for every request (the token, if any, is read from its own URL). */
export function inspectorPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>baton inspector</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
${STYLE}</style></head>
<body>
${MARKUP}<script>
${SCRIPT_CHARTS}${SCRIPT_ACTIONS}${SCRIPT_FEED}</script>
</body></html>`;
}
