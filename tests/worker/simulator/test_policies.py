"""worker.simulator pure pieces: the rate window, script steps, filters, route matching, traffic."""

from __future__ import annotations

import pytest

from worker.simulator.config import FaultConfig
from worker.simulator.errors import GraphFailure
from worker.simulator.faults import Fault, FaultPlan, parse_step
from worker.simulator.graph_routes import parse_join_url_filter
from worker.simulator.paths import match_route, unknown_segment
from worker.simulator.traffic import Traffic


def test_the_rate_window_counts_throttled_requests_and_says_when_capacity_returns():
    plan = FaultPlan(FaultConfig(rate_limit_per_s=2, retry_after_style="float"))

    assert plan.decide(None, "GET", 0.0) is None
    assert plan.decide(None, "GET", 0.1) is None
    # Third in a second: wait until the one at 0.1 is a second old.
    assert plan.decide(None, "GET", 0.2) == Fault(429, "0.900")
    # At 1.05 the first has aged out, but the throttled one at 0.2 still counts.
    assert plan.decide(None, "GET", 1.05) == Fault(429, "0.150")
    assert plan.decide(None, "GET", 1.25) is None


def test_a_script_step_wins_over_the_rate_limit_and_is_consumed_once():
    plan = FaultPlan(FaultConfig(rate_limit_per_s=100))
    plan.script("m", [{"status": 503}, {"action": "commit_then_timeout"}])

    assert plan.decide("m", "POST", 0.0) == Fault(503)
    assert plan.decide("other", "POST", 0.0) is None
    assert plan.decide("m", "POST", 0.0) == Fault(commit="timeout")
    assert plan.decide("m", "POST", 0.0) is None
    assert plan.scripts == {}


@pytest.mark.parametrize(
    ("step", "fault"),
    [
        ({"status": 429}, Fault(429, "1")),
        ({"status": 429, "retry_after": 2}, Fault(429, "2")),
        ({"status": 429, "retry_after": "0.5"}, Fault(429, "0.5")),
        ({"status": 503}, Fault(503)),
        ({"action": "commit_then_500"}, Fault(commit="500")),
    ],
)
def test_script_steps_parse(step, fault):
    assert parse_step(step) == fault


@pytest.mark.parametrize(
    "step",
    [
        {"status": 200},
        {"status": "429"},
        {"status": 429, "retry_after": "soon"},
        {"action": "x"},
        {},
    ],
)
def test_bad_script_steps_are_refused(step):
    with pytest.raises(ValueError):
        parse_step(step)


def test_random_faults_repeat_for_the_same_seed():
    config = FaultConfig(error_5xx_probability=0.5, throttle_probability=0.2, seed=42)
    runs = []
    for _ in range(2):
        plan = FaultPlan(config)
        runs.append([plan.decide(None, "POST", float(i)) for i in range(50)])

    assert runs[0] == runs[1]
    assert any(fault is None for fault in runs[0])
    assert any(fault is not None for fault in runs[0])


@pytest.mark.parametrize(
    ("expression", "url"),
    [
        ("JoinWebUrl eq 'https://x/y'", "https://x/y"),
        ("joinWebUrl eq 'https://x/O''Brien'", "https://x/O'Brien"),
        ("  JoinWebUrl   eq   ''  ", ""),
    ],
)
def test_join_url_filters_parse(expression, url):
    assert parse_join_url_filter(expression) == url


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "JoinWebUrl eq https://x",
        "JoinWebUrl eq 'a' or 1 eq 1",
        "subject eq 'x'",
        "JoinWebUrl eq 'it's'",
    ],
)
def test_other_filters_are_400(expression):
    with pytest.raises(GraphFailure) as failure:
        parse_join_url_filter(expression)
    assert failure.value.status == 400


def test_routes_need_non_empty_ids():
    assert match_route(["users", "u", "onlineMeetings", "m", "registration"]).meeting_id == "m"
    assert match_route(["users", "", "onlineMeetings", "m", "registration"]) is None
    assert match_route(["users", "u", "onlineMeetings", "", "registration"]) is None
    assert unknown_segment(["users", "u", "calendar"]) == "calendar"
    assert unknown_segment(["groups"]) == "groups"


def test_registration_is_a_route_under_beta_only():
    registration = ["users", "u", "onlineMeetings", "m", "registration"]

    assert match_route(registration, "beta") is not None
    assert match_route(registration, "v1.0") is None
    assert match_route(["users", "u", "events"], "v1.0") is not None
    assert unknown_segment(registration, "v1.0") == "registration"


def test_traffic_flags_arrivals_inside_a_retry_after():
    traffic = Traffic()
    traffic.arrive("m", 10.0)
    traffic.record("POST", "/p", 429, 10.0, key="m", retry_after_s=1.0)
    traffic.leave()

    traffic.arrive("m", 10.5)  # early, same meeting
    traffic.arrive("n", 10.6)  # early only globally
    traffic.arrive("m", 10.96)  # within the 50 ms tolerance
    traffic.arrive("m", 11.2)  # fine

    assert [(e.key, e.arrived_at) for e in traffic.early] == [("m", 10.5)]
    assert [(e.key, e.arrived_at) for e in traffic.early_global] == [("m", 10.5), ("n", 10.6)]
    assert traffic.in_flight_max == 4
