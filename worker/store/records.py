"""The records the store reads and writes: a batch's progress, a meeting's record, a row's
ending, and what the register protocol's steps found."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from worker.models import FINAL_STATES, Operation, RowRecord, RowState
from worker.settings import DEFAULT_RECOVERY_S
from worker.store.encoding import iso_from_ms


@dataclass(frozen=True, slots=True)
class BatchStatus:
    """One batch's progress, as `meetreg status` shows it."""

    batch_id: str
    total: int
    counts: dict[str, int]
    source: str = ""
    created_at: str = ""
    updated_at: str = ""
    paused: str = ""  # why the batch is paused; "" when it is not
    cancelled: bool = False
    operation: Operation = Operation.CREATE
    undoes: str = ""  # an undo batch: the batch whose registrations it deletes
    undone_by: str = ""  # the undo batch of this one, once `meetreg disable` made it
    # On Redis' clock, in ms: when a row last changed state (or the batch was written),
    # since when its oldest row running or retrying has been so (None: no row is), and
    # when this was read (0: not read from the store).
    moved_ms: int = 0
    oldest_working_ms: int | None = None
    read_ms: int = 0
    stall_after_s: float = DEFAULT_RECOVERY_S  # MEETREG_RECOVERY_S of the reader
    rows_digest: str = ""  # worker.models.RowsDigest of its rows; "" if written without one

    @property
    def done(self) -> int:
        return sum(count for state, count in self.counts.items() if state in FINAL_STATES)

    @property
    def finished(self) -> bool:
        return self.done >= self.total

    @property
    def working(self) -> int:
        """Rows in a worker's hands: running or retrying."""
        return self.counts.get(RowState.RUNNING, 0) + self.counts.get(RowState.RETRYING, 0)

    @property
    def oldest_running_s(self) -> float | None:
        """How long the oldest row running or retrying has been so; None when none is."""
        if self.oldest_working_ms is None or not self.read_ms:
            return None
        return max(0.0, (self.read_ms - self.oldest_working_ms) / 1000)

    @property
    def since_progress_s(self) -> float | None:
        """How long no row of the batch has changed state; None when not read from the store."""
        if not self.moved_ms or not self.read_ms:
            return None
        return max(0.0, (self.read_ms - self.moved_ms) / 1000)

    @property
    def stalled(self) -> bool:
        """Rows are in workers' hands, yet none has changed state for longer than the
        recovery window: whatever holds them is not finishing them, nor letting them be
        taken up again. Rows that only wait in the queue do not count: a batch queued
        behind another one waits, and is not stuck."""
        since = self.since_progress_s
        return (
            since is not None
            and since > self.stall_after_s
            and self.working > 0
            and not self.finished
            and not self.paused
        )

    @property
    def last_progress_at(self) -> str:
        """`moved_ms` as UTC ISO, as `updated_at` is written; "" when unknown."""
        return iso_from_ms(self.moved_ms) if self.moved_ms else ""

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "total": self.total,
            "counts": self.counts,
            "finished": self.finished,
            "paused": bool(self.paused) and not self.cancelled,
            "paused_reason": self.paused or None,
            "cancelled": self.cancelled,
            "done": self.done,
            "source": self.source,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "operation": str(self.operation),
            "undoes": self.undoes or None,
            "undone_by": self.undone_by or None,
            "oldest_running_s": _tenths(self.oldest_running_s),
            "last_progress_at": self.last_progress_at or None,
            "since_progress_s": _tenths(self.since_progress_s),
            "stalled": self.stalled,
        }


def _tenths(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


@dataclass(frozen=True, slots=True)
class FailureGroup:
    """A batch's failed rows that failed the same way."""

    http_status: str  # "403"; "-" when no answer came (a timeout, a cancellation)
    code: str  # Graph's error code; the message when Graph gave none
    rows: int


@dataclass(frozen=True, slots=True)
class BatchStats:
    """What the status page draws: failures by how, rows finished over time."""

    failures: list[FailureGroup]  # most rows first
    finished_per_10s: list[tuple[str, int]]  # (start of the 10 s, UTC ISO), oldest first


@dataclass(slots=True)
class MeetingRecord:
    """What meetreg knows about one meeting, across every batch that named it.

    `posts` counts POSTs (and undo DELETEs) that may have reached Graph; more than zero
    means a registration may exist, or be gone, even if no answer said so, so the next
    worker must GET before any POST or DELETE.
    """

    # "", "posting" (a POST or DELETE may be in flight), "created", "already_enabled",
    # "disabled", "already_disabled" (an undo removed, or found gone, `registration_id`)
    state: str = ""
    posts: int = 0
    posted_by: str = ""  # "batch:seq" of the row that last sent a POST
    registration_id: str = ""
    done_by: str = ""  # "batch:seq" of the row that finished it
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.state in (
            RowState.CREATED,
            RowState.ALREADY_ENABLED,
            RowState.REGISTERED,
            RowState.ALREADY_REGISTERED,
            RowState.PUBLISHED,
            RowState.ALREADY_PUBLISHED,
        )


SlotRequest = tuple[list[str], list[float]]
"""The rate limiter's keys and arguments, for a script that reserves a slot as it writes."""
Slot = tuple[float, bool, str]
"""A reserved rate slot: wait this many ms; False: a pause was on, no slot was taken; the
slot's id (for `RateLimiter.settle`)."""


@dataclass(slots=True, kw_only=True)
class Ending:
    """A row's final state to store (see `OutcomeStore.finish`), with the meeting's outcome
    (`meeting_state`, `registration_id`, `kind`) and the lease to give back (`token`).
    `signature` is how Graph decided the row ("ok", or a failure's "status code"; "" when
    no call did), for the safety valve; `user_id` its organizer."""

    row: RowRecord
    meeting_id: str = ""
    token: str = ""
    meeting_state: RowState | None = None
    registration_id: str = ""
    kind: str = ""
    signature: str = ""
    user_id: str = ""


class Claim(IntEnum):
    """What `OutcomeStore.claim` found."""

    ROW_FINAL = -1  # the row was finished elsewhere: nothing to do
    BUSY = 0  # another row holds the meeting's lease: wait
    CLAIMED = 1  # the lease is ours, the row is running
    DONE = 2  # the meeting needs nothing more (done before): no call needed
    PAUSED = -2  # the batch is paused: leave the row as it is


class PostRecord(IntEnum):
    """What `OutcomeStore.record_post` found."""

    ROW_FINAL = -1  # the row was finished elsewhere: send nothing
    LEASE_LOST = 0  # another worker holds the meeting now: send nothing
    GO = 1  # the POST is counted: send it


def row_ref(batch_id: str, seq: int) -> str:
    return f"{batch_id}:{seq}"
