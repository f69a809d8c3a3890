"""How a running batch is shown where there is no terminal: one plain line per few seconds,
and always the last; and the durations and counts those lines are made of."""

from __future__ import annotations

import io

from pipeline_helpers import HEADER, ORGANIZER, Batch, Work
from rich.console import Console

from jobs.cli.progress import BatchProgress, duration_text
from worker.runtime import Runtime
from worker.simulator import SimulatorServer


def test_durations_are_as_precise_as_a_reader_needs() -> None:
    assert [duration_text(s) for s in (0, 42.9, 312, 3600 * 3 + 7 * 60 + 5)] == [
        "0 s",
        "42 s",
        "5 min 12 s",
        "3 h 7 min",
    ]


def test_without_a_terminal_progress_is_plain_lines_and_the_finished_batch_is_always_said(
    sim: SimulatorServer, runtime: Runtime, batch: Batch, work: Work
) -> None:
    for meeting in ("m-1", "m-2"):
        sim.state.add_meeting(ORGANIZER, meeting)
    batch_id = batch(HEADER + f"{ORGANIZER},m-1,\n{ORGANIZER},m-2,\n{ORGANIZER},,\n")
    shown = io.StringIO()
    console = Console(file=shown, force_terminal=False, width=200)

    with BatchProgress(runtime.store, batch_id, console) as progress:
        assert progress.update() is False
        assert progress.update() is False  # within PLAIN_EVERY_S of the last line: not said
        work(batch_id)
        assert progress.update() is True  # finished: said at once

    first, last = shown.getvalue().splitlines()
    assert first.startswith(f"{batch_id}: 1/3 done (")
    assert last.startswith(f"{batch_id}: 3/3 done (")
    assert "created 2" in last and "invalid 1" in last
