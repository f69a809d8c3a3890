"""worker.simulator calendar events: GET one, list with a filter and paging, the join link
that leads to the meeting, and the faults and records every Graph call gets."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from sim_helpers import MEETING, ORGANIZER, ORGANIZER_UPN, OTHER_USER, error_of

from worker import keys
from worker.graph.calendar import CalendarApi
from worker.simulator import SimulatorControl, ssl_context

GRAPH_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")
DAY = datetime(2026, 11, 27, tzinfo=UTC)


@pytest.fixture
def ada(sim):
    sim.state.add_user(ORGANIZER, upn=ORGANIZER_UPN)
    return ORGANIZER


def test_an_event_is_served_under_v1_with_the_fields_graph_gives(sim, graph, ada):
    added = sim.state.add_event(ada, subject="Quarterly review")

    response = graph.v1("GET", keys.event_path(ada, added["id"]))

    assert response.status_code == 200
    event = response.json()
    assert event["@odata.context"].startswith(f"{sim.graph_v1_url}/$metadata#users(")
    assert re.fullmatch(r"AAMkAD[A-Za-z0-9_-]+=", event["id"])
    assert re.fullmatch(r'W/"[^"]+"', event["@odata.etag"])
    assert GRAPH_TIME.match(event["createdDateTime"])
    assert GRAPH_TIME.match(event["lastModifiedDateTime"])
    assert event["subject"] == "Quarterly review"
    assert event["isOnlineMeeting"] is True
    assert event["onlineMeetingProvider"] == "teamsForBusiness"
    assert event["isOrganizer"] is True
    assert event["organizer"] == {"emailAddress": {"name": "Ada", "address": ORGANIZER_UPN}}
    assert event["onlineMeeting"]["joinUrl"].startswith(
        "https://teams.microsoft.com/l/meetup-join/"
    )


@pytest.mark.parametrize("root", ["v1.0", "beta"])
@pytest.mark.parametrize("user", [ORGANIZER, ORGANIZER_UPN, ORGANIZER_UPN.upper()])
def test_an_event_is_found_by_object_id_or_upn_under_either_root(sim, graph, ada, root, user):
    added = sim.state.add_event(ada)

    response = graph.request("GET", keys.event_path(user, added["id"]), root=root)

    assert response.status_code == 200
    assert response.json()["id"] == added["id"]


def test_select_returns_the_fields_asked_for_with_id_and_etag(sim, graph, ada):
    added = sim.state.add_event(ada)

    response = graph.v1(
        "GET",
        keys.event_path(ada, added["id"]),
        params={"$select": "isOnlineMeeting,onlineMeetingProvider,onlineMeeting"},
    )

    event = response.json()
    assert set(event) == {
        "@odata.context",
        "@odata.etag",
        "id",
        "isOnlineMeeting",
        "onlineMeetingProvider",
        "onlineMeeting",
    }
    assert event["onlineMeeting"] == added["onlineMeeting"]


def test_select_of_a_property_events_do_not_have_is_400(sim, graph, ada):
    added = sim.state.add_event(ada)

    response = graph.v1("GET", keys.event_path(ada, added["id"]), params={"$select": "colour"})

    assert response.status_code == 400
    assert "colour" in error_of(response)["message"]


def test_an_unknown_event_or_another_users_event_is_404_item_not_found(sim, graph, ada):
    sim.state.add_user(OTHER_USER)
    theirs = sim.state.add_event(OTHER_USER)

    unknown = graph.v1("GET", keys.event_path(ada, "AAMkADnothere="))
    elsewhere = graph.v1("GET", keys.event_path(ada, theirs["id"]))

    for response in (unknown, elsewhere):
        assert response.status_code == 404
        assert error_of(response)["code"] == "ErrorItemNotFound"


@pytest.mark.parametrize(
    "path",
    [keys.event_path("nobody@contoso.example", "AAMkADx="), "/users/nobody@contoso.example/events"],
)
def test_an_unknown_user_is_404_as_for_the_user_lookup(sim, graph, path):
    response = graph.v1("GET", path)

    assert response.status_code == 404
    assert error_of(response)["code"] == "Request_ResourceNotFound"


def test_a_teams_events_join_url_resolves_to_its_meeting_under_the_organizer(sim, graph, ada):
    event = sim.state.add_event(ada, meeting_id=MEETING)
    join_url = event["onlineMeeting"]["joinUrl"]

    found = graph.request(
        "GET",
        keys.online_meetings_path(ada),
        params={"$filter": f"JoinWebUrl eq '{join_url}'"},
    )

    assert found.status_code == 200
    assert [m["id"] for m in found.json()["value"]] == [MEETING]
    assert graph.post_registration(MEETING, ada).status_code == 201


def test_an_attendees_copy_links_to_another_organizers_meeting(sim, graph, ada):
    sim.state.add_user(OTHER_USER, upn="bob@contoso.example")

    copy = sim.state.add_event(OTHER_USER, organizer=False, organizer_id=ada)
    join_url = copy["onlineMeeting"]["joinUrl"]
    query = {"$filter": f"JoinWebUrl eq '{join_url}'"}

    assert copy["isOrganizer"] is False
    assert copy["organizer"]["emailAddress"]["address"] == ORGANIZER_UPN
    as_attendee = graph.request("GET", keys.online_meetings_path(OTHER_USER), params=query)
    as_organizer = graph.request("GET", keys.online_meetings_path(ada), params=query)
    assert as_attendee.status_code == 403
    assert as_organizer.status_code == 200
    assert len(as_organizer.json()["value"]) == 1


def test_events_of_organizer_and_attendee_share_one_seeded_meeting(sim, meeting, ada):
    seeded = meeting()
    sim.state.add_user(OTHER_USER)

    own = sim.state.add_event(ada, meeting_id=MEETING)
    copy = sim.state.add_event(OTHER_USER, organizer=False, meeting_id=MEETING)

    assert own["onlineMeeting"]["joinUrl"] == seeded["joinWebUrl"]
    assert copy["onlineMeeting"]["joinUrl"] == seeded["joinWebUrl"]
    assert sim.state.stats()["meetings"] == 1
    with pytest.raises(ValueError, match="organised by"):
        sim.state.add_event(OTHER_USER, organizer=True, meeting_id=MEETING)


def test_an_event_without_teams_has_no_online_meeting(sim, graph, ada):
    added = sim.state.add_event(ada, teams=False)

    event = graph.v1("GET", keys.event_path(ada, added["id"])).json()

    assert event["isOnlineMeeting"] is False
    assert event["onlineMeetingProvider"] == "unknown"
    assert event["onlineMeeting"] is None
    assert sim.state.stats()["meetings"] == 0


def test_update_event_changes_fields_and_bumps_last_modified_and_etag(sim, graph, ada):
    added = sim.state.add_event(ada, modified_at=DAY)

    updated = sim.state.update_event(
        ada, added["id"], onlineMeetingProvider="skypeForBusiness", subject="Moved"
    )
    served = graph.v1("GET", keys.event_path(ada, added["id"])).json()

    assert served["onlineMeetingProvider"] == "skypeForBusiness"
    assert served["subject"] == "Moved"
    assert served["@odata.etag"] == updated["@odata.etag"] != added["@odata.etag"]
    assert served["createdDateTime"] == "2026-11-27T00:00:00.0000000Z"
    assert served["lastModifiedDateTime"] > served["createdDateTime"]
    with pytest.raises(ValueError, match="cannot change"):
        sim.state.update_event(ada, added["id"], id="AAMkADother=")
    with pytest.raises(ValueError, match="no event"):
        sim.state.update_event(ada, "AAMkADnothere=", subject="x")


def test_a_deleted_event_is_404(sim, graph, ada):
    added = sim.state.add_event(ada)

    sim.state.delete_event(ada, added["id"])

    assert graph.v1("GET", keys.event_path(ada, added["id"])).status_code == 404
    assert sim.state.event(ada, added["id"]) is None


def test_the_events_list_filters_on_last_modified_or_created(sim, graph, ada):
    old = sim.state.add_event(ada, subject="old", modified_at=DAY - timedelta(days=2))
    new = sim.state.add_event(ada, subject="new", modified_at=DAY + timedelta(hours=1))
    sim.state.update_event(
        ada, old["id"], subject="old, edited", modified_at=DAY + timedelta(hours=2)
    )

    def subjects(expression: str) -> list[str]:
        response = graph.v1("GET", keys.events_path(ada), params={"$filter": expression})
        assert response.status_code == 200, response.text
        return [e["subject"] for e in response.json()["value"]]

    assert subjects("lastModifiedDateTime ge 2026-11-27T00:00:00Z") == ["old, edited", "new"]
    assert subjects("createdDateTime ge 2026-11-27T00:00:00Z") == ["new"]
    assert subjects("lastModifiedDateTime lt 2026-11-27T01:30:00.0000000Z") == ["new"]
    assert subjects("lastModifiedDateTime ge 2026-11-28T00:00:00+00:00") == []
    assert new["id"] != old["id"]


@pytest.mark.parametrize(
    "expression",
    ["subject eq 'x'", "lastModifiedDateTime ge yesterday", "lastModifiedDateTime between 1 2"],
)
def test_another_filter_on_the_events_list_is_400(sim, graph, ada, expression):
    response = graph.v1("GET", keys.events_path(ada), params={"$filter": expression})

    assert response.status_code == 400
    assert error_of(response)["code"] == "BadRequest"


def test_the_events_list_pages_by_top_with_an_absolute_next_link(sim, graph, ada):
    added = [sim.state.add_event(ada, subject=f"e{i}")["id"] for i in range(25)]
    params = {"$filter": "lastModifiedDateTime ge 2020-01-01T00:00:00Z", "$select": "subject"}

    pages = []
    response = graph.v1("GET", keys.events_path(ada), params=params)
    while True:
        assert response.status_code == 200
        page = response.json()
        pages.append([e["id"] for e in page["value"]])
        link = page.get("@odata.nextLink")
        if link is None:
            break
        assert link.startswith(f"{sim.graph_v1_url}/users/")
        parts = urlsplit(link)
        response = graph.http.get(
            f"{parts.path}?{parts.query}", headers={"Authorization": f"Bearer {graph.token}"}
        )

    assert [len(p) for p in pages] == [10, 10, 5]  # $top defaults to 10, as Graph's does
    assert [i for p in pages for i in p] == added
    top = graph.v1("GET", keys.events_path(ada), params={"$top": "20"}).json()
    assert len(top["value"]) == 20
    assert "$skip=20" in top["@odata.nextLink"]


def test_meetregs_calendar_api_reads_events_and_follows_next_links(sim, graph, ada):
    since = DAY
    sim.state.add_event(ada, modified_at=since - timedelta(minutes=1))
    wanted = [sim.state.add_event(ada, modified_at=since)["id"] for _ in range(60)]
    http = httpx.Client(
        verify=ssl_context(sim.ca_path), headers={"Authorization": f"Bearer {graph.token}"}
    )
    api = CalendarApi(http, sim.graph_v1_url)

    with http:
        seen = [e["id"] for e in api.events_changed_since(ORGANIZER_UPN, since)]
        one = api.get_event(ada, wanted[0])
        missing = api.get_event(ada, "AAMkADgone=")

    assert seen == wanted  # 60 events: two pages of meetreg's 50
    assert one is not None and one["onlineMeetingProvider"] == "teamsForBusiness"
    assert missing is None


def test_a_scripted_429_applies_to_an_event_get_and_is_recorded(sim, graph, ada):
    added = sim.state.add_event(ada)
    sim.state.script(added["id"], [{"status": 429, "retry_after": "2"}])
    path = keys.event_path(ada, added["id"])

    throttled = graph.v1("GET", path)
    served = graph.v1("GET", path)

    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "2"
    assert error_of(throttled)["code"] == "TooManyRequests"
    assert served.status_code == 200
    graph_requests = [r for r in sim.state.requests if r[1].startswith("/v1.0/")]
    assert graph_requests == [("GET", f"/v1.0{path}", 429), ("GET", f"/v1.0{path}", 200)]
    assert [e.key for e in sim.state.early_retries()] == [added["id"]]


def test_the_rate_limit_and_token_check_apply_to_the_events_list(sim, graph, ada):
    sim.state.set_faults(rate_limit_per_s=1)

    first = graph.v1("GET", keys.events_path(ada))
    second = graph.v1("GET", keys.events_path(ada))
    anonymous = graph.http.get(f"/v1.0{keys.events_path(ada)}")

    assert first.status_code == 200
    assert second.status_code == 429
    assert anonymous.status_code == 401
    assert sim.state.stats()["requests_by_status"]["GET 429"] == 1


def test_events_are_added_and_updated_over_the_control_api(sim, graph, ada):
    with SimulatorControl(sim.https_url, sim.ca_path) as control:
        added = control.add_event(ada, teams=False, modified_at="2026-11-27T08:00:00Z")
        more = control.add_events([{"user_id": ada}, {"user_id": ada, "subject": "Second"}])
        updated = control.update_event(ada, added["id"], isOnlineMeeting=True)
        control.delete_event(ada, more[0]["id"])
        with pytest.raises(httpx.HTTPStatusError) as unknown:
            control.update_event(ada, "AAMkADnothere=", subject="x")

    listed = graph.v1("GET", keys.events_path(ada)).json()["value"]
    assert [e["id"] for e in listed] == [added["id"], more[1]["id"]]
    assert added["lastModifiedDateTime"] == "2026-11-27T08:00:00.0000000Z"
    assert updated["isOnlineMeeting"] is True
    assert unknown.value.response.status_code == 400


def test_a_batch_under_v1_reads_events_and_records_their_v1_paths(sim, graph, ada):
    added = sim.state.add_event(ada)
    path = keys.event_path(ada, added["id"])
    requests = [
        {"id": "1", "method": "GET", "url": path},
        {"id": "2", "method": "GET", "url": keys.event_path(ada, "AAMkADnothere=")},
    ]

    response = graph.v1("POST", "/$batch", json={"requests": requests})

    statuses = {r["id"]: r["status"] for r in response.json()["responses"]}
    assert statuses == {"1": 200, "2": 404}
    assert ("GET", f"/v1.0{path}", 200) in sim.state.requests
