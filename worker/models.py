"""The records meetreg passes around: a registration request, a batch's operation, a row's
state, a row's outcome."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from worker.keys import DOT_SEGMENTS

MAX_ID_LENGTH = 2048
MAX_JOIN_URL_LENGTH = 4096
_UPN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_BAD_ID_CHARS = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


class AllowedRegistrant(StrEnum):
    """Graph's `meetingAudience`; `unknownFutureValue` exists but must never be sent."""

    EVERYONE = "everyone"
    ORGANIZATION = "organization"


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


def _check_id(value: str, name: str, max_length: int = MAX_ID_LENGTH) -> str:
    if not value:
        raise ValueError(f"{name} is empty")
    if value in DOT_SEGMENTS:
        raise ValueError(f"{name} is {value!r}, which a URL reads as a path step, never an id")
    if len(value) > max_length:
        raise ValueError(f"{name} is longer than {max_length} characters")
    if _BAD_ID_CHARS.search(value):
        raise ValueError(f"{name} contains whitespace or a control character")
    return value


_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def is_guid(value: str) -> bool:
    return _GUID.fullmatch(value) is not None


class RegistrationRequest(BaseModel):
    """One meeting to enable registration on, as a source (CSV, JSON, event) gives it.

    `user_id` is the organizer's objectId (GUID, lower-cased) or UPN (lower-cased);
    the meeting is named by `meeting_id`, or else found from `join_web_url`.
    """

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    user_id: str
    meeting_id: str | None = None
    join_web_url: str | None = None
    allowed_registrant: AllowedRegistrant = AllowedRegistrant.EVERYONE

    @field_validator("user_id")
    @classmethod
    def _user_id_is_guid_or_upn(cls, value: str) -> str:
        _check_id(value, "user_id", 320)
        if is_guid(value) or _UPN.match(value):
            return value.lower()
        raise ValueError("user_id is neither a GUID nor a UPN")

    @field_validator("meeting_id")
    @classmethod
    def _meeting_id_is_clean(cls, value: str | None) -> str | None:
        return _check_id(value, "meeting_id") if value else None

    @field_validator("join_web_url")
    @classmethod
    def _join_url_is_https(cls, value: str | None) -> str | None:
        if not value:
            return None
        _check_id(value, "join_web_url", MAX_JOIN_URL_LENGTH)
        if not value.lower().startswith("https://"):
            raise ValueError("join_web_url is not an https:// link")
        return value

    @field_validator("allowed_registrant", mode="before")
    @classmethod
    def _registrant_default(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return AllowedRegistrant.EVERYONE
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _names_a_meeting(self) -> Self:
        if not self.meeting_id and not self.join_web_url:
            raise ValueError("meeting_id (or join_web_url) is required")
        return self

    @property
    def dedup_key(self) -> tuple[str, str]:
        """What makes two rows of one batch the same request."""
        return (self.user_id, self.meeting_id or self.join_web_url or "")


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
