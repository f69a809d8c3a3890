"""How `meetreg nightly --once` shows its report: Rich tables on a terminal, the same lines
the worker logs elsewhere (`--json`: one JSON object, see NightlyReport.to_json_dict)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from jobs.nightly.job import NightlyReport, StepStatus, stamp


def show_report(report: NightlyReport, console: Console) -> None:
    if not console.is_terminal:
        for _, line in report.log_lines():
            console.print(line, markup=False)
        return
    console.print(f"nightly run of {stamp(report.started_at)}", markup=False)
    console.print(_files_table(report))
    renewal = report.renewal
    if report.renewal_step.status is StepStatus.DONE:
        console.print(
            f"subscriptions: {len(renewal.renewed)} renewed, {len(renewal.recreated)} "
            f"recreated, {len(renewal.failed)} failed",
            markup=False,
        )
    else:
        console.print(
            f"subscriptions: {report.renewal_step.status} ({report.renewal_step.detail})",
            markup=False,
        )
    for subscription_id, reason in renewal.failed.items():
        console.print(f"  {subscription_id}: {reason}", markup=False)
    console.print(_batches_table(report))


def _files_table(report: NightlyReport) -> Table:
    step = report.files_step
    title = "files" if step.status is StepStatus.DONE else f"files: {step.status} ({step.detail})"
    table = Table(title=title, title_justify="left")
    for column in ("file", "result", "batch", "rows", "moved to", "error"):
        table.add_column(column, justify="right" if column == "rows" else "left")
    for outcome in report.files:
        table.add_row(
            outcome.name,
            str(outcome.result),
            outcome.batch_id,
            str(outcome.rows) if outcome.batch_id else "",
            outcome.moved_to,
            outcome.error,
        )
    return table


def _batches_table(report: NightlyReport) -> Table:
    step = report.summary_step
    title = "last 24 h" if step.status is StepStatus.DONE else f"last 24 h: {step.detail}"
    table = Table(title=title, title_justify="left")
    table.add_column("batch")
    table.add_column("rows", justify="right")
    states = report.states()
    for state in states:
        table.add_column(str(state), justify="right")
    table.add_column("finished")
    for batch in report.batches:
        table.add_row(
            batch.batch_id,
            str(batch.total),
            *(str(batch.counts.get(state, 0)) for state in states),
            "yes" if batch.finished else "no",
        )
    totals = report.totals()
    table.add_section()
    table.add_row(
        f"{len(report.batches)} batches",
        str(totals["total"]),
        *(str(totals[state]) for state in states),
        "",
    )
    return table
