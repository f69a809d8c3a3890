"""worker.simulator.calendar: events in each user's calendar and the meetings they link to,
as plain data (the routes' HTTP tests are in test_calendar_routes.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sim_helpers import ORGANIZER, ORGANIZER_UPN, OTHER_USER

from worker.simulator.calendar import Calendar, TimeFilter
from worker.simulator.directory import Directory
from worker.simulator.errors import GraphFailure


@pytest.fixture
def calendar() -> Calendar:
    directory = Directory("contoso-tenant")
    directory.add_user(ORGANIZER, upn=ORGANIZER_UPN)
    return Calendar(directory)


def test_a_teams_event_links_to_a_new_meeting_of_its_organizer(calendar):
    event = calendar.add(ORGANIZER_UPN).to_graph()

    join_url = event["onlineMeeting"]["joinUrl"]
    meeting = calendar.directory.meetings[calendar.directory.by_join_url[join_url]]
    assert meeting.organizer_id == ORGANIZER
    assert event["organizer"]["emailAddress"]["address"] == ORGANIZER_UPN
    assert (event["isOrganizer"], event["onlineMeetingProvider"]) == (True, "teamsForBusiness")
    assert event["id"].startswith("AAMkAD") and event["id"].endswith("=")


def test_an_attendees_event_links_to_the_organizers_meeting(calendar):
    hosted = calendar.add(ORGANIZER, meeting_id="shared")
    copy = calendar.add(OTHER_USER, organizer=False, meeting_id="shared").to_graph()

    assert copy["onlineMeeting"] == hosted.to_graph()["onlineMeeting"]
    assert copy["isOrganizer"] is False
    with pytest.raises(ValueError, match="organised by"):
        calendar.add(OTHER_USER, organizer=True, meeting_id="shared")


def test_an_unknown_upn_is_refused_but_an_unknown_object_id_is_added(calendar):
    with pytest.raises(ValueError, match="no user"):
        calendar.add("nobody@contoso.example")

    calendar.add(OTHER_USER, teams=False)

    assert OTHER_USER in calendar.directory.users
    assert len(calendar) == 1


def test_update_changes_fields_a_new_etag_and_last_modified(calendar):
    event = calendar.add(ORGANIZER, modified_at="2026-01-01T00:00:00Z")
    etag = event.etag

    changed = calendar.update(
        ORGANIZER, event.event_id, {"subject": "Moved"}, "2026-02-01T00:00:00Z"
    )

    assert changed.fields["subject"] == "Moved"
    assert changed.etag != etag
    assert changed.modified_at == datetime(2026, 2, 1, tzinfo=UTC)
    assert changed.created_at == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="cannot change"):
        calendar.update(ORGANIZER, event.event_id, {"id": "mine"})


def test_an_event_is_only_found_in_its_owners_calendar_until_deleted(calendar):
    event = calendar.add(ORGANIZER)
    calendar.directory.add_user(OTHER_USER)

    assert calendar.get(ORGANIZER_UPN, event.event_id) is event
    with pytest.raises(GraphFailure) as elsewhere:
        calendar.get(OTHER_USER, event.event_id)
    calendar.delete(ORGANIZER, event.event_id)
    with pytest.raises(GraphFailure) as deleted:
        calendar.get(ORGANIZER, event.event_id)

    assert elsewhere.value.code == deleted.value.code == "ErrorItemNotFound"


@pytest.mark.parametrize(
    ("comparison", "subjects"),
    [("ge", ["feb", "mar"]), ("gt", ["mar"]), ("lt", ["jan"]), ("eq", ["feb"])],
)
def test_a_time_filter_keeps_the_matching_events_in_the_order_added(calendar, comparison, subjects):
    for subject, month in (("jan", 1), ("feb", 2), ("mar", 3)):
        calendar.add(ORGANIZER, subject=subject, modified_at=datetime(2026, month, 1, tzinfo=UTC))
    since = TimeFilter("lastModifiedDateTime", comparison, datetime(2026, 2, 1, tzinfo=UTC))

    assert [e.fields["subject"] for e in calendar.find(ORGANIZER, since)] == subjects
