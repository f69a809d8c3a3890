"""worker.simulator faults: the rate limit, scripts, random faults, commits whose answer is lost."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from sim_helpers import MEETING, ORGANIZER, error_of, wait_until

from worker import keys

OTHER_MEETING = "MSo2OTk5LWFiY2QtZWZnaC1pamtsLW1ub3BxcnN0dXZ3eHl6"


def test_the_rate_limit_answers_429_with_an_integer_retry_after(sim, graph, meeting):
    meeting()
    sim.state.set_faults(rate_limit_per_s=2, retry_after_style="int")

    statuses = [graph.get_registration().status_code for _ in range(3)]

    assert statuses == [404, 404, 429]
    throttled = graph.get_registration()
    assert throttled.status_code == 429
    assert error_of(throttled)["code"] == "TooManyRequests"
    assert throttled.headers["Retry-After"] == "1"
    assert sim.state.stats()["requests_by_status"]["GET 429"] == 2


def test_the_rate_limit_can_answer_a_fractional_retry_after(sim, graph, meeting):
    meeting()
    sim.state.set_faults(rate_limit_per_s=1, retry_after_style="float")

    graph.get_registration()
    throttled = graph.get_registration()

    assert throttled.status_code == 429
    assert re.fullmatch(r"\d+\.\d{3}", throttled.headers["Retry-After"])
    assert 0 < float(throttled.headers["Retry-After"]) <= 1


def test_a_caller_that_waits_out_retry_after_is_served_again(sim, graph, meeting):
    meeting()
    sim.state.set_faults(rate_limit_per_s=1, retry_after_style="float")
    graph.get_registration()
    throttled = graph.get_registration()
    allowed_at = time.monotonic() + float(throttled.headers["Retry-After"])

    wait_until(lambda: time.monotonic() >= allowed_at)

    assert graph.get_registration().status_code == 404  # served: the meeting has none
    assert sim.state.early_retries_global() == []


def test_a_scripted_429_carries_its_retry_after_and_then_normal_service_resumes(
    sim, graph, meeting
):
    meeting()
    sim.state.script(
        MEETING, [{"status": 429, "retry_after": "0.5"}, {"status": 429, "retry_after": "2"}]
    )

    first = graph.post_registration()
    second = graph.post_registration()
    third = graph.post_registration()

    assert (first.status_code, first.headers["Retry-After"]) == (429, "0.5")
    assert (second.status_code, second.headers["Retry-After"]) == (429, "2")
    assert third.status_code == 201
    assert sim.state.creations[MEETING] == 1


def test_early_retries_are_recorded_per_meeting_and_globally(sim, graph, meeting):
    meeting()
    meeting(OTHER_MEETING)
    sim.state.script(MEETING, [{"status": 429, "retry_after": "0.5"}])

    throttled_at = time.monotonic()
    assert graph.post_registration().status_code == 429
    graph.post_registration(OTHER_MEETING)  # another meeting, inside the global pause
    graph.get_registration()  # the same meeting, too early

    early = sim.state.early_retries()
    assert [e.key for e in early] == [MEETING]
    assert [e.key for e in sim.state.early_retries_global()] == [OTHER_MEETING, MEETING]
    assert early[0].early_by_s > 0
    wait_until(lambda: time.monotonic() > throttled_at + 0.55)
    assert graph.post_registration().status_code == 201
    assert len(sim.state.early_retries()) == 1
    assert len(sim.state.early_retries_global()) == 2


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_scripted_server_error_commits_nothing(sim, graph, meeting, status):
    meeting()
    sim.state.script(MEETING, [{"status": status}])

    failed = graph.post_registration()

    assert failed.status_code == status
    assert error_of(failed)["code"]
    assert sim.state.registration(MEETING) is None
    assert graph.post_registration().status_code == 201


@pytest.mark.parametrize(
    ("status", "code"), [(400, "BadRequest"), (403, "Forbidden"), (404, "NotFound")]
)
def test_a_scripted_client_error_commits_nothing(sim, graph, meeting, status, code):
    meeting()
    sim.state.script(MEETING, [{"status": status}])

    failed = graph.post_registration()

    assert (failed.status_code, error_of(failed)["code"]) == (status, code)
    assert sim.state.registration(MEETING) is None


def test_a_scripted_401_leaves_the_token_valid(sim, graph, meeting):
    meeting()
    sim.state.script(MEETING, [{"status": 401}])

    rejected = graph.post_registration()

    assert rejected.status_code == 401
    assert error_of(rejected)["code"] == "InvalidAuthenticationToken"
    assert graph.post_registration().status_code == 201


def test_commit_then_500_creates_the_registration_and_answers_500(sim, graph, meeting):
    meeting()
    sim.state.script(MEETING, [{"action": "commit_then_500"}])

    response = graph.post_registration()

    assert response.status_code == 500
    assert sim.state.registration(MEETING) is not None
    assert sim.state.creations[MEETING] == 1


def test_commit_then_timeout_creates_the_registration_and_the_client_times_out(sim, graph, meeting):
    meeting()
    sim.state.set_faults(stall_s=1.0)  # long past the client's timeout, short for the test
    sim.state.script(MEETING, [{"action": "commit_then_timeout"}])

    with pytest.raises(httpx.ReadTimeout):
        graph.post_registration(timeout=0.5)

    assert sim.state.registration(MEETING) is not None
    assert sim.state.creations[MEETING] == 1
    wait_until(lambda: sim.state.stats()["in_flight"] == 0)


def test_random_server_errors_are_seeded_and_commit_nothing(sim, graph, meeting):
    meeting()
    sim.state.set_faults(error_5xx_probability=1.0, throttle_retry_after_s=2, seed=7)

    responses = [graph.post_registration() for _ in range(8)]

    assert {r.status_code for r in responses} <= {500, 502, 503, 504}
    assert all(r.headers.get("Retry-After") == "2" for r in responses if r.status_code == 503)
    assert all("Retry-After" not in r.headers for r in responses if r.status_code != 503)
    assert sim.state.registration(MEETING) is None
    sim.state.set_faults(error_5xx_probability=1.0, throttle_retry_after_s=2, seed=7)
    assert [graph.post_registration().status_code for _ in range(8)] == [
        r.status_code for r in responses
    ]


def test_random_throttling_uses_the_configured_retry_after(sim, graph, meeting):
    meeting()
    sim.state.set_faults(
        throttle_probability=1.0, throttle_retry_after_s=2.128, retry_after_style="float"
    )

    response = graph.post_registration()

    assert (response.status_code, response.headers["Retry-After"]) == (429, "2.128")


def test_random_commit_then_500_applies_to_post_and_delete_only(sim, graph, meeting):
    meeting()
    sim.state.set_faults(commit_then_500_probability=1.0)

    assert graph.get_registration().status_code == 404
    assert graph.post_registration().status_code == 500
    assert sim.state.registration(MEETING) is not None
    assert graph.delete_registration().status_code == 500
    assert sim.state.registration(MEETING) is None  # deleted all the same


def test_an_answer_step_lets_a_script_fault_the_second_request(sim, graph, meeting):
    meeting()
    graph.post_registration()
    sim.state.script(MEETING, [{"action": "answer"}, {"status": 503, "retry_after": "1"}])

    assert graph.get_registration().status_code == 200
    assert graph.delete_registration().status_code == 503
    assert sim.state.registration(MEETING) is not None  # nothing committed
    assert graph.delete_registration().status_code == 204


def test_latency_delays_graph_calls(sim, graph, meeting):
    meeting()
    sim.state.set_faults(latency_ms=100)

    started = time.monotonic()
    graph.get_registration()

    assert time.monotonic() - started >= 0.05


def test_a_bad_script_step_is_refused(sim):
    with pytest.raises(ValueError, match="status"):
        sim.state.script(MEETING, [{"status": 418}])
    with pytest.raises(ValueError, match="action"):
        sim.state.script(MEETING, [{"action": "explode"}])


def test_scripts_for_a_user_lookup_are_keyed_by_the_name_asked_for(sim, graph):
    sim.state.add_user(ORGANIZER, upn="ada@contoso.example")
    sim.state.script("ada@contoso.example", [{"status": 503}])

    assert graph.request("GET", keys.user_path("ada@contoso.example")).status_code == 503
    assert graph.request("GET", keys.user_path("ada@contoso.example")).status_code == 200
