"""`meetreg nightly`: the nightly job, run now or its schedule shown."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from jobs.cli.app import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_ROWS_FAILED,
    cli,
    err,
    out,
    reachable_store,
    refusals,
)
from jobs.sources.drop_folder import check_folder
from worker.publish import publish_chunks
from worker.schedule import next_run
from worker.settings import Settings, load_settings

if TYPE_CHECKING:
    from worker.graph.calendar import CalendarApi


@cli.command()
@refusals
def nightly(
    once: Annotated[bool, typer.Option("--once", help="Run the nightly job now.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """The nightly job: every CSV in MEETREG_DROP_DIR becomes a batch (then moves to
    processed/, or to rejected/ with its reason), subscriptions are renewed, and the last
    24 hours are summed up. `celery -A worker.app beat` runs it at MEETREG_NIGHTLY_CRON;
    without --once this shows when. It only enqueues: workers do the rows.
    Exit 0 every file enqueued or none to take; 1 a file rejected, or a step failed;
    2 configuration refused, or another nightly run in progress.
    """
    from jobs.nightly.job import NightlyDeps, run_nightly
    from jobs.nightly.view import show_report

    settings = load_settings()
    if not once:
        _show_schedule(settings, as_json)
        return
    settings.require_redis()
    check_folder(settings.require_drop_dir())
    store = reachable_store(settings)
    deps = NightlyDeps(
        settings=settings,
        store=store,
        publish=publish_chunks,
        calendar=lambda: _calendar(settings),
    )
    report = run_nightly(deps, now=datetime.now(settings.zone))
    if report is None:
        err.print("meetreg: another nightly run is in progress; try again later", markup=False)
        raise typer.Exit(EXIT_REFUSED)
    if as_json:
        out.print(json.dumps(report.to_json_dict()), markup=False)
    else:
        show_report(report, out)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_ROWS_FAILED)


def _show_schedule(settings: Settings, as_json: bool) -> None:
    upcoming = next_run(settings.nightly, datetime.now(settings.zone))
    if as_json:
        schedule = {
            "cron": settings.nightly_cron,
            "timezone": settings.timezone,
            "next_run": upcoming.isoformat(),
            "drop_dir": str(settings.drop_dir) if settings.drop_dir else None,
        }
        out.print(json.dumps(schedule), markup=False)
        return
    out.print(
        f"next run: {upcoming:%Y-%m-%d %H:%M} {settings.timezone} "
        f"(MEETREG_NIGHTLY_CRON={settings.nightly_cron!r}), sent by `celery -A worker.app beat`",
        markup=False,
    )
    out.print(f"drop folder: {settings.drop_dir or 'MEETREG_DROP_DIR is not set'}", markup=False)
    out.print("meetreg nightly --once runs it now", markup=False)


@contextlib.contextmanager
def _calendar(settings: Settings) -> Iterator[CalendarApi]:
    from worker.graph.calendar import build_calendar_api

    calendar = build_calendar_api(settings)
    try:
        yield calendar
    finally:
        calendar.http.close()
