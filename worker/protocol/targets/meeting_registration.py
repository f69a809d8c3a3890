"""A Teams meeting's external registration: the one target meetreg has today.

Looked up with a GET of the meeting's registration (404: absent), created with a POST of
an externalMeetingRegistration, undone with a DELETE. A POST refused with 400 or 409 may
have met a registration already there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from worker.graph.client import Deletion, Registration
from worker.protocol.target import Found

EXTERNAL = "externalMeetingRegistration"
CONFIRM_STATUSES = (400, 409)  # POST said "no"; a GET tells whether it is "already there"


class RegistrationApi(Protocol):
    """The registration calls; `worker.graph.GraphClient` is one."""

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

    def look(self, user_id: str, key: str) -> Registration | None:
        return self.api.get_registration(user_id, key)

    def create(self, user_id: str, key: str, allowed_registrant: str) -> Registration:
        return self.api.create_registration(user_id, key, allowed_registrant)

    def undo(self, user_id: str, key: str) -> Deletion:
        return self.api.delete_registration(user_id, key)

    def start_look(self, user_id: str, key: str) -> Callable[[], Registration | None]:
        return self.api.start_get_registration(user_id, key)

    def start_create(
        self, user_id: str, key: str, allowed_registrant: str
    ) -> Callable[[], Registration]:
        return self.api.start_create_registration(user_id, key, allowed_registrant)

    def is_ours(self, found: Found) -> bool:
        return found.kind in (EXTERNAL, "")  # "": Graph did not say; ours is the one made

    def mismatch(self, found: Found) -> str:
        if self.is_ours(found):
            return ""
        return f"the meeting has a {found.kind}, not an external registration"

    def replaced(self, found: Found, ours: str) -> str:
        return f"the meeting now has registration {found.id}, not {ours}: left alone"
