"""From a calendar event to a registration: the event-triggered producer.

A change notification only names an event. Here meetreg reads the event, decides whether
it is a Teams meeting this user organises, and if so enqueues a one-row batch naming the
meeting by its join link; the worker then resolves the link to the meeting
(`JoinWebUrl` filter under the organizer) and registers it like any CSV row, with the same
idempotency: a meeting is registered at most once however many notifications name it.

The batch id is derived from the organizer and the join link, so a redelivered
notification, an update to the same event and every occurrence of a recurring meeting
(which share one join link) all name the same batch, and add nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from jobs.enqueue import PublishMany, enqueue_rows
from jobs.events.notifications import ChangeNotification
from worker.graph.calendar import CalendarApi
from worker.store.outcome_store import OutcomeStore
from worker.validation import InvalidRow, validate

log = logging.getLogger(__name__)

TEAMS_PROVIDER = "teamsForBusiness"


class EventVerdict(StrEnum):
    """What became of one event."""

    ENQUEUED = "enqueued"  # a Teams meeting of this organizer: its batch was enqueued
    ALREADY_ENQUEUED = "already_enqueued"  # its batch exists: a redelivery or a later change
    NOT_TEAMS = "not_teams"  # not an online meeting, or not on Teams
    NOT_ORGANIZER = "not_organizer"  # the calendar's owner is an attendee, not the organizer
    GONE = "gone"  # the event no longer exists
    INVALID = "invalid"  # the event's join link is not one meetreg can use


@dataclass(frozen=True, slots=True)
class EventOutcome:
    verdict: EventVerdict
    batch_id: str = ""
    detail: str = ""


def join_url_to_register(event: dict[str, Any]) -> tuple[EventVerdict | None, str]:
    """The event's join link if it is a Teams meeting the calendar's owner organises;
    otherwise the verdict that says why not, and "". A pure function of the event."""
    if event.get("isOnlineMeeting") is not True:
        return EventVerdict.NOT_TEAMS, ""
    if event.get("onlineMeetingProvider") != TEAMS_PROVIDER:
        return EventVerdict.NOT_TEAMS, ""
    if event.get("isOrganizer") is not True:
        return EventVerdict.NOT_ORGANIZER, ""
    meeting = event.get("onlineMeeting")
    join_url = meeting.get("joinUrl") if isinstance(meeting, dict) else None
    if not isinstance(join_url, str) or not join_url:
        return EventVerdict.INVALID, ""
    return None, join_url


def event_batch_id(user_id: str, join_url: str) -> str:
    digest = hashlib.sha256(f"{user_id.lower()}\x00{join_url}".encode()).hexdigest()[:24]
    return f"event-{digest}"


def enqueue_event(
    event: dict[str, Any],
    user_id: str,
    *,
    store: OutcomeStore,
    publish: PublishMany,
    source: str,
) -> EventOutcome:
    """Enqueue the event's meeting if it is one to register (see `join_url_to_register`)."""
    verdict, join_url = join_url_to_register(event)
    if verdict is not None:
        return EventOutcome(verdict)
    batch_id = event_batch_id(user_id, join_url)
    if store.batch_exists(batch_id):
        return EventOutcome(EventVerdict.ALREADY_ENQUEUED, batch_id)
    row = validate({"user_id": user_id, "join_web_url": join_url}, line=1)
    if isinstance(row, InvalidRow):
        return EventOutcome(EventVerdict.INVALID, detail=row.error)
    enqueue_rows([row], store=store, publish=publish, source=source, batch_id=batch_id)
    return EventOutcome(EventVerdict.ENQUEUED, batch_id)


def handle_change(
    note: ChangeNotification, *, calendar: CalendarApi, store: OutcomeStore, publish: PublishMany
) -> EventOutcome:
    """Read the event a notification names and enqueue its meeting. Raises GraphError
    (a transient one is worth retrying) and StoreError."""
    event = calendar.get_event(note.user_id, note.event_id)
    if event is None:
        return EventOutcome(EventVerdict.GONE)
    source = f"event users/{note.user_id}/events/{note.event_id}"
    return enqueue_event(event, note.user_id, store=store, publish=publish, source=source)


def catch_up(
    user_id: str,
    since: datetime,
    *,
    calendar: CalendarApi,
    store: OutcomeStore,
    publish: PublishMany,
) -> list[EventOutcome]:
    """After a lifecycle notification (notifications may have been lost): every event of
    the user changed since `since`, as if each had been notified. Raises GraphError and
    StoreError."""
    events: Iterable[dict[str, Any]] = calendar.events_changed_since(user_id, since)
    outcomes = []
    for event in events:
        source = f"catch-up users/{user_id}/events/{event.get('id', '')}"
        outcomes.append(enqueue_event(event, user_id, store=store, publish=publish, source=source))
    return outcomes
