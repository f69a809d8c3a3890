"""A Teams meeting's external registration: meetreg's first target.

Found from the row's organizer (a GUID, or a UPN looked up once and cached in Redis) and
meeting (its id, or found from its join link). Looked up with a GET of the meeting's
registration (404: absent), created with a POST of an externalMeetingRegistration, undone
with a DELETE. A POST refused with 400 or 409 may have met a registration already there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from worker.graph.client import Deletion, Registration
from worker.models import RowRecord
from worker.protocol.target import GO, Caller, Found, Place, Verdict
from worker.telemetry.logs import add_context
from worker.validation import is_guid

EXTERNAL = "externalMeetingRegistration"
CONFIRM_STATUSES = (400, 409)  # POST said "no"; a GET tells whether it is "already there"


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


class UserIdCache(Protocol):
    """UPNs' objectIds, kept in Redis (`worker.store.OutcomeStore` is one)."""

    def cached_user_id(self, upn: str) -> str | None: ...

    def cache_user_id(self, upn: str, object_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class MeetingRegistration:
    """The Target (worker.protocol.target) for external meeting registrations."""

    api: RegistrationApi
    cache: UserIdCache | None = None
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
        cached = self.cache.cached_user_id(user_id) if self.cache else None
        if cached:
            return cached
        object_id = caller.call(lambda: self.api.resolve_user_id(user_id))
        if self.cache:
            self.cache.cache_user_id(user_id, object_id)
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
