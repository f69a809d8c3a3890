"""How `meetreg nightly --once` shows its report: plain log lines when not on a terminal,
tables of the files and the last 24 hours' batches on one."""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import redis
from pipeline_helpers import ORGANIZER
from rich.console import Console

from jobs.enqueue import Chunk
from jobs.nightly.job import NightlyDeps, NightlyReport, run_nightly
from jobs.nightly.view import show_report
from worker.graph.calendar import CalendarApi
from worker.settings import load_settings
from worker.store.outcome_store import open_store


def no_calendar() -> contextlib.AbstractContextManager[CalendarApi]:
    raise AssertionError("no subscriptions: no Graph client may be built")


def report_of_one_good_and_one_broken_file(redis_url: str, tmp_path: Path) -> NightlyReport:
    drop = tmp_path / "drop"
    drop.mkdir()
    then = time.time() - 60  # old enough to be whole
    for name, body in (
        ("good.csv", f"user_id,meeting_id\n{ORGANIZER},m-1\n{ORGANIZER},m-2\n"),
        ("broken.csv", "no,header\n"),
    ):
        (drop / name).write_text(body, encoding="utf-8")
        os.utime(drop / name, (then, then))
    settings = load_settings(redis_url=redis_url, drop_dir=drop)

    def publish(chunks: Iterable[Chunk]) -> int:
        return len(list(chunks))

    report = run_nightly(
        NightlyDeps(settings, open_store(settings), publish, no_calendar), now=datetime.now(UTC)
    )
    assert report is not None
    return report


def shown(report: NightlyReport, *, terminal: bool) -> str:
    text = io.StringIO()
    show_report(report, Console(file=text, force_terminal=terminal, width=200, color_system=None))
    return text.getvalue()


def test_off_a_terminal_the_report_is_the_lines_the_worker_logs(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    report = report_of_one_good_and_one_broken_file(redis_url, tmp_path)
    assert shown(report, terminal=False).splitlines() == [line for _, line in report.log_lines()]


def test_on_a_terminal_the_files_and_batches_are_tables(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    report = report_of_one_good_and_one_broken_file(redis_url, tmp_path)
    (good,) = [outcome for outcome in report.files if outcome.name == "good.csv"]

    text = shown(report, terminal=True)

    assert text.startswith("nightly run of ")
    assert "subscriptions: skipped (no subscriptions)" in text
    files = next(line for line in text.splitlines() if "good.csv" in line)
    assert good.batch_id in files and "processed/good.csv" in files
    assert " 2 " in files  # its rows
    assert any("broken.csv" in line and "rejected" in line for line in text.splitlines())
    assert any(line.startswith("last 24 h") for line in text.splitlines())
    assert any("1 batches" in line for line in text.splitlines())
