// From the origin, not the page's address: a page opened as http://user:key@host/ would
// lend its credentials to a relative URL, and fetch() refuses any URL that holds them.
// The browser presents the sign-in it made for the page with each poll all the same.
const api = new URL(document.body.dataset.api, location.origin);
// As _note below: why a paused batch waits, or since when a stalled one has not moved.
function note(b) {
  if (b.state === 'paused') return b.paused_reason;
  if (!b.stalled) return '';
  return `stalled: no row has moved since ${b.last_progress_at.slice(11, 19)} UTC`;
}
function fill(scope, b) {
  scope.querySelectorAll('[data-count]').forEach(el => {
    el.textContent = b.counts[el.dataset.count] ?? '-';
  });
  scope.querySelectorAll('[data-field]').forEach(el => {
    const name = el.dataset.field;
    el.textContent = name === 'progress' ? `${b.done} / ${b.total}` :
      name === 'reason' ? note(b) : b[name];
    if (name === 'state') el.className = 'state ' + b.state;
  });
  scope.querySelectorAll('[data-bar]').forEach(el => {
    el.style.width = (b.total ? 100 * b.done / b.total : 100) + '%';
  });
}
function cell(text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}
function fillFailures(failures) {
  const body = document.getElementById('failures');
  const rows = failures.map(f => {
    const tr = document.createElement('tr');
    tr.append(cell(f.http_status), cell(f.code, 'id'), cell(f.rows, 'num'));
    return tr;
  });
  if (!rows.length) {
    const tr = document.createElement('tr');
    tr.append(cell('no failed rows', 'muted'));
    rows.push(tr);
  }
  body.replaceChildren(...rows);
}
const SVG = 'http://www.w3.org/2000/svg';
function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}
function drawChart(tp) {
  const svg = document.getElementById('chart');
  const W = 640, H = 220, L = 44, R = 12, T = 12, B = 26;
  const pts = tp.points;
  svg.replaceChildren();
  svg.append(svgEl('line', {x1: L, y1: H - B, x2: W - R, y2: H - B, class: 'axis'}));
  svg.append(svgEl('line', {x1: L, y1: T, x2: L, y2: H - B, class: 'axis'}));
  if (!pts.length) {
    svg.append(svgEl('text', {x: W / 2, y: H / 2, 'text-anchor': 'middle'}, 'no row finished yet'));
    return;
  }
  const max = Math.max(1, ...pts.map(p => p.rows));
  const x = i => L + (pts.length === 1 ? (W - L - R) / 2 : i * (W - L - R) / (pts.length - 1));
  const y = v => T + (H - T - B) * (1 - v / max);
  const line = pts.map((p, i) => `${x(i).toFixed(1)},${y(p.rows).toFixed(1)}`).join(' ');
  const area = `${x(0)},${H - B} ${line} ${x(pts.length - 1)},${H - B}`;
  svg.append(svgEl('polygon', {points: area, class: 'area'}));
  svg.append(svgEl('polyline', {points: line, class: 'line'}));
  const time = t => t.slice(11, 19);
  pts.forEach((p, i) => {
    const dot = svgEl('circle', {cx: x(i), cy: y(p.rows), r: 3, class: 'point'});
    dot.append(svgEl('title', {}, `${time(p.t)} UTC: ${p.rows} rows`));
    svg.append(dot);
  });
  svg.append(svgEl('text', {x: L - 6, y: T + 4, 'text-anchor': 'end'}, max));
  svg.append(svgEl('text', {x: L - 6, y: H - B, 'text-anchor': 'end'}, 0));
  svg.append(svgEl('text', {x: L, y: H - 8}, time(pts[0].t) + ' UTC'));
  svg.append(svgEl('text', {x: W - R, y: H - 8, 'text-anchor': 'end'},
    `${time(pts[pts.length - 1].t)} UTC, rows per ${tp.interval_s} s`));
}
async function poll() {
  let data;
  try {
    const answer = await fetch(api, {cache: 'no-store'});
    if (!answer.ok) return;
    data = await answer.json();
  } catch (e) { return; }
  if (data.batches) {
    const rows = document.querySelectorAll('tr[data-batch]');
    const shown = new Map([...rows].map(tr => [tr.dataset.batch, tr]));
    if (data.batches.some(b => !shown.has(b.batch_id))) { location.reload(); return; }
    data.batches.forEach(b => fill(shown.get(b.batch_id), b));
  } else {
    fill(document, data);
    fillFailures(data.failures);
    drawChart(data.throughput);
  }
}
poll();
setInterval(poll, POLL_MS);
