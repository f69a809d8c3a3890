"""Outlook calendar events as Graph v1.0 shows them, one calendar per user of the directory.

An event of a Teams meeting carries the meeting's join link in `onlineMeeting.joinUrl`, and
that link belongs to an online meeting of the `Directory`, under its organizer: so the
event resolves through `GET /users/{organizer}/onlineMeetings?$filter=JoinWebUrl eq ...`
as meetreg resolves it. An attendee's copy (`isOrganizer` false) links to a
meeting of another user.

Plain data, no locking (the `SimulatorState` holds the lock) and no HTTP (the routes
translate). Event ids are opaque and compared exactly.
"""

from __future__ import annotations

import base64
import copy
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from worker.simulator.directory import Directory, Meeting, User
from worker.simulator.errors import GraphFailure
from worker.simulator.timestamps import graph_time, parse_time, utc_now

TEAMS = "teamsForBusiness"
# Fields `update_event` may change; id, etag and timestamps are the simulator's to keep.
EDITABLE_FIELDS = frozenset(
    {
        "subject",
        "isOnlineMeeting",
        "onlineMeetingProvider",
        "isOrganizer",
        "organizer",
        "onlineMeeting",
        "isCancelled",
    }
)
SYSTEM_FIELDS = frozenset({"@odata.etag", "id", "createdDateTime", "lastModifiedDateTime"})
EVENT_PROPERTIES = EDITABLE_FIELDS | SYSTEM_FIELDS
NOT_FOUND = "The specified object was not found in the store."
# An attendee's event whose organizer is nobody in the tenant.
OUTSIDE_ORGANIZER = {"name": "Fabrikam Organizer", "address": "organizer@fabrikam.example"}

TimeField = Literal["createdDateTime", "lastModifiedDateTime"]
Comparison = Literal["eq", "ge", "gt", "le", "lt"]


def new_event_id() -> str:
    """An id shaped like Outlook's: `AAMkAD` and URL-safe base64 ending in `=`, ~150 chars."""
    # 110 bytes (110 % 3 == 2) encode with one "=" of padding, as Graph's ids end.
    return "AAMkAD" + base64.urlsafe_b64encode(os.urandom(110)).decode()


def new_meeting_id(organizer_id: str) -> str:
    """An online meeting id shaped like Teams': base64 of organizer and thread."""
    thread = f"19:meeting_{uuid.uuid4().hex}@thread.v2"
    return base64.b64encode(f"1*{organizer_id}*0**{thread}".encode()).decode()


def _change_key() -> str:
    return "DwAAABYAAAA" + base64.b64encode(os.urandom(15)).decode()


def _email(user: User) -> dict[str, str]:
    name = user.upn.partition("@")[0].replace(".", " ").title()
    return {"name": name, "address": user.upn}


@dataclass(slots=True)
class Event:
    """One event in one user's calendar; `fields` are the rest of its Graph JSON."""

    event_id: str
    owner_id: str
    created_at: datetime
    modified_at: datetime
    change_key: str
    fields: dict[str, Any]

    @property
    def etag(self) -> str:
        return f'W/"{self.change_key}"'

    def to_graph(self) -> dict[str, Any]:
        return {
            "@odata.etag": self.etag,
            "id": self.event_id,
            "createdDateTime": graph_time(self.created_at),
            "lastModifiedDateTime": graph_time(self.modified_at),
            **copy.deepcopy(self.fields),
        }


@dataclass(frozen=True, slots=True)
class TimeFilter:
    """`$filter=lastModifiedDateTime ge 2026-11-27T00:00:00Z` and its kin."""

    field: TimeField
    comparison: Comparison
    moment: datetime

    def matches(self, event: Event) -> bool:
        value = event.created_at if self.field == "createdDateTime" else event.modified_at
        match self.comparison:
            case "eq":
                return value == self.moment
            case "ge":
                return value >= self.moment
            case "gt":
                return value > self.moment
            case "le":
                return value <= self.moment
            case "lt":
                return value < self.moment
        return False  # pragma: no cover - the Literal is exhaustive


class Calendar:
    """Every user's events, in the order they were added (the order pages are cut in)."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self.events: dict[str, dict[str, Event]] = {}  # owner object id -> event id -> event

    def __len__(self) -> int:
        return sum(len(events) for events in self.events.values())

    # Seeding -----------------------------------------------------------------------------

    def add(
        self,
        user_id: str,
        *,
        teams: bool = True,
        organizer: bool = True,
        organizer_id: str | None = None,
        meeting_id: str | None = None,
        subject: str = "Project sync",
        modified_at: datetime | str | None = None,
    ) -> Event:
        """Add an event to the calendar of `user_id` (a UPN, or an objectId, added if new).

        A Teams event links to the online meeting `meeting_id` (created under its organizer
        when unknown, with a new id when None): the user's own meeting when `organizer`,
        else one of `organizer_id` (a new user when None and the meeting is new). Raises
        ValueError when an existing meeting's organizer contradicts `organizer` or
        `organizer_id`, or a UPN names nobody.
        """
        owner = self._user_or_new(user_id)
        moment = _moment(modified_at)
        fields: dict[str, Any] = {"subject": subject, "isOrganizer": organizer}
        if teams:
            meeting = self._meeting(owner, organizer, organizer_id, meeting_id, subject)
            host = self.directory.users[meeting.organizer_id]
            fields.update(
                isOnlineMeeting=True,
                onlineMeetingProvider=TEAMS,
                organizer={"emailAddress": _email(host)},
                onlineMeeting={"joinUrl": meeting.join_web_url},
            )
        else:
            if organizer:
                address = _email(owner)
            elif organizer_id is not None:
                address = _email(self._user_or_new(organizer_id))
            else:
                address = dict(OUTSIDE_ORGANIZER)
            fields.update(
                isOnlineMeeting=False,
                onlineMeetingProvider="unknown",
                organizer={"emailAddress": address},
                onlineMeeting=None,
            )
        fields["isCancelled"] = False
        event = Event(new_event_id(), owner.object_id, moment, moment, _change_key(), fields)
        self.events.setdefault(owner.object_id, {})[event.event_id] = event
        return event

    def update(
        self,
        user_id: str,
        event_id: str,
        fields: Mapping[str, Any],
        modified_at: datetime | str | None = None,
    ) -> Event:
        """Change some of an event's `EDITABLE_FIELDS` (Graph names), with a new
        lastModifiedDateTime and etag. Raises GraphFailure 404 for an unknown user or event,
        ValueError for a field that cannot be changed."""
        unknown = set(fields) - EDITABLE_FIELDS
        if unknown:
            raise ValueError(
                f"cannot change {sorted(unknown)}; editable: {sorted(EDITABLE_FIELDS)}"
            )
        event = self.get(user_id, event_id)
        event.fields.update(copy.deepcopy(dict(fields)))
        event.modified_at = _moment(modified_at)
        event.change_key = _change_key()
        return event

    def delete(self, user_id: str, event_id: str) -> Event:
        """Remove an event; raises GraphFailure 404 for an unknown user or event."""
        event = self.get(user_id, event_id)
        del self.events[event.owner_id][event.event_id]
        return event

    # Graph operations --------------------------------------------------------------------

    def get(self, user_id: str, event_id: str) -> Event:
        """`GET /users/{id}/events/{eventId}`: raises GraphFailure 404 for an unknown user
        (as the user lookup does) or an event not in that user's calendar."""
        owner = self.directory.find_user(user_id)
        event = self.events.get(owner.object_id, {}).get(event_id)
        if event is None:
            raise GraphFailure(404, "ErrorItemNotFound", NOT_FOUND)
        return event

    def find(self, user_id: str, time_filter: TimeFilter | None) -> list[Event]:
        """`GET /users/{id}/events?$filter=...`: the matching events, oldest added first.

        Raises GraphFailure 404 for an unknown user."""
        owner = self.directory.find_user(user_id)
        events = self.events.get(owner.object_id, {}).values()
        return [e for e in events if time_filter is None or time_filter.matches(e)]

    # Rules shared by the operations ------------------------------------------------------

    def _user_or_new(self, user_id: str) -> User:
        try:
            return self.directory.find_user(user_id)
        except GraphFailure:
            if "@" in user_id:
                raise ValueError(f"no user {user_id!r}: add it with its objectId first") from None
            return self.directory.add_user(user_id)

    def _meeting(
        self,
        owner: User,
        organizer: bool,
        organizer_id: str | None,
        meeting_id: str | None,
        subject: str,
    ) -> Meeting:
        host = self._user_or_new(organizer_id) if organizer_id is not None else None
        if host is not None and organizer != (host.object_id == owner.object_id):
            raise ValueError(
                "organizer_id must be the calendar's user for an organizer's event, "
                "and another user for an attendee's"
            )
        meeting = self.directory.meetings.get(meeting_id or "")
        if meeting is not None:
            if organizer != (meeting.organizer_id == owner.object_id):
                whose = "its organizer's" if organizer else "an attendee's"
                raise ValueError(
                    f"meeting {meeting_id!r} is organised by {meeting.organizer_id}: "
                    f"not {whose} event in the calendar of {owner.object_id}"
                )
            if host is not None and host.object_id != meeting.organizer_id:
                raise ValueError(f"meeting {meeting_id!r} is organised by {meeting.organizer_id}")
            return meeting
        if organizer:
            host = owner
        elif host is None:
            host = self.directory.add_user(str(uuid.uuid4()))
        return self.directory.add_meeting(
            host.object_id, meeting_id or new_meeting_id(host.object_id), subject=subject
        )


def _moment(value: datetime | str | None) -> datetime:
    if value is None:
        return utc_now()
    moment = parse_time(value) if isinstance(value, str) else value
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
