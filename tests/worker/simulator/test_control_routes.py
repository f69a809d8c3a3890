"""worker.simulator.control_routes: the `/_sim/` API as raw HTTP, its 404 and 400 answers,
and that its requests are not counted among Graph's."""

from __future__ import annotations

from sim_helpers import MEETING, ORGANIZER


def test_seeding_over_http_adds_one_or_many(sim, http):
    one = http.post("/_sim/meetings", json={"organizer_id": ORGANIZER, "meeting_id": MEETING})
    many = http.post(
        "/_sim/meetings",
        json={"meetings": [{"organizer_id": ORGANIZER, "meeting_id": f"m-{i}"} for i in range(3)]},
    )

    assert (one.status_code, one.json()["id"]) == (200, MEETING)
    assert many.json() == {"added": 3}
    assert http.get("/_sim/stats").json()["meetings"] == 4


def test_an_unknown_endpoint_or_method_is_404(http):
    unknown = http.get("/_sim/nothing")
    wrong_method = http.get("/_sim/reset")
    nested = http.get("/_sim/stats/more")

    assert [r.status_code for r in (unknown, wrong_method, nested)] == [404, 404, 404]
    assert unknown.json() == {"error": "no control endpoint GET /_sim/nothing"}


def test_bad_input_is_400_naming_the_error(http):
    not_json = http.post("/_sim/conflict", content=b"{not json")
    missing = http.post("/_sim/conflict", json={})
    bad_retries = http.post(
        "/_sim/deliver", json={"url": "http://x", "payload": {}, "retries": "2"}
    )

    assert [r.status_code for r in (not_json, missing, bad_retries)] == [400, 400, 400]
    assert missing.json()["error"].startswith("KeyError")
    assert "retries must be an integer" in bad_retries.json()["error"]


def test_control_requests_are_not_counted_and_requests_keeps_the_last_n(sim, graph):
    for path in ("/users/a", "/users/b", "/users/c"):
        graph.request("GET", path)
    graph.http.get("/_sim/stats")

    last_two = graph.http.get("/_sim/requests", params={"limit": 2}).json()["value"]
    none = graph.http.get("/_sim/requests", params={"limit": 0}).json()["value"]

    assert last_two == [["GET", "/beta/users/b", 404], ["GET", "/beta/users/c", 404]]
    assert none == []
    assert all(not path.startswith("/_sim") for _, path, _ in sim.state.requests)
