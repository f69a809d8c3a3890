"""worker.simulator JSON batching: items answered, faulted and throttled one by one."""

from __future__ import annotations

import pytest
from sim_helpers import EXTERNAL, MEETING, ORGANIZER, error_of

from worker import keys

OTHER_MEETING = "MSo2OTk5LWFiY2QtZWZnaC1pamtsLW1ub3BxcnN0dXZ3eHl6"
JSON = {"Content-Type": "application/json"}


def _post_item(item_id: str, meeting_id: str) -> dict:
    path = keys.registration_path(ORGANIZER, meeting_id)
    return {"id": item_id, "method": "POST", "url": path, "headers": JSON, "body": EXTERNAL}


def test_a_batch_answers_each_item(sim, graph, meeting):
    meeting()
    requests = [
        _post_item("1", MEETING),
        {"id": "2", "method": "GET", "url": keys.registration_path(ORGANIZER, OTHER_MEETING)},
    ]

    response = graph.request("POST", "/$batch", json={"requests": requests})

    assert response.status_code == 200
    items = {item["id"]: item for item in response.json()["responses"]}
    assert items["1"]["status"] == 201
    assert items["1"]["body"]["@odata.type"] == "#microsoft.graph.externalMeetingRegistration"
    assert items["2"]["status"] == 404
    assert items["2"]["body"]["error"]["code"] == "NotFound"
    assert sim.state.creations[MEETING] == 1


def test_a_throttled_item_carries_its_own_retry_after(sim, graph, meeting):
    meeting()
    meeting(OTHER_MEETING)
    sim.state.script(OTHER_MEETING, [{"status": 429, "retry_after": "3"}])

    response = graph.request(
        "POST",
        "/$batch",
        json={"requests": [_post_item("a", MEETING), _post_item("b", OTHER_MEETING)]},
    )

    items = {item["id"]: item for item in response.json()["responses"]}
    assert items["a"]["status"] == 201
    assert (items["b"]["status"], items["b"]["headers"]["Retry-After"]) == (429, "3")
    assert sim.state.registration(OTHER_MEETING) is None


def test_a_batch_of_more_than_20_is_refused_whole(sim, graph, meeting):
    meeting()

    response = graph.request(
        "POST", "/$batch", json={"requests": [_post_item(str(i), MEETING) for i in range(21)]}
    )

    assert response.status_code == 400
    assert error_of(response)["code"] == "BadRequest"
    assert sim.state.registration(MEETING) is None


def test_a_batch_with_duplicate_ids_is_refused_whole(sim, graph, meeting):
    meeting()

    response = graph.request(
        "POST", "/$batch", json={"requests": [_post_item("1", MEETING), _post_item("1", MEETING)]}
    )

    assert response.status_code == 400
    assert sim.state.registration(MEETING) is None


def test_a_batch_whose_ids_differ_only_in_case_is_refused_whole(sim, graph, meeting):
    """Graph compares request ids without regard to case."""
    meeting()
    meeting(OTHER_MEETING)
    requests = [_post_item("item-a", MEETING), _post_item("ITEM-A", OTHER_MEETING)]

    response = graph.request("POST", "/$batch", json={"requests": requests})

    assert response.status_code == 400
    assert error_of(response)["code"] == "BadRequest"
    assert sim.state.creations == {}


def test_a_batch_item_url_may_leave_out_the_leading_slash(sim, graph, meeting):
    meeting()
    item = _post_item("1", MEETING)
    item["url"] = item["url"].removeprefix("/")
    assert not item["url"].startswith("/")

    response = graph.request("POST", "/$batch", json={"requests": [item]})

    assert response.status_code == 200
    (answer,) = response.json()["responses"]
    assert answer["status"] == 201
    assert sim.state.creations[MEETING] == 1
    path = "/beta" + keys.registration_path(ORGANIZER, MEETING)
    assert ("POST", path, 201) in sim.state.requests


@pytest.mark.parametrize(
    "url", ["https://graph.microsoft.com/beta/users", "//graph.microsoft.com/beta/users"]
)
def test_a_batch_item_url_with_a_scheme_or_host_is_refused(sim, graph, url):
    item = {"id": "1", "method": "GET", "url": url}

    assert graph.request("POST", "/$batch", json={"requests": [item]}).status_code == 400


def test_a_batch_item_with_a_body_but_no_content_type_is_refused(sim, graph, meeting):
    meeting()
    item = {**_post_item("1", MEETING), "headers": {}}

    assert graph.request("POST", "/$batch", json={"requests": [item]}).status_code == 400
