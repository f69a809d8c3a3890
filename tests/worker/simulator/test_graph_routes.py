"""worker.simulator Graph endpoints: registration, user lookup, JoinWebUrl filter, auth."""

from __future__ import annotations

import uuid

import pytest
from sim_helpers import EXTERNAL, MEETING, ORGANIZER, OTHER_USER, error_of

from worker import keys


def test_post_creates_an_external_registration(sim, graph, meeting):
    meeting()

    response = graph.post_registration()

    assert response.status_code == 201
    body = response.json()
    assert body["@odata.type"] == "#microsoft.graph.externalMeetingRegistration"
    assert body["allowedRegistrant"] == "everyone"
    assert uuid.UUID(body["id"])
    assert body["@odata.context"].endswith("/registration")
    assert uuid.UUID(response.headers["request-id"])
    assert sim.state.registration(MEETING)["id"] == body["id"]
    assert sim.state.creations[MEETING] == 1


@pytest.mark.parametrize(
    ("mode", "second_status", "creations"),
    [("409", 409, 1), ("400", 400, 1), ("replace", 201, 2)],
)
def test_a_second_post_follows_the_conflict_mode(
    sim, graph, meeting, mode, second_status, creations
):
    sim.state.set_conflict(mode)
    meeting()

    first = graph.post_registration()
    second = graph.post_registration()

    assert first.status_code == 201
    assert second.status_code == second_status
    assert sim.state.creations[MEETING] == creations
    if mode == "replace":
        assert second.json()["id"] != first.json()["id"]
        assert sim.state.registration(MEETING)["id"] == second.json()["id"]
        assert sim.state.stats()["duplicates"] == [MEETING]
    else:
        error = error_of(second)
        assert error["code"] == ("Conflict" if mode == "409" else "BadRequest")
        assert error["message"] == "An online meeting can only have one registration enabled."
        assert sim.state.registration(MEETING)["id"] == first.json()["id"]


@pytest.mark.parametrize(
    ("existing", "odata_type"),
    [
        ("external", "#microsoft.graph.externalMeetingRegistration"),
        ("microsoft", "#microsoft.graph.meetingRegistration"),
    ],
)
def test_a_seeded_registration_conflicts_and_get_tells_its_kind(
    sim, graph, meeting, existing, odata_type
):
    meeting(existing=existing)

    post = graph.post_registration()
    get = graph.get_registration()

    assert post.status_code == 409
    assert get.status_code == 200
    assert get.json()["@odata.type"] == odata_type
    assert sim.state.creations[MEETING] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"allowedRegistrant": "everyone"},
        {"@odata.type": "#microsoft.graph.somethingElse", "allowedRegistrant": "everyone"},
    ],
)
def test_post_without_the_external_odata_type_is_400(sim, graph, meeting, body):
    meeting()

    response = graph.post_registration(body=body)

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "BadRequest"
    assert error["message"] == (
        "Provide microsoft.graph.meetingRegistration or "
        "microsoft.graph.externalMeetingRegistration in request body"
    )
    assert sim.state.registration(MEETING) is None


@pytest.mark.parametrize("registrant", ["unknownFutureValue", "", None])
def test_post_with_a_bad_allowed_registrant_is_400(graph, meeting, registrant):
    meeting()

    response = graph.post_registration(body={**EXTERNAL, "allowedRegistrant": registrant})

    assert response.status_code == 400


def test_post_with_a_body_that_is_not_json_is_400(graph, meeting):
    meeting()

    response = graph.request(
        "POST",
        keys.registration_path(ORGANIZER, MEETING),
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert error_of(response)["code"] == "BadRequest"


def test_organization_registrant_is_kept(graph, meeting):
    meeting()

    response = graph.post_registration(body={**EXTERNAL, "allowedRegistrant": "organization"})

    assert response.json()["allowedRegistrant"] == "organization"


def test_a_user_without_the_application_access_policy_gets_403(sim, graph, meeting):
    sim.state.add_user(ORGANIZER, access_policy=False)
    meeting()

    response = graph.post_registration()

    assert response.status_code == 403
    error = error_of(response)
    assert error["code"] == "Forbidden"
    assert error["message"] == "No Application Access Policy found for this app"


def test_an_unknown_user_gets_403(graph, meeting):
    meeting()

    assert graph.post_registration(user_id=OTHER_USER).status_code == 403


def test_an_unknown_meeting_is_404(sim, graph):
    sim.state.add_user(ORGANIZER)

    response = graph.post_registration()

    assert response.status_code == 404
    assert error_of(response)["code"] == "NotFound"


def test_a_meeting_under_another_user_is_404_organizer_id_mismatch(sim, graph, meeting):
    meeting()
    sim.state.add_user(OTHER_USER)

    response = graph.post_registration(user_id=OTHER_USER)

    assert response.status_code == 404
    assert error_of(response)["message"] == "Organizer Id mismatch"
    assert sim.state.registration(MEETING) is None


def test_get_and_delete_follow_the_registration(sim, graph, meeting):
    meeting()

    assert graph.get_registration().status_code == 404
    created = graph.post_registration().json()
    got = graph.get_registration()
    assert got.status_code == 200
    assert got.json()["id"] == created["id"]
    deleted = graph.delete_registration()
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert graph.delete_registration().status_code == 404
    assert graph.get_registration().status_code == 404
    assert sim.state.registration(MEETING) is None


def test_get_checks_the_organizer_too(sim, graph, meeting):
    meeting(existing="external")
    sim.state.add_user(OTHER_USER)

    assert graph.get_registration(user_id=OTHER_USER).status_code == 404


def test_a_wrong_method_on_a_known_path_is_405(graph, meeting):
    meeting()

    response = graph.request("PATCH", keys.registration_path(ORGANIZER, MEETING), json=EXTERNAL)

    assert response.status_code == 405


def test_a_upn_resolves_to_the_object_id(sim, graph):
    sim.state.add_user(ORGANIZER, upn="Ada.Lovelace@contoso.example")

    by_upn = graph.request(
        "GET", keys.user_path("ada.lovelace@contoso.example"), params={"$select": "id"}
    )
    by_id = graph.request("GET", keys.user_path(ORGANIZER.upper()))

    assert by_upn.status_code == 200
    assert by_upn.json()["id"] == ORGANIZER
    assert "userPrincipalName" not in by_upn.json()
    assert by_id.json()["userPrincipalName"] == "Ada.Lovelace@contoso.example"


def test_an_unknown_upn_is_404_request_resource_not_found(graph):
    response = graph.request(
        "GET", keys.user_path("nobody@contoso.example"), params={"$select": "id"}
    )

    assert response.status_code == 404
    assert error_of(response)["code"] == "Request_ResourceNotFound"


def _find(graph, user_id: str, join_web_url: str):
    escaped = join_web_url.replace("'", "''")
    return graph.request(
        "GET", keys.online_meetings_path(user_id), params={"$filter": f"JoinWebUrl eq '{escaped}'"}
    )


def test_the_join_url_filter_finds_the_organizers_meeting(graph, meeting):
    seeded = meeting()

    response = _find(graph, ORGANIZER, seeded["joinWebUrl"])

    assert response.status_code == 200
    [found] = response.json()["value"]
    assert found["id"] == MEETING
    assert found["joinWebUrl"] == seeded["joinWebUrl"]
    assert found["subject"]


def test_the_join_url_filter_unquotes_doubled_quotes(graph, meeting):
    url = "https://teams.microsoft.com/l/meetup-join/19%3ameeting_x%40thread.v2/0?context=O'Brien+%7b%7d"
    meeting(join_web_url=url)

    response = _find(graph, ORGANIZER, url)

    assert [m["id"] for m in response.json()["value"]] == [MEETING]


def test_the_join_url_filter_finds_nothing_for_an_unknown_link(sim, graph):
    sim.state.add_user(ORGANIZER)

    response = _find(graph, ORGANIZER, "https://teams.microsoft.com/l/meetup-join/unknown")

    assert response.status_code == 200
    assert response.json()["value"] == []


def test_the_join_url_filter_is_403_for_a_non_organizer(sim, graph, meeting):
    seeded = meeting()
    sim.state.add_user(OTHER_USER)

    response = _find(graph, OTHER_USER, seeded["joinWebUrl"])

    assert response.status_code == 403
    assert error_of(response)["code"] == "Forbidden"


def test_a_filter_on_anything_else_is_400(sim, graph):
    sim.state.add_user(ORGANIZER)

    response = graph.request(
        "GET", keys.online_meetings_path(ORGANIZER), params={"$filter": "subject eq 'x'"}
    )

    assert response.status_code == 400


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic abc"])
def test_graph_requires_a_valid_bearer_token(sim, http, meeting, authorization):
    meeting()
    headers = {"Authorization": authorization} if authorization else {}

    response = http.post(
        f"/beta{keys.registration_path(ORGANIZER, MEETING)}", json=EXTERNAL, headers=headers
    )

    assert response.status_code == 401
    error = error_of(response)
    assert error["code"] == "InvalidAuthenticationToken"
    assert error["message"] == "Access token has expired or is not yet valid."
    assert sim.state.registration(MEETING) is None


def test_every_response_carries_a_request_id_and_the_client_request_id_comes_back(graph, meeting):
    meeting()
    client_request_id = str(uuid.uuid4())

    response = graph.post_registration(headers={"client-request-id": client_request_id})
    failure = graph.post_registration(headers={"client-request-id": client_request_id})

    assert uuid.UUID(response.headers["request-id"])
    assert response.headers["client-request-id"] == client_request_id
    assert error_of(failure)["innerError"]["client-request-id"] == client_request_id
    assert failure.headers["request-id"] != response.headers["request-id"]


def test_statistics_count_requests_by_method_and_status(sim, graph, meeting):
    meeting()

    graph.post_registration()
    graph.post_registration()
    graph.get_registration()

    stats = sim.state.stats()
    assert stats["requests_by_status"] == {"POST 201": 1, "POST 409": 1, "GET 200": 1}
    assert stats["creations"] == {MEETING: 1}
    assert stats["duplicates"] == []
    assert stats["tokens_issued"] == 1
    assert stats["in_flight_max"] >= 1
