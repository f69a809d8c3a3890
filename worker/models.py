"""The records meetreg passes around: a batch's operation, a row's state, a row's outcome.
(A registration request, and what makes one valid, is worker.validation's.)"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class RowState(StrEnum):
    """Where a row stands. Stored in Redis as these strings."""

    QUEUED = "queued"  # accepted, waiting for a worker
    RUNNING = "running"  # a worker holds it and is talking to Graph
    RETRYING = "retrying"  # a transient failure happened; another attempt is coming
    CREATED = "created"  # this run's POST created the registration
    ALREADY_ENABLED = "already_enabled"  # the meeting already had a registration
    SKIPPED = "skipped"  # not sent: a duplicate row, or done by an earlier batch
    FAILED = "failed"  # Graph refused for good, or retries ran out
    INVALID = "invalid"  # the row itself is wrong
    # Rows of an undo batch (Operation.DISABLE):
    DISABLED = "disabled"  # this undo's DELETE removed the registration the batch created
    ALREADY_DISABLED = "already_disabled"  # that registration was gone already (404)
    CHANGED = "changed"  # the meeting has another registration now: left alone

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


class Operation(StrEnum):
    """What a batch does to each row's meeting. Stored in the batch's header."""

    CREATE = "create"  # enable registration: POST (meetreg enqueue / run / serve / nightly)
    DISABLE = "disable"  # undo a batch: DELETE the registrations it created (meetreg disable)

    @property
    def states(self) -> tuple[RowState, ...]:
        """The states a row of such a batch can be in, in the order status shows them."""
        return _STATES[self]

    @property
    def done_states(self) -> tuple[RowState, RowState]:
        """A meeting's record in one of these states needs no more calls for this operation."""
        if self is Operation.CREATE:
            return (RowState.CREATED, RowState.ALREADY_ENABLED)
        return (RowState.DISABLED, RowState.ALREADY_DISABLED)


FINAL_STATES = frozenset(
    {
        RowState.CREATED,
        RowState.ALREADY_ENABLED,
        RowState.SKIPPED,
        RowState.FAILED,
        RowState.INVALID,
        RowState.DISABLED,
        RowState.ALREADY_DISABLED,
        RowState.CHANGED,
    }
)
SUCCESS_STATES = frozenset({RowState.CREATED, RowState.ALREADY_ENABLED, RowState.SKIPPED})
_WAITING = (RowState.QUEUED, RowState.RUNNING, RowState.RETRYING)
_STATES = {
    Operation.CREATE: (
        *_WAITING,
        RowState.CREATED,
        RowState.ALREADY_ENABLED,
        RowState.SKIPPED,
        RowState.FAILED,
        RowState.INVALID,
    ),
    Operation.DISABLE: (
        *_WAITING,
        RowState.DISABLED,
        RowState.ALREADY_DISABLED,
        RowState.CHANGED,
        RowState.SKIPPED,
        RowState.FAILED,
    ),
}


@dataclass(slots=True)
class RowRecord:
    """One data row of a batch and what happened to it: the report's columns.

    `seq` is the row's position among the batch's data rows (1-based); `line` its line
    in the source file (the header being line 1).
    """

    seq: int
    line: int
    user_id: str
    meeting_id: str
    allowed_registrant: str
    status: RowState
    join_web_url: str = ""
    registration_id: str = ""
    http_status: int | None = None
    error: str = ""
    attempts: int = 0
    request_id: str = ""
    updated_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        # Spelled out, not dataclasses.asdict: this runs for every row write, and asdict's
        # deep copy was most of the cost of enqueueing 100,000 rows.
        return {
            "seq": self.seq,
            "line": self.line,
            "user_id": self.user_id,
            "meeting_id": self.meeting_id,
            "allowed_registrant": self.allowed_registrant,
            "status": str(self.status),
            "join_web_url": self.join_web_url,
            "registration_id": self.registration_id,
            "http_status": self.http_status,
            "error": self.error,
            "attempts": self.attempts,
            "request_id": self.request_id,
            "updated_at": self.updated_at,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> RowRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["status"] = RowState(known["status"])
        if known.get("http_status") in ("", None):
            known["http_status"] = None
        return cls(**known)


class RowsDigest:
    """What a batch's rows ask for, in order, as one short digest: kept with the batch, so
    that a source enqueued again under its id resumes it only if it holds the same rows."""

    def __init__(self) -> None:
        self._hash = hashlib.blake2b(digest_size=16)

    def add(self, row: RowRecord) -> None:
        user, meeting, link, registrant = (
            row.user_id,
            row.meeting_id,
            row.join_web_url,
            row.allowed_registrant,
        )
        # Each value's length first: no two different rows make the same text.
        text = f"{len(user)}:{user}{len(meeting)}:{meeting}{len(link)}:{link}"
        self._hash.update(f"{text}{len(registrant)}:{registrant}".encode("utf-8", "surrogatepass"))

    def hexdigest(self) -> str:
        return self._hash.hexdigest()
