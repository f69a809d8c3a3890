"""The status page's HTML: the batch list at `/` and one batch at `/batches/{id}`.

Everything is inline (no CDN, no framework): the machine serving it may reach no
internet, and neither may the operator's browser. The pages are whole when served; a
small script then polls the JSON endpoints every 2 s, updates the numbers and draws the
throughput chart. Every value that came from a file, a caller or Graph goes through
`html.escape` here and through `textContent` in the script: ids can be hostile.
"""

from __future__ import annotations

from html import escape
from importlib.resources import files
from typing import Any
from urllib.parse import quote

from worker.models import Operation

POLL_MS = 2000
# The list shows the outcomes one by one and the rows still at work together; an undo
# batch (`meetreg disable`) counts other outcomes, shown on its own page.
_OUTCOME_COLUMNS = [str(state) for state in Operation.CREATE.states if state.is_final]
# A registrant batch's states in the same columns: made, found, skipped, failed, invalid.
_SAME_COLUMN = {
    str(Operation.REGISTER.made): str(Operation.CREATE.made),
    str(Operation.REGISTER.found): str(Operation.CREATE.found),
}

# Read once, at import: the files sit beside this module (in the wheel too).
_STATIC = files("jobs.http") / "static"
_CSS = (_STATIC / "status.css").read_text(encoding="utf-8")
# Fills every element marked data-field / data-count / data-bar of `scope` from a batch's
# JSON; on the batch page also the failures and the chart. Text only, never innerHTML.
SCRIPT = f"const POLL_MS = {POLL_MS};\n" + (_STATIC / "status.js").read_text(encoding="utf-8")


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _page(title: str, body: str, api: str = "") -> str:
    api_attr = f' data-api="{_e(api)}"' if api else ""
    script = f"<script>{SCRIPT}</script>" if api else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>\n{_CSS}</style></head>"
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


def _heading(column: str) -> str:
    """A column's heading, naming a registrant batch's state where it shares the column."""
    shared = [their for their, ours in _SAME_COLUMN.items() if ours == column]
    return " / ".join([column, *shared]).replace("_", " ")


def batches_page(batches: list[dict[str, Any]]) -> str:
    """`/`: the most recent batches (`status_view.batch_summary` dicts), newest first."""
    head = "".join(f'<th class="num">{_e(_heading(name))}</th>' for name in _OUTCOME_COLUMNS)
    rows = []
    for batch in batches:
        names = {_SAME_COLUMN.get(name, name): name for name in batch["counts"]}
        counts = "".join(
            f'<td class="num" data-count="{names.get(column, column)}">'
            f"{batch['counts'].get(names.get(column, column), '-')}</td>"
            for column in _OUTCOME_COLUMNS
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
