"""The records meetreg passes around: a batch's operation, a row's state, a row's outcome.
(A registration request, and what makes one valid, is worker.validation's.)"""

from __future__ import annotations

import hashlib
import json
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
    # Rows of a webinar registrant batch (Operation.REGISTER), and of its undo (CANCEL):
    REGISTERED = "registered"  # this run's POST registered the person
    ALREADY_REGISTERED = "already_registered"  # the person was registered already
    CANCELED = "canceled"  # this undo canceled the registration the batch made
    ALREADY_CANCELED = "already_canceled"  # that registration was canceled (or gone) already
    # Rows of a webinar publication batch (Operation.PUBLISH):
    PUBLISHED = "published"  # this run's POST published the draft webinar
    ALREADY_PUBLISHED = "already_published"  # the webinar was published already

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


class Operation(StrEnum):
    """What a batch does to each row's resource. Stored in the batch's header.

    Three targets: a meeting's external registration (create, undone by disable), a
    webinar's registrant (register, undone by cancel) and a webinar's publication
    (publish, which has no undo)."""

    CREATE = "create"  # enable registration: POST (meetreg enqueue / run / serve / nightly)
    DISABLE = "disable"  # undo a batch: DELETE the registrations it created (meetreg disable)
    REGISTER = "register"  # register people for webinars: POST .../registrations
    CANCEL = "cancel"  # undo a registrant batch: cancel the registrations it made
    PUBLISH = "publish"  # publish the signed-in organizer's draft webinars (delegated only)

    @property
    def undoes(self) -> bool:
        """Whether the batch removes what another batch made (an undo batch)."""
        return self in (Operation.DISABLE, Operation.CANCEL)

    @property
    def webinars(self) -> bool:
        """Whether the batch's rows are webinar registrants (else meetings)."""
        return self in (Operation.REGISTER, Operation.CANCEL)

    @property
    def undoable(self) -> bool:
        """Whether `meetreg disable` can undo such a batch (a webinar stays published)."""
        return not self.undoes and self is not Operation.PUBLISH

    @property
    def undo(self) -> Operation:
        """The operation of this batch's undo batch."""
        return Operation.CANCEL if self.webinars else Operation.DISABLE

    @property
    def made(self) -> RowState:
        """A row whose own call made (or removed, for an undo) the resource."""
        return _WORDS[self][0]

    @property
    def found(self) -> RowState:
        """A row that found the resource as wanted already (there, or gone for an undo)."""
        return _WORDS[self][1]

    @property
    def states(self) -> tuple[RowState, ...]:
        """The states a row of such a batch can be in, in the order status shows them."""
        return _STATES[self]

    @property
    def done_states(self) -> tuple[RowState, RowState]:
        """A resource's record in one of these states needs no more calls for this operation."""
        return _WORDS[self]


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
        RowState.REGISTERED,
        RowState.ALREADY_REGISTERED,
        RowState.CANCELED,
        RowState.ALREADY_CANCELED,
        RowState.PUBLISHED,
        RowState.ALREADY_PUBLISHED,
    }
)
SUCCESS_STATES = frozenset(
    {
        RowState.CREATED,
        RowState.ALREADY_ENABLED,
        RowState.SKIPPED,
        RowState.REGISTERED,
        RowState.ALREADY_REGISTERED,
        RowState.PUBLISHED,
        RowState.ALREADY_PUBLISHED,
    }
)
_WORDS = {
    Operation.CREATE: (RowState.CREATED, RowState.ALREADY_ENABLED),
    Operation.DISABLE: (RowState.DISABLED, RowState.ALREADY_DISABLED),
    Operation.REGISTER: (RowState.REGISTERED, RowState.ALREADY_REGISTERED),
    Operation.CANCEL: (RowState.CANCELED, RowState.ALREADY_CANCELED),
    Operation.PUBLISH: (RowState.PUBLISHED, RowState.ALREADY_PUBLISHED),
}
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
    Operation.REGISTER: (
        *_WAITING,
        RowState.REGISTERED,
        RowState.ALREADY_REGISTERED,
        RowState.SKIPPED,
        RowState.FAILED,
        RowState.INVALID,
    ),
    Operation.CANCEL: (
        *_WAITING,
        RowState.CANCELED,
        RowState.ALREADY_CANCELED,
        RowState.CHANGED,
        RowState.SKIPPED,
        RowState.FAILED,
    ),
    Operation.PUBLISH: (
        *_WAITING,
        RowState.PUBLISHED,
        RowState.ALREADY_PUBLISHED,
        RowState.SKIPPED,
        RowState.FAILED,
        RowState.INVALID,
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
    # A webinar registrant's row (Operation.REGISTER, CANCEL); user_id, meeting_id and
    # allowed_registrant are empty then (a webinar publication's row, PUBLISH: webinar_id
    # only). `person`: first_name, last_name,
    # preferred_timezone, preferred_language, answers ({question id: the cell as given}).
    # `external_id`: what the registration carries as externalRegistrationInformation's
    # registrationId, meetreg's key for the row that registered it (a cancel's row: the
    # registering row's), so that a look can tell our registration from another.
    webinar_id: str = ""
    email: str = ""
    person: dict[str, Any] = field(default_factory=dict)
    external_id: str = ""

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
            **(self._registrant_fields() if self.webinar_id else {}),
        }

    def _registrant_fields(self) -> dict[str, Any]:
        # Only on a registrant's row: a meeting row's record stays as short as it was.
        return {
            "webinar_id": self.webinar_id,
            "email": self.email,
            "person": dict(self.person),
            "external_id": self.external_id,
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
        if row.webinar_id:
            # The whole request: a name or an answer changed is another source.
            person = json.dumps(row.person, sort_keys=True, separators=(",", ":"))
            user, meeting, link, registrant = (row.email, row.webinar_id, "", person)
        else:
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
