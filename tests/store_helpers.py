"""Rows for outcome-store tests."""

from __future__ import annotations

from worker.models import RowRecord, RowState


def row(seq: int, status: RowState = RowState.QUEUED) -> RowRecord:
    """Row `seq` of a batch (on line seq + 1), its meeting `m{seq}`."""
    return RowRecord(
        seq=seq,
        line=seq + 1,
        user_id="u@contoso.example",
        meeting_id=f"m{seq}",
        allowed_registrant="everyone",
        status=status,
    )
