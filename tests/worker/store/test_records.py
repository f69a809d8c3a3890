"""A batch's progress as `meetreg status` and the status page show it: what counts as done,
what is at work, and its JSON form; and when a meeting counts as registered."""

from __future__ import annotations

from worker.models import RowState
from worker.store.records import BatchStatus, MeetingRecord

READ_MS = 1_700_000_000_000


def test_only_final_rows_count_as_done_and_running_or_retrying_ones_as_at_work() -> None:
    counts = {"queued": 1, "running": 2, "retrying": 3, "created": 4, "failed": 5, "skipped": 6}
    status = BatchStatus("b", 21, counts)
    assert (status.done, status.working, status.finished) == (15, 5, False)
    assert BatchStatus("b", 15, counts).finished


def test_the_json_form_says_paused_only_when_not_cancelled_and_none_for_what_is_unknown() -> None:
    paused = BatchStatus("b", 2, {"running": 1}, paused="the last 20 rows failed")
    cancelled = BatchStatus("b", 2, {"running": 1}, paused="cancelled", cancelled=True)
    assert (paused.to_json_dict()["paused"], cancelled.to_json_dict()["paused"]) == (True, False)
    assert cancelled.to_json_dict()["paused_reason"] == "cancelled"

    unread = BatchStatus("b", 2, {"running": 1}).to_json_dict()
    assert unread["paused_reason"] is unread["undoes"] is unread["undone_by"] is None
    assert unread["oldest_running_s"] is unread["since_progress_s"] is None
    assert unread["last_progress_at"] is None and unread["operation"] == "create"


def test_times_are_read_on_redis_clock_in_tenths_of_a_second() -> None:
    status = BatchStatus(
        "b",
        2,
        {"running": 1},
        moved_ms=READ_MS - 12_345,
        oldest_working_ms=READ_MS - 65_432,
        read_ms=READ_MS,
    )
    shown = status.to_json_dict()
    assert (shown["since_progress_s"], shown["oldest_running_s"]) == (12.3, 65.4)
    assert shown["last_progress_at"] == status.last_progress_at != ""
    # A write stamped after the read is no negative wait.
    early = BatchStatus("b", 2, {}, moved_ms=READ_MS + 500, read_ms=READ_MS)
    assert early.since_progress_s == 0.0


def test_a_meeting_counts_as_registered_once_created_or_found_enabled() -> None:
    succeeded = {
        state: MeetingRecord(state=str(state)).succeeded
        for state in (RowState.CREATED, RowState.ALREADY_ENABLED, RowState.DISABLED)
    }
    assert succeeded == {
        RowState.CREATED: True,
        RowState.ALREADY_ENABLED: True,
        RowState.DISABLED: False,
    }
    assert not MeetingRecord(state="posting").succeeded
