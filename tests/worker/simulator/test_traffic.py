"""worker.simulator traffic: arrival times, and the rates the benchmarks read from them."""

from __future__ import annotations

import time

import pytest
from sim_helpers import MEETING

from worker.simulator.traffic import Arrivals, Traffic


@pytest.mark.parametrize(
    ("times", "window_s", "busiest"),
    [
        ((), 1.0, 0),
        ((5.0,), 1.0, 1),
        ((0.0, 0.5, 0.99, 1.0, 1.5), 1.0, 3),  # 1.0 is a full second after 0.0: not with it
        ((0.0, 0.9, 1.1, 1.2, 1.8, 3.0), 1.0, 4),  # a window need not start on a whole second
        ((0.0, 0.1, 0.2, 0.3), 0.25, 3),
        ((2.0, 2.0, 2.0), 1.0, 3),
    ],
)
def test_busiest_counts_the_most_arrivals_in_any_sliding_window(times, window_s, busiest):
    assert Arrivals(times).busiest(window_s) == busiest


@pytest.mark.parametrize(
    ("times", "sustained"),
    [
        ((), None),
        ((1.0,), None),
        ((1.0, 1.0), None),
        ((10.0, 10.5, 11.0, 12.0), 1.5),  # three gaps over two seconds
    ],
)
def test_sustained_is_the_rate_between_first_and_last_arrival(times, sustained):
    assert Arrivals(times).sustained_per_s() == sustained


def test_per_second_counts_whole_seconds_from_the_first_arrival():
    arrivals = Arrivals((100.5, 100.7, 101.4, 101.6, 103.6))

    assert arrivals.per_second() == [3, 1, 0, 1]
    assert Arrivals(()).per_second() == []


def test_between_keeps_a_half_open_window_and_says_when_the_log_may_miss_some():
    arrivals = Arrivals((1.0, 2.0, 3.0, 4.0), dropped=7)

    assert arrivals.between(2.0, 4.0) == Arrivals((2.0, 3.0))
    assert arrivals.between(3.5).times == (4.0,)
    assert arrivals.between(0.0).dropped == 7  # reaches back past the oldest logged one


def test_the_traffic_log_keeps_the_latest_arrivals_and_counts_all(monkeypatch):
    monkeypatch.setattr("worker.simulator.traffic.REQUEST_LOG_SIZE", 3)
    traffic = Traffic()
    for now in (1.0, 2.0, 3.0, 4.0, 5.0):
        traffic.arrive(None, now)

    log = traffic.arrival_log()

    assert log == Arrivals((3.0, 4.0, 5.0), dropped=2)
    assert traffic.arrivals == 5


def test_the_state_records_when_graph_requests_arrive_in_this_process_clock(sim, graph, meeting):
    meeting()
    before = time.monotonic()

    for _ in range(3):
        graph.get_registration(MEETING)
    graph.post_registration(MEETING)

    after = time.monotonic()
    arrivals = sim.state.arrivals()
    assert arrivals.count == 4
    assert all(before <= t <= after for t in arrivals.times)
    assert list(arrivals.times) == sorted(arrivals.times)
    assert arrivals.between(after).count == 0
    assert sim.state.stats()["arrivals"] == 4


def test_logins_and_unknown_paths_are_not_graph_arrivals(sim, graph):
    graph.request("GET", "/nowhere")  # the fixture's token request was a login

    assert sim.state.arrivals().count == 0
    assert sim.state.stats()["arrivals"] == 0


def test_reset_forgets_the_arrivals(sim, graph, meeting):
    meeting()
    graph.get_registration()

    sim.state.reset()

    assert sim.state.arrivals() == Arrivals(())
