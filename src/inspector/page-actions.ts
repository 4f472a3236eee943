/**
 * The inspector page's operator buttons, a part of its script (page.ts, whose other parts define `$`,
 * `esc`, `q`, `token` and `refreshDevices`): pause, resume, retry and skip per device, resend and
 * drop per dead letter (drop asks for a reason), handover; the dead letters table and the audit list.
 * Each button POSTs JSON to its action's /api/ route with the token the page was opened with; the
 * answer (or the error's words) shows next to the Handover button.
 */
export const SCRIPT_ACTIONS = `const auth = token ? { authorization: 'Bearer ' + token } : {};
const btn = (act, label, data) => '<button data-act="' + act + '"' + Object.entries(data).map(([k, v]) => ' data-' + k + '="' + esc(v) + '"').join('') + '>' + label + '</button> ';
function deviceButtons(d) {
  const one = { device: d.deviceId };
  if (d.state === 'paused') return btn('resume', 'Resume', one);
  return btn('pause', 'Pause', one) + (d.state === 'blocked' ? btn('retry', 'Retry', one) + btn('skip', 'Skip', one) : '');
}
function deadLetterButtons(x) {
  const kind = x.resolution ? x.resolution.kind : null;
  const one = { id: x.id };
  return (kind === null || kind === 'skipped' || kind === 'dropped' ? btn('resend', 'Resend', one) : '') + (kind === null || kind === 'skipped' ? btn('drop', 'Drop', one) : '');
}
function settledAs(x) {
  const r = x.resolution;
  return r ? r.kind + (r.seq != null ? ' as seq ' + r.seq : '') + ' by ' + r.by : 'open';
}
let deadAsked = false;
async function refreshDeadLetters() {
  if (deadAsked) return;
  deadAsked = true;
  try {
    const r = await fetch('/api/dead-letters?limit=50' + (q ? '&' + q.slice(1) : ''));
    if (!r.ok) return;
    const list = await r.json();
    $('dead-letters').tBodies[0].innerHTML = list.map((x) => '<tr><td>' + x.id + '</td><td>' + esc(x.deviceId) + ' / ' + x.seq + '</td><td>' + esc((x.status == null ? 'no status' : x.status) + (x.response ? ': ' + x.response.slice(0, 120) : '')) + '</td><td>' + esc(settledAs(x)) + '</td><td>' + deadLetterButtons(x) + '</td></tr>').join('');
  } catch {
    // the next status push asks again
  } finally {
    deadAsked = false;
  }
}
function setAudit(rows) {
  $('audit').tBodies[0].innerHTML = rows.map((e) => '<tr><td>' + new Date(e.at).toISOString().slice(11, 19) + '</td><td>' + esc(e.action) + '</td><td>' + esc(e.target) + '</td><td>' + esc(e.by) + '</td><td>' + esc(e.outcome) + '</td><td>' + esc(e.detail) + '</td></tr>').join('');
}
function shown(ok, text) {
  $('act-result').className = ok ? 'ok' : 'bad';
  $('act-result').textContent = text;
}
/** the route and body of a button's action, or null when the operator cancelled it */
function request(b) {
  const dev = encodeURIComponent(b.dataset.device || '');
  switch (b.dataset.act) {
    case 'pause': case 'resume': return ['/api/devices/' + dev + '/' + b.dataset.act, {}];
    case 'retry': return ['/api/devices/' + dev + '/unblock', { action: 'retry' }];
    case 'skip': return confirm('Skip the refused message of ' + b.dataset.device + '? It stays dead-lettered and the line goes on.') ? ['/api/devices/' + dev + '/unblock', { action: 'skip' }] : null;
    case 'resend': return ['/api/dead-letters/' + b.dataset.id + '/resend', {}];
    case 'drop': {
      const reason = prompt('Why drop dead letter ' + b.dataset.id + '? (the audit keeps it)');
      return reason && reason.trim() ? ['/api/dead-letters/' + b.dataset.id + '/drop', { reason }] : null;
    }
    case 'handover': {
      const to = $('handover-to').value.trim();
      return confirm('Hand the stream over to ' + (to || 'an idle agent') + '?') ? ['/api/handover', to ? { to } : {}] : null;
    }
  }
  return null;
}
document.addEventListener('click', async (ev) => {
  const b = ev.target.closest && ev.target.closest('button[data-act]');
  if (!b) return;
  const asked = request(b);
  if (!asked) return;
  b.disabled = true;
  try {
    const r = await fetch(asked[0], { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify(asked[1]) });
    const j = await r.json();
    if (j.error) shown(false, j.error.message);
    else shown(true, j.outcome + ': ' + j.detail);
  } catch (e) {
    shown(false, 'the request failed: ' + e);
  } finally {
    b.disabled = false;
    refreshDevices();
    refreshDeadLetters();
  }
});

`;
