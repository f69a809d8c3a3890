"""The status page's HTML: the batch list at `/` and one batch at `/batches/{id}`.

Everything is inline (no CDN, no framework): the machine serving it may reach no
internet, and neither may the operator's browser. The pages are whole when served; a
small script then polls the JSON endpoints every 2 s, updates the numbers and draws the
throughput chart. Every value that came from a file, a caller or Graph goes through
`html.escape` here and through `textContent` in the script: ids can be hostile.
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

from worker.models import Operation

POLL_MS = 2000
# The list shows the outcomes one by one and the rows still at work together; an undo
# batch (`meetreg disable`) counts other outcomes, shown on its own page.
_OUTCOME_COLUMNS = [str(state) for state in Operation.CREATE.states if state.is_final]

_CSS = """
:root { --ink: #1f2933; --muted: #616e7c; --line: #e4e7eb; --accent: #2563eb; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); background: #f5f7fa; }
header { background: #1f2933; color: #fff; padding: 12px 24px; }
header a { color: #fff; text-decoration: none; font-weight: 600; }
main { max-width: 1280px; margin: 0 auto; padding: 20px 24px; }
h1 { font-size: 20px; margin: 0 0 16px; word-break: break-all; }
h2 { font-size: 16px; margin: 0 0 12px; }
section { overflow-x: auto; background: #fff; border: 1px solid var(--line); border-radius: 8px;
          padding: 16px 20px; margin-bottom: 16px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line);
         vertical-align: middle; }
th { color: var(--muted); font-weight: 600; font-size: 12px; text-transform: uppercase; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.id { word-break: break-all; min-width: 200px; max-width: 360px; }
.source { font-size: 12px; }
.nowrap { white-space: nowrap; }
.muted { color: var(--muted); }
.bar { background: var(--line); border-radius: 4px; height: 8px; min-width: 120px;
       overflow: hidden; }
.bar > div { background: var(--accent); height: 100%; }
.state { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
         font-weight: 600; background: #e0e7ff; color: #3730a3; }
.state.finished { background: #dcfce7; color: #166534; }
.state.paused { background: #fef3c7; color: #92400e; }
.state.cancelled { background: #fee2e2; color: #991b1b; }
.reason { color: #92400e; }
.failed { color: #b91c1c; font-weight: 600; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(120px, 1fr)); gap: 8px; }
.grid div { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.grid b { display: block; font-size: 18px; font-variant-numeric: tabular-nums; }
.notice { background: #dcfce7; border: 1px solid #86efac; border-radius: 6px;
          padding: 8px 12px; margin-bottom: 16px; }
form { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
input[type=password] { padding: 6px 8px; border: 1px solid #cbd2d9; border-radius: 4px;
                       min-width: 260px; }
button, .button { background: var(--accent); color: #fff; border: 0; border-radius: 4px;
                  padding: 7px 14px; font: inherit; cursor: pointer; text-decoration: none; }
a.button { background: #fff; color: var(--accent); border: 1px solid var(--accent); }
svg { width: 100%; height: auto; display: block; }
svg .axis { stroke: #cbd2d9; } svg .line { fill: none; stroke: var(--accent); stroke-width: 2; }
svg .area { fill: #dbeafe; } svg .point { fill: var(--accent); }
svg text { fill: var(--muted); font-size: 11px; }
"""

# Fills every element marked data-field / data-count / data-bar of `scope` from a batch's
# JSON; on the batch page also the failures and the chart. Text only, never innerHTML.
SCRIPT = (
    f"const POLL_MS = {POLL_MS};"
    + """
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
"""
)


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _page(title: str, body: str, api: str = "") -> str:
    api_attr = f' data-api="{_e(api)}"' if api else ""
    script = f"<script>{SCRIPT}</script>" if api else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f'<body{api_attr}><header><a href="/">meetreg status</a></header>'
        f"<main>{body}</main>{script}</body></html>"
    )


def batch_url(batch_id: str, suffix: str = "") -> str:
    return f"/batches/{quote(batch_id, safe='')}{suffix}"


def _when(stamp: str) -> str:
    return f"{stamp[:19].replace('T', ' ')} UTC" if stamp else ""


def _note(batch: dict[str, Any]) -> str:
    """Why a paused batch waits, or since when a stalled one has not moved (the script's
    `note` says the same as it polls)."""
    if batch["state"] == "paused":
        return str(batch["paused_reason"] or "")
    if not batch["stalled"]:
        return ""
    return f"stalled: no row has moved since {batch['last_progress_at'][11:19]} UTC"


def _state(batch: dict[str, Any]) -> str:
    state = batch["state"]
    return (
        f'<span class="state {_e(state)}" data-field="state">{_e(state)}</span>'
        f' <span class="reason" data-field="reason">{_e(_note(batch))}</span>'
    )


def _progress(batch: dict[str, Any]) -> str:
    width = 100 * batch["done"] / batch["total"] if batch["total"] else 100
    return (
        f'<div class="bar"><div data-bar style="width:{width:.1f}%"></div></div>'
        f'<span class="muted" data-field="progress">{batch["done"]} / {batch["total"]}</span>'
    )


def batches_page(batches: list[dict[str, Any]]) -> str:
    """`/`: the most recent batches (`status_view.batch_summary` dicts), newest first."""
    head = "".join(
        f'<th class="num">{_e(name.replace("_", " "))}</th>' for name in _OUTCOME_COLUMNS
    )
    rows = []
    for batch in batches:
        counts = "".join(
            f'<td class="num" data-count="{name}">{batch["counts"].get(name, "-")}</td>'
            for name in _OUTCOME_COLUMNS
        )
        counts += f'<td class="num" data-field="pending">{batch["pending"]}</td>'
        rows.append(
            f'<tr data-batch="{_e(batch["batch_id"])}">'
            f'<td class="id"><a href="{_e(batch_url(batch["batch_id"]))}">'
            f"{_e(batch['batch_id'])}</a>"
            f'<div class="muted source">{_e(batch["source"])}</div></td>'
            f'<td class="muted nowrap">{_e(_when(batch["created_at"]))}</td>'
            f"<td>{_state(batch)}</td><td>{_progress(batch)}</td>{counts}</tr>"
        )
    if not rows:
        rows.append('<tr><td colspan="10" class="muted">no batches yet</td></tr>')
    body = (
        "<h1>Batches</h1><section><table><thead><tr><th>batch</th><th>created</th>"
        f'<th>state</th><th>progress</th>{head}<th class="num">to do</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )
    return _page("meetreg: batches", body, api="/api/batches")


def batch_page(batch: dict[str, Any], retried: int | None) -> str:
    """`/batches/{id}`: one batch (`status_view.batch_detail`); `retried`: how many failed
    rows the retry just enqueued again, to say so."""
    batch_id = batch["batch_id"]
    notice = (
        f'<div class="notice" id="notice">{retried} failed rows enqueued again.</div>'
        if retried is not None
        else ""
    )
    counts = "".join(
        f'<div class="{"failed" if name == "failed" else ""}">{_e(name.replace("_", " "))}'
        f'<b data-count="{name}">{count}</b></div>'
        for name, count in batch["counts"].items()
    )
    failures = (
        "".join(
            f'<tr><td>{_e(group["http_status"])}</td><td class="id">{_e(group["code"])}</td>'
            f'<td class="num">{group["rows"]}</td></tr>'
            for group in batch["failures"]
        )
        or '<tr><td class="muted">no failed rows</td></tr>'
    )
    body = (
        f"<h1>Batch {_e(batch_id)}</h1>{notice}"
        f"<section><p>{_state(batch)}</p>{_progress(batch)}"
        f'<p class="muted">source {_e(batch["source"])}, created {_e(_when(batch["created_at"]))}'
        f'</p><div class="grid">{counts}</div></section>'
        "<section><h2>Rows finished over time</h2>"
        '<svg id="chart" viewBox="0 0 640 220" role="img" aria-label="rows finished over time">'
        "</svg></section>"
        "<section><h2>Failures by Graph error</h2><table><thead><tr><th>HTTP status</th>"
        '<th>error code</th><th class="num">rows</th></tr></thead>'
        f'<tbody id="failures">{failures}</tbody></table></section>'
        "<section><h2>Report</h2>"
        "<p>One record per input row, as <code>meetreg report</code> writes it."
        f'</p><p><a class="button" href="{_e(batch_url(batch_id, "/report.csv"))}">CSV</a> '
        f'<a class="button" href="{_e(batch_url(batch_id, "/report.json"))}">JSON</a></p>'
        "</section><section><h2>Retry failed rows</h2>"
        f'<form method="post" action="{_e(batch_url(batch_id, "/retry"))}">'
        '<input type="password" name="api_key" placeholder="MEETREG_API_KEY" '
        'autocomplete="off" required aria-label="API key">'
        '<button type="submit" id="retry">Retry failed rows</button></form></section>'
    )
    return _page(f"meetreg: batch {batch_id}", body, api=f"/api{batch_url(batch_id)}")


def message_page(title: str, message: str, back: str = "/") -> str:
    """A refusal or a miss, for a person at a browser."""
    body = (
        f"<h1>{_e(title)}</h1><section><p>{_e(message)}</p>"
        f'<p><a href="{_e(back)}">back</a></p></section>'
    )
    return _page(f"meetreg: {title}", body)
