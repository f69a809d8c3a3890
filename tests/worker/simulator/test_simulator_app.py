"""worker.simulator.app: routing on the raw path, the 404 outside every known root, and a
500 in Graph's error shape when the simulator itself fails."""

from __future__ import annotations

import pytest
from sim_helpers import ORGANIZER, error_of

from worker import keys
from worker.simulator.app import split_path


@pytest.mark.parametrize(
    ("raw_path", "segments"),
    [
        ("/beta/users/a%2Fb", ["beta", "users", "a/b"]),
        ("/beta/users/%252F", ["beta", "users", "%2F"]),
        ("/beta/users/%2E%2E/x", ["beta", "users", "..", "x"]),
        ("/beta/users/", ["beta", "users", ""]),
        ("/", [""]),
    ],
)
def test_raw_paths_split_before_decoding(raw_path, segments):
    assert split_path(raw_path) == segments


def test_a_path_outside_graphs_roots_is_404(sim, graph):
    response = graph.http.get("/", headers={"Authorization": f"Bearer {graph.token}"})

    assert response.status_code == 404
    assert error_of(response)["code"] == "UnknownError"
    assert sim.state.requests[-1] == ("GET", "/", 404)


def test_a_failure_inside_the_simulator_is_a_500_in_graphs_error_shape(sim, graph, monkeypatch):
    def broken(upn_or_id: str) -> dict:
        raise RuntimeError("a bug in the simulator")

    monkeypatch.setattr(sim.state, "find_user", broken)

    response = graph.request("GET", keys.user_path(ORGANIZER))

    assert response.status_code == 500
    assert error_of(response)["code"] == "UnknownError"
