"""A Teams meeting's external registration: meetreg's first target.

Found from the row's organizer (a GUID, or a UPN looked up once and cached in Redis) and
meeting (its id, or found from its join link). Looked up with a GET of the meeting's
registration (404: absent), created with a POST of an externalMeetingRegistration, undone
with a DELETE. A POST refused with 400 or 409 may have met a registration already there.

Microsoft retired this (beta) API: it stopped answering on 2024-12-12, and its newest
reference page says application permission is "Not supported". `retired_how` recognises
either answer, the one place that does: the protocol pauses a batch on it
(`MeetingRegistration.retirement`), `meetreg run`/`enqueue` and `doctor` probe with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from worker.errors import GraphError
from worker.graph.client import Deletion, Registration
from worker.models import RowRecord
from worker.protocol.target import GO, Caller, Found, Place, Verdict
from worker.telemetry.logs import add_context
from worker.validation import is_guid

EXTERNAL = "externalMeetingRegistration"
CONFIRM_STATUSES = (400, 409)  # POST said "no"; a GET tells whether it is "already there"
RETIRED_ON = "2024-12-12"
WAY_ON = (
    "register people for Teams webinars instead: meetreg run FILE with "
    "webinar_id,email,first_name,last_name columns (docs/webinars.md)"
)
# Graph's words for a path segment it does not know (the retired endpoint's answer).
_UNKNOWN_SEGMENT = re.compile(r"\bsegment\s+'registration'", re.IGNORECASE)
_APP_ONLY = re.compile(r"\b(application permission|app-only|app only|application-only)", re.I)
_NOT_SUPPORTED = re.compile(r"\bnot supported\b", re.IGNORECASE)


class Retirement(StrEnum):
    """How the retired API answers: gone for everyone, or refused to app-only tokens."""

    GONE = f"gone since {RETIRED_ON}"
    APP_ONLY_REFUSED = "refused for app-only tokens"


def retired_how(error: GraphError) -> Retirement | None:
    """Whether `error` says the registration API itself is gone or refused to app-only
    tokens (so every row would fail alike), and which; None for a row's own refusal."""
    if error.status == 410:
        return Retirement.GONE
    if error.status == 400 and (error.code or "").lower() == "badrequest":
        # Graph has no error code for "this path is gone": a retired segment is answered as
        # any unknown one, 400 BadRequest. Its message is the only signal that tells it from
        # a bad body (also 400 BadRequest), so the message is read here, and only here.
        return Retirement.GONE if _UNKNOWN_SEGMENT.search(error.message) else None
    if error.status == 403:
        # Not the ordinary 403 ("No Application Access Policy found for this app"): that
        # one is a Teams admin's to fix for one organizer, and stays the row's failure.
        message = error.message
        if _APP_ONLY.search(message) and _NOT_SUPPORTED.search(message):
            return Retirement.APP_ONLY_REFUSED
    return None


def retirement_reason(how: Retirement, error: GraphError) -> str:
    """The one line for the operator: what happened, Graph's own words, and the way on."""
    answer = f"HTTP {error.status} {error.describe().rstrip('.')}"
    if how is Retirement.GONE:
        return (
            f"Microsoft retired the meeting registration API on {RETIRED_ON}; Graph answers "
            f"{answer}; {WAY_ON}"
        )
    return (
        "Graph refuses the meeting registration API to app-only tokens (the API was "
        f"retired on {RETIRED_ON}; Graph answers {answer}); {WAY_ON}"
    )


class RegistrationApi(Protocol):
    """The Graph calls of this target; `worker.graph.GraphClient` is one."""

    def resolve_user_id(self, upn: str) -> str: ...

    def find_meeting_id(self, user_id: str, join_web_url: str) -> str: ...

    def create_registration(
        self, user_id: str, meeting_id: str, allowed_registrant: str
    ) -> Registration: ...

    def get_registration(self, user_id: str, meeting_id: str) -> Registration | None: ...

    def delete_registration(self, user_id: str, meeting_id: str) -> Deletion: ...

    def start_create_registration(
        self, user_id: str, meeting_id: str, allowed_registrant: str
    ) -> Callable[[], Registration]: ...

    def start_get_registration(
        self, user_id: str, meeting_id: str
    ) -> Callable[[], Registration | None]: ...


@dataclass(frozen=True, slots=True)
class MeetingRegistration:
    """The Target (worker.protocol.target) for external meeting registrations."""

    api: RegistrationApi
    confirm_statuses: tuple[int, ...] = CONFIRM_STATUSES
    # Graph may answer a second POST with a new registration, replacing ours: whether to
    # look first every time is the operator's trade (MEETREG_GET_BEFORE_POST).
    always_looks_first: bool = False

    def place(self, row: RowRecord) -> Place | None:
        if is_guid(row.user_id) and row.meeting_id:
            return Place(row.user_id, row.meeting_id, row.meeting_id)
        return None  # a UPN or a join link to resolve first

    def locate(self, row: RowRecord, caller: Caller) -> Place:
        user_id = self._object_id(row.user_id, caller)
        if not row.meeting_id:
            join_url = row.join_web_url
            row.meeting_id = caller.call(lambda: self.api.find_meeting_id(user_id, join_url))
            add_context(meeting_id=row.meeting_id)
        return Place(user_id, row.meeting_id, row.meeting_id)

    def _object_id(self, user_id: str, caller: Caller) -> str:
        """The organizer's objectId; a UPN is looked up once and cached in Redis."""
        if is_guid(user_id):
            return user_id
        cached = caller.store.cached_user_id(user_id)
        if cached:
            return cached
        object_id = caller.call(lambda: self.api.resolve_user_id(user_id))
        caller.store.cache_user_id(user_id, object_id)
        return object_id

    def verdict(self, batch_id: str, row: RowRecord) -> Verdict | None:
        return GO  # whether a meeting can take a registration, only its POST tells

    def judge(self, batch_id: str, row: RowRecord, caller: Caller) -> Verdict:
        return GO

    def look(self, place: Place, row: RowRecord) -> Registration | None:
        return self.api.get_registration(place.owner, place.item)

    def create(self, place: Place, row: RowRecord) -> Registration:
        return self.api.create_registration(place.owner, place.item, row.allowed_registrant)

    def undo(self, place: Place, found: Found) -> Deletion:
        return self.api.delete_registration(place.owner, place.item)

    def start_look(self, place: Place, row: RowRecord) -> Callable[[], Registration | None]:
        return self.api.start_get_registration(place.owner, place.item)

    def start_create(self, place: Place, row: RowRecord) -> Callable[[], Registration]:
        return self.api.start_create_registration(place.owner, place.item, row.allowed_registrant)

    def is_ours(self, found: Found, row: RowRecord) -> bool:
        return found.kind in (EXTERNAL, "")  # "": Graph did not say; ours is the one made

    def mismatch(self, found: Found) -> str:
        if found.kind in (EXTERNAL, ""):
            return ""
        return f"the meeting has a {found.kind}, not an external registration"

    def replaced(self, found: Found, row: RowRecord) -> str:
        ours = row.registration_id
        if found.id == ours:
            return ""
        return f"the meeting now has registration {found.id}, not {ours}: left alone"

    def retirement(self, error: GraphError) -> str | None:
        how = retired_how(error)
        return None if how is None else retirement_reason(how, error)
