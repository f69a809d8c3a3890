"""The tenant's directory as Graph shows it: users, their meetings, and registrations.

Plain data and Graph's rules for the registration operations; no locking (the
`SimulatorState` holds the lock) and no HTTP (the routes translate). Object ids are
GUIDs and compared lower-cased; meeting ids are opaque and compared exactly.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from worker.simulator.config import ConflictMode, RegistrationApiMode
from worker.simulator.errors import GraphFailure

RegistrationKind = Literal["external", "microsoft"]
EXTERNAL_TYPE = "#microsoft.graph.externalMeetingRegistration"
MICROSOFT_TYPE = "#microsoft.graph.meetingRegistration"
ALLOWED_REGISTRANTS = frozenset({"everyone", "organization"})
NO_POLICY = "No Application Access Policy found for this app"
ONE_REGISTRATION = "An online meeting can only have one registration enabled."
RETIRED_SEGMENT = "Resource not found for the segment 'registration'."
APP_ONLY_REFUSED = "Application permission is not supported for this API."
MISSING_TYPE = (
    "Provide microsoft.graph.meetingRegistration or "
    "microsoft.graph.externalMeetingRegistration in request body"
)


@dataclass(slots=True)
class User:
    """An Entra user; `access_policy` says whether a Teams admin granted our app access."""

    object_id: str
    upn: str
    access_policy: bool = True

    def to_graph(self) -> dict[str, Any]:
        return {"id": self.object_id, "userPrincipalName": self.upn}


@dataclass(slots=True)
class Meeting:
    """An online meeting and its organizer."""

    meeting_id: str
    organizer_id: str
    join_web_url: str
    subject: str

    def to_graph(self) -> dict[str, Any]:
        return {
            "id": self.meeting_id,
            "joinWebUrl": self.join_web_url,
            "subject": self.subject,
            "participants": {"organizer": {"identity": {"user": {"id": self.organizer_id}}}},
        }


@dataclass(slots=True)
class Registration:
    """The one registration a meeting may have: ours (external) or Microsoft-hosted."""

    registration_id: str
    kind: RegistrationKind
    allowed_registrant: str = "everyone"

    def to_graph(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "@odata.type": EXTERNAL_TYPE if self.kind == "external" else MICROSOFT_TYPE,
            "id": self.registration_id,
            "allowedRegistrant": self.allowed_registrant,
        }
        if self.kind == "microsoft":
            body.update(subject="Seeded Microsoft-hosted registration", customQuestions=[])
        return body


def default_join_url(tenant_id: str, organizer_id: str, meeting_id: str) -> str:
    """A join link shaped like Teams' own, carrying the organizer's `Oid` in `context`."""
    thread = hashlib.sha256(meeting_id.encode()).hexdigest()[:32]
    return (
        f"https://teams.microsoft.com/l/meetup-join/19%3ameeting_{thread}%40thread.v2/0"
        f"?context={_join_context(tenant_id, organizer_id)}"
    )


@functools.lru_cache(maxsize=4096)
def _join_context(tenant_id: str, organizer_id: str) -> str:
    # Cached: quoting dominated seeding 100,000 meetings of a few organizers.
    return quote(f'{{"Tid":"{tenant_id}","Oid":"{organizer_id}"}}', safe="")


class Directory:
    """Users, meetings and registrations of one tenant, with Graph's answers about them."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self.users: dict[str, User] = {}
        self.upns: dict[str, str] = {}  # lower-cased UPN -> object id
        self.meetings: dict[str, Meeting] = {}
        self.by_join_url: dict[str, str] = {}  # join link -> meeting id
        self.registrations: dict[str, Registration] = {}  # meeting id -> registration
        self.creations: Counter[str] = Counter()  # meeting id -> registrations created

    # Seeding -----------------------------------------------------------------------------

    def add_user(self, object_id: str, upn: str | None = None, access_policy: bool = True) -> User:
        """Add or replace a user."""
        object_id = object_id.lower()
        old = self.users.get(object_id)
        if old is not None:
            self.upns.pop(old.upn.lower(), None)
        user = User(object_id, upn or f"user-{object_id[:8]}@contoso.example", access_policy)
        self.users[object_id] = user
        self.upns[user.upn.lower()] = object_id
        return user

    def add_meeting(
        self,
        organizer_id: str,
        meeting_id: str,
        join_web_url: str | None = None,
        existing: RegistrationKind | None = None,
        subject: str | None = None,
    ) -> Meeting:
        """Add or replace a meeting; an unknown organizer is added with the access policy.

        `existing` seeds a registration the meeting already has (not counted as a creation);
        replacing a meeting resets its registration to that.
        """
        organizer_id = organizer_id.lower()
        if organizer_id not in self.users:
            self.add_user(organizer_id)
        old = self.meetings.get(meeting_id)
        if old is not None:
            self.by_join_url.pop(old.join_web_url, None)
        url = join_web_url or default_join_url(self.tenant_id, organizer_id, meeting_id)
        meeting = Meeting(meeting_id, organizer_id, url, subject or f"Meeting {meeting_id[:12]}")
        self.meetings[meeting_id] = meeting
        self.by_join_url[url] = meeting_id
        if existing is not None:
            self.registrations[meeting_id] = Registration(str(uuid.uuid4()), existing)
        else:
            self.registrations.pop(meeting_id, None)
        return meeting

    # Graph operations ----------------------------------------------------------------------

    def find_user(self, upn_or_id: str) -> User:
        """`GET /users/{upnOrId}`: raises GraphFailure 404 for an unknown user."""
        key = upn_or_id.lower()
        user = self.users.get(key) or self.users.get(self.upns.get(key, ""))
        if user is None:
            raise GraphFailure(
                404,
                "Request_ResourceNotFound",
                f"Resource '{upn_or_id}' does not exist or one of its queried reference-property "
                "objects are not present.",
            )
        return user

    def find_meetings(
        self, user_id: str, join_web_url: str, acting: str | None = None
    ) -> list[Meeting]:
        """`GET /users/{id}/onlineMeetings?$filter=JoinWebUrl eq '...'`.

        Raises GraphFailure 403 without the access policy or when the meeting is another
        organizer's.
        """
        user = self._authorized(user_id, acting)
        meeting = self.meetings.get(self.by_join_url.get(join_web_url, ""))
        if meeting is None:
            return []
        if meeting.organizer_id != user.object_id:
            raise GraphFailure(403, "Forbidden", "User is not the organizer of this meeting.")
        return [meeting]

    def register(
        self,
        user_id: str,
        meeting_id: str,
        body: Mapping[str, Any],
        conflict: ConflictMode,
        acting: str | None = None,
    ) -> Registration:
        """`POST .../registration`: create an external registration, or raise GraphFailure.

        400 for a bad body, 403 without the access policy, 404 for an unknown meeting or
        another organizer's, and 409 / 400 / a quiet replacement (per `conflict`) when
        the meeting already has a registration.
        """
        odata_type = body.get("@odata.type")
        if odata_type == MICROSOFT_TYPE:
            raise GraphFailure(
                400,
                "BadRequest",
                "microsoft.graph.meetingRegistration is only supported with a delegated token.",
            )
        if odata_type != EXTERNAL_TYPE:
            raise GraphFailure(400, "BadRequest", MISSING_TYPE)
        registrant = body.get("allowedRegistrant")
        if registrant not in ALLOWED_REGISTRANTS:
            raise GraphFailure(
                400,
                "BadRequest",
                f"Requested value '{registrant}' was not found for allowedRegistrant.",
            )
        meeting = self._meeting(user_id, meeting_id, acting)
        if meeting.meeting_id in self.registrations:
            if conflict == "409":
                raise GraphFailure(409, "Conflict", ONE_REGISTRATION)
            if conflict == "400":
                raise GraphFailure(400, "BadRequest", ONE_REGISTRATION)
        registration = Registration(str(uuid.uuid4()), "external", str(registrant))
        self.registrations[meeting.meeting_id] = registration
        self.creations[meeting.meeting_id] += 1
        return registration

    def get_meeting(self, user_id: str, meeting_id: str, acting: str | None = None) -> Meeting:
        """`GET /users/{id}/onlineMeetings/{id}`: the meeting, or GraphFailure 403 / 404."""
        return self._meeting(user_id, meeting_id, acting)

    def get_registration(
        self, user_id: str, meeting_id: str, acting: str | None = None
    ) -> Registration:
        """`GET .../registration`: the registration, or GraphFailure 403 / 404."""
        meeting = self._meeting(user_id, meeting_id, acting)
        registration = self.registrations.get(meeting.meeting_id)
        if registration is None:
            raise GraphFailure(404, "NotFound", "The meeting has no registration.")
        return registration

    def delete_registration(self, user_id: str, meeting_id: str, acting: str | None = None) -> None:
        """`DELETE .../registration`: remove it, or raise GraphFailure 403 / 404."""
        meeting = self._meeting(user_id, meeting_id, acting)
        if self.registrations.pop(meeting.meeting_id, None) is None:
            raise GraphFailure(404, "NotFound", "The meeting has no registration.")

    # Rules shared by the operations -------------------------------------------------------

    def _authorized(self, user_id: str, acting: str | None = None) -> User:
        """The user whose meetings are asked for, if the caller may: an application token
        (`acting` None) needs the access policy for the user; a delegated token acting for
        the user `acting` (an objectId) may reach that user's own meetings only."""
        user = self.users.get(user_id.lower())
        if acting is not None:
            if user is None or user.object_id != acting.lower():
                raise GraphFailure(403, "Forbidden", "Access to another user's meetings denied.")
            return user
        # Graph answers 403 alike for "no such objectId" and "no policy for this user".
        if user is None or not user.access_policy:
            raise GraphFailure(403, "Forbidden", NO_POLICY)
        return user

    def _meeting(self, user_id: str, meeting_id: str, acting: str | None = None) -> Meeting:
        user = self._authorized(user_id, acting)
        meeting = self.meetings.get(meeting_id)
        if meeting is None:
            raise GraphFailure(404, "NotFound", "The requested online meeting was not found.")
        if meeting.organizer_id != user.object_id:
            raise GraphFailure(404, "NotFound", "Organizer Id mismatch")
        return meeting


def refuse_retired(mode: RegistrationApiMode, acting: str | None) -> None:
    """The registration API's own answer before any rule of the directory's: gone, Graph
    answers as for a segment it does not know (400); refused to app-only tokens (`acting`
    None), 403. Raises GraphFailure; returns when the call goes on."""
    if mode == "gone":
        raise GraphFailure(400, "BadRequest", RETIRED_SEGMENT)
    if mode == "app-only-refused" and acting is None:
        raise GraphFailure(403, "Forbidden", APP_ONLY_REFUSED)
