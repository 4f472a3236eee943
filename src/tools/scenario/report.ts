/** Scenario reports: a terminal summary, and a self-contained HTML page with the timeline (no network). */
import type { ScenarioReport } from './types.ts';

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const counts = (c: Record<string, unknown>) =>
  Object.entries(c)
    .filter(([k]) => k !== 'name' && k !== 'ok')
    .map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : v}`)
    .join(', ');

/** The summary table printed at the end of `baton scenario run`. */
export function summary(r: ScenarioReport): string {
  const lines = [`scenario ${r.name}: ${r.ok ? 'PASSED' : 'FAILED'}`, ''];
  for (const c of r.checks) lines.push(`  ${c.ok ? 'ok  ' : 'FAIL'}  ${c.name.padEnd(26)} ${counts(c)}`);
  lines.push('');
  lines.push(`  throughput ${r.figures.throughputPerSec} msg/s applied; run ${(r.figures.durationMs / 1000).toFixed(1)} s` + (r.figures.killToResumeMs !== null ? `; first fault → next agent writing ${r.figures.killToResumeMs} ms` : ''));
  for (const w of r.figures.switches) {
    lines.push(`  switch ${w.from} → ${w.to} (epoch ${w.epoch}): switching ${w.switchingMs ?? '-'} ms, draining ${w.drainingMs ?? '-'} ms (moved ${w.moved}), replaying ${w.replayingMs ?? '-'} ms (replayed ${w.replayed}); ${w.reason}`);
  }
  return lines.join('\n');
}

/** A page that opens with no network: inline SVG chart of throughput per device, phases, agents, faults; the checks. */
export function htmlReport(r: ScenarioReport): string {
  const W = 1000;
  const series = Object.entries(r.throughput);
  const seconds = Math.max(1, ...series.map(([, s]) => s.length));
  const max = Math.max(1, ...series.flatMap(([, s]) => s));
  const H = 220;
  const x = (t: number) => 40 + (t / seconds) * (W - 60);
  const colors = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
  const lines = series
    .map(([id, s], i) => `<polyline fill="none" stroke="${colors[i % colors.length]}" stroke-width="1.5" points="${s.map((v, t) => `${x(t + 0.5).toFixed(1)},${(H - 20 - (v / max) * (H - 40)).toFixed(1)}`).join(' ')}"><title>${esc(id)}</title></polyline>`)
    .join('\n');
  const legend = series.map(([id], i) => `<span style="color:${colors[i % colors.length]}">■ ${esc(id)}</span>`).join(' ');
  const lanes: Array<[string, string]> = [['fault', 'faults'], ['phase', 'coordinator'], ['agent', 'agents'], ['leader', 'runtimes'], ['device', 'device lines']];
  const marks = lanes
    .map(([kind, title], lane) => {
      const y = H + 30 + lane * 40;
      const items = r.timeline
        .filter((e) => e.kind === kind)
        // labels of close marks are staggered so they stay readable
        .map((e, i) => `<g><line x1="${x(e.t / 1000)}" x2="${x(e.t / 1000)}" y1="${y - 12}" y2="${y + 12}" stroke="#444"/><text x="${x(e.t / 1000) + 3}" y="${y - 6 + (i % 3) * 10}" font-size="10">${esc(e.text)}</text></g>`)
        .join('');
      return `<text x="0" y="${y + 4}" font-size="11" font-weight="bold">${title}</text>${items}`;
    })
    .join('\n');
  const ticks = Array.from({ length: Math.min(seconds, 20) + 1 }, (_, i) => Math.round((i * seconds) / Math.min(seconds, 20)))
    .map((t) => `<text x="${x(t)}" y="${H - 5}" font-size="10" text-anchor="middle">${t}s</text>`)
    .join('');
  const checkRows = r.checks.map((c) => `<tr><td class="${c.ok ? 'ok' : 'bad'}">${c.ok ? 'ok' : 'FAILED'}</td><td>${esc(c.name)}</td><td>${esc(counts(c))}</td></tr>`).join('');
  const switchRows = r.figures.switches
    .map((w) => `<tr><td>${esc(`${w.from} → ${w.to}`)}</td><td>${w.epoch}</td><td>${w.switchingMs ?? '-'}</td><td>${w.drainingMs ?? '-'}</td><td>${w.replayingMs ?? '-'}</td><td>${w.moved}</td><td>${w.replayed}</td><td>${esc(w.reason)}</td></tr>`)
    .join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>baton scenario ${esc(r.name)}</title>
<style>body{font:13px system-ui,sans-serif;margin:20px;color:#222}table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}.ok{color:#1a7f37;font-weight:bold}.bad{color:#cf222e;font-weight:bold}svg{background:#fafafa;border:1px solid #ddd}</style></head>
<body><h1>scenario ${esc(r.name)}: <span class="${r.ok ? 'ok' : 'bad'}">${r.ok ? 'passed' : 'FAILED'}</span></h1>
<p>throughput ${r.figures.throughputPerSec} msg/s applied · run ${(r.figures.durationMs / 1000).toFixed(1)} s${r.figures.killToResumeMs !== null ? ` · first fault → next agent writing ${r.figures.killToResumeMs} ms` : ''}</p>
<h2>Timeline</h2><p>applied writes per second, per device (peak ${max}/s) ${legend}</p>
<svg id="timeline" width="${W}" height="${H + 30 + lanes.length * 40}" xmlns="http://www.w3.org/2000/svg">
<line x1="40" x2="${W - 20}" y1="${H - 20}" y2="${H - 20}" stroke="#999"/>${ticks}
${lines}
${marks}
</svg>
<h2>Checks</h2><table id="checks"><tr><th></th><th>check</th><th>counts</th></tr>${checkRows}</table>
<h2>Switches</h2><table><tr><th>from → to</th><th>epoch</th><th>switching ms</th><th>draining ms</th><th>replaying ms</th><th>moved</th><th>replayed</th><th>reason</th></tr>${switchRows}</table>
</body></html>`;
}
