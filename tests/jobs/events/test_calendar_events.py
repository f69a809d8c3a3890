"""Which calendar events become registrations, and under which batch id."""

from __future__ import annotations

import pytest

from jobs.events.calendar_events import EventVerdict, event_batch_id, join_url_to_register

JOIN = "https://teams.microsoft.com/l/meetup-join/19%3ameeting_x%40thread.v2/0"


def event(**fields: object) -> dict:
    base = {
        "isOnlineMeeting": True,
        "onlineMeetingProvider": "teamsForBusiness",
        "isOrganizer": True,
        "onlineMeeting": {"joinUrl": JOIN},
    }
    base.update(fields)
    return base


@pytest.mark.parametrize(
    ("fields", "verdict"),
    [
        ({}, None),
        ({"isOnlineMeeting": False, "onlineMeeting": None}, EventVerdict.NOT_TEAMS),
        ({"onlineMeetingProvider": "skypeForBusiness"}, EventVerdict.NOT_TEAMS),
        ({"onlineMeetingProvider": "unknown"}, EventVerdict.NOT_TEAMS),
        ({"isOrganizer": False}, EventVerdict.NOT_ORGANIZER),
        ({"onlineMeeting": None}, EventVerdict.INVALID),
        ({"onlineMeeting": {"joinUrl": ""}}, EventVerdict.INVALID),
        ({"isOnlineMeeting": "true"}, EventVerdict.NOT_TEAMS),
    ],
)
def test_only_teams_meetings_the_owner_organises_are_registered(
    fields: dict, verdict: EventVerdict | None
) -> None:
    found, join_url = join_url_to_register(event(**fields))
    assert found == verdict
    assert join_url == (JOIN if verdict is None else "")


def test_the_batch_id_is_the_same_for_every_notification_of_one_meeting() -> None:
    assert event_batch_id("U-1", JOIN) == event_batch_id("u-1", JOIN)
    assert event_batch_id("u-1", JOIN) != event_batch_id("u-1", JOIN + "1")
    assert event_batch_id("u-1", JOIN).startswith("event-")
