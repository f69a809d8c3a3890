"""worker.simulator routing: the raw path decides, so an id can never reach another route."""

from __future__ import annotations

import pytest
from sim_helpers import EXTERNAL, MEETING, ORGANIZER, error_of

from worker import keys

TRICKY_IDS = [
    "a/b",
    "...",
    ".a",
    "x?y=1",
    "x#y",
    "%2F",
    "../../../_sim/reset",
    "MSp1/../../users/" + ORGANIZER,
    "a b+c:d@e_f",
]


@pytest.mark.parametrize("meeting_id", TRICKY_IDS)
def test_a_tricky_meeting_id_stays_one_segment(sim, graph, meeting_id):
    sim.state.add_user(ORGANIZER)
    path = "/beta" + keys.registration_path(ORGANIZER, meeting_id)

    missing = graph.post_registration(meeting_id)

    # The meeting is unknown, so NotFound from the registration route: never another route.
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "NotFound"
    assert sim.state.requests[-1] == ("POST", path, 404)
    sim.state.add_meeting(ORGANIZER, meeting_id)
    created = graph.post_registration(meeting_id)
    assert created.status_code == 201
    assert sim.state.registration(meeting_id) is not None
    assert sim.state.creations == {meeting_id: 1}
    assert [p for _, p, _ in sim.state.requests if not p.startswith(f"/{sim.tenant_id}/")] == [
        path,
        path,
    ]


def test_a_percent_sign_is_decoded_exactly_once(sim, graph):
    sim.state.add_meeting(ORGANIZER, "%2F")

    assert graph.post_registration("/").status_code == 404
    assert graph.post_registration("%2F").status_code == 201


@pytest.mark.parametrize("user_id", ["...", "a/b", "x?y"])
def test_a_tricky_user_id_stays_one_segment(sim, graph, user_id):
    response = graph.request("GET", keys.user_path(user_id))

    assert response.status_code == 404
    assert error_of(response)["code"] == "Request_ResourceNotFound"


@pytest.mark.parametrize(
    "path",
    [
        "/beta/groups",
        "/beta/users",
        "/beta/users/",
        f"/beta/users/{ORGANIZER}/onlineMeetings/{MEETING}/attendanceReports",
        f"/beta/users/{ORGANIZER}/onlineMeetings/{MEETING}/registration/extra",
        f"/beta/users/{ORGANIZER}/onlineMeetings//registration",
        "/v1.0/users",
    ],
)
def test_an_unknown_path_is_400_bad_request_as_at_graph(sim, graph, path):
    sim.state.add_meeting(ORGANIZER, MEETING)

    response = graph.http.post(
        path, json=EXTERNAL, headers={"Authorization": f"Bearer {graph.token}"}
    )

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "BadRequest"
    assert error["message"].startswith("Resource not found for the segment")
    assert sim.state.registration(MEETING) is None


def test_registration_under_v1_is_unknown_as_at_graph_alone_or_in_a_batch(sim, graph):
    sim.state.add_meeting(ORGANIZER, MEETING)
    path = keys.registration_path(ORGANIZER, MEETING)
    item = {"id": "1", "method": "POST", "url": path, "body": EXTERNAL}
    item["headers"] = {"Content-Type": "application/json"}

    alone = graph.v1("POST", path, json=EXTERNAL)
    batched = graph.v1("POST", "/$batch", json={"requests": [item]})

    assert alone.status_code == 400
    assert error_of(alone)["code"] == "BadRequest"
    assert error_of(alone)["message"] == "Resource not found for the segment 'registration'."
    (answer,) = batched.json()["responses"]
    assert answer["status"] == 400
    assert answer["body"]["error"]["code"] == "BadRequest"
    assert (
        answer["body"]["error"]["message"] == "Resource not found for the segment 'registration'."
    )
    assert sim.state.registration(MEETING) is None
    assert graph.post_registration().status_code == 201  # beta, where it lives


def test_a_meeting_can_be_read_but_not_posted_to(sim, graph):
    sim.state.add_meeting(ORGANIZER, MEETING)
    headers = {"Authorization": f"Bearer {graph.token}"}
    path = f"/beta/users/{ORGANIZER}/onlineMeetings/{MEETING}"
    assert graph.http.get(path, headers=headers).json()["id"] == MEETING
    assert graph.http.get(path + "x", headers=headers).status_code == 404
    assert graph.http.post(path, json=EXTERNAL, headers=headers).status_code == 405
    assert sim.state.registration(MEETING) is None


@pytest.mark.parametrize(
    ("path", "segment"),
    [
        ("/beta/solutions", "solutions"),
        ("/v1.0/solutions/bookingBusinesses", "bookingBusinesses"),
        ("/beta/solutions/virtualEvents/webinars/w%40x/sessions", "sessions"),
        ("/beta/solutions/virtualEvents/webinars/w%40x/registrations/r/extra", "extra"),
        ("/beta/solutions/virtualEvents/webinars//registrations", ""),
    ],
)
def test_an_unknown_path_under_solutions_names_its_segment(sim, graph, path, segment):
    response = graph.http.get(path, headers={"Authorization": f"Bearer {graph.token}"})
    assert response.status_code == 400
    assert error_of(response)["message"] == f"Resource not found for the segment '{segment}'."


@pytest.mark.parametrize("webinar_id", ["a%2Fb%40c", "..%40x", "getByUserRole%40x"])
def test_a_tricky_webinar_id_stays_one_segment(sim, graph, webinar_id):
    response = graph.request("GET", f"/solutions/virtualEvents/webinars/{webinar_id}")
    assert response.status_code == 404
    assert error_of(response)["code"] == "NotFound"
