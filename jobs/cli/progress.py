"""How a running batch is shown: a Rich progress bar on a terminal, plain lines elsewhere."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from worker.store.outcome_store import OutcomeStore
from worker.store.records import BatchStatus

PLAIN_EVERY_S = 5.0
STALL_ADVICE = "check that workers are running (celery -A worker.app worker) and what they log"


def counts_text(status: BatchStatus) -> str:
    """`created 120, failed 2, ...`: the states that hold any row, in the batch's order."""
    return ", ".join(f"{state} {count}" for state, count in status.counts.items() if count)


def duration_text(seconds: float) -> str:
    """`42 s`, `5 min 12 s`, `3 h 7 min`: as precise as a person reading it needs."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def working_text(status: BatchStatus) -> str:
    """`2 rows in workers' hands, the oldest for 5 min 12 s`; "" when none is."""
    oldest_s = status.oldest_running_s
    if not status.working or oldest_s is None:
        return ""
    rows = f"{status.working} row{'s' if status.working > 1 else ''}"
    return f"{rows} in workers' hands, the oldest for {duration_text(oldest_s)}"


def stall_text(status: BatchStatus) -> str:
    """Why the batch counts as stalled; "" when it does not."""
    if not status.stalled or status.since_progress_s is None:
        return ""
    return f"no row has moved for {duration_text(status.since_progress_s)} ({working_text(status)})"


class BatchProgress:
    """`update()` reads the batch's counters (one O(1) read) and shows them; True when the
    batch is finished, or paused (nothing more will happen until someone resumes it)."""

    def __init__(self, store: OutcomeStore, batch_id: str, console: Console) -> None:
        self.store = store
        self.batch_id = batch_id
        self.console = console
        self.started = time.monotonic()
        self._last_plain = 0.0
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self.last: BatchStatus | None = None

    def __enter__(self) -> BatchProgress:
        if self.console.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[counts]}"),
                console=self.console,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.batch_id, total=None, counts="")
        return self

    def update(self) -> bool:
        status = self.store.batch_status(self.batch_id)
        self.last = status
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task, total=status.total, completed=status.done, counts=counts_text(status)
            )
        else:
            now = time.monotonic()
            if status.finished or now - self._last_plain >= PLAIN_EVERY_S:
                self._last_plain = now
                self.console.print(
                    f"{self.batch_id}: {status.done}/{status.total} done ({counts_text(status)})",
                    highlight=False,
                    soft_wrap=True,
                )
        return status.finished or bool(status.paused)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started


def summary_table(status: BatchStatus, elapsed_s: float | None = None) -> Table:
    table = Table(title=f"batch {status.batch_id}", show_header=True)
    table.add_column("outcome")
    table.add_column("rows", justify="right")
    for state, count in status.counts.items():
        table.add_row(state, str(count))
    table.add_row("total", str(status.total), end_section=True)
    if elapsed_s is not None:
        rate = status.total / elapsed_s if elapsed_s > 0 else 0.0
        table.caption = f"{elapsed_s:.1f} s wall time, {rate:.0f} rows/s"
    return table
