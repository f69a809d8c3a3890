"""The managed-identity endpoints as routes: GET only, the query read as the host's endpoint
reads it, and each request logged as a sign-in's, not as a Graph call."""

from __future__ import annotations

import httpx

from worker.simulator import SimulatorServer

RESOURCE = "https://graph.microsoft.com"
APP_SERVICE = "/msi/token"
METADATA = "/metadata/identity/oauth2/token"
QUERY = {"api-version": "2018-02-01", "resource": RESOURCE}


def test_only_get_is_answered(sim: SimulatorServer, http: httpx.Client) -> None:
    for path in (APP_SERVICE, METADATA):
        response = http.post(path, params={"resource": RESOURCE}, headers={"Metadata": "true"})
        assert response.status_code == 405
        assert response.json() == {"error": "invalid_request"}


def test_the_query_names_the_resource_the_token_is_for(
    sim: SimulatorServer, http: httpx.Client
) -> None:
    response = http.get(
        METADATA,
        params=QUERY,
        headers={"Metadata": "true"},
    )
    assert response.status_code == 200
    assert response.json()["resource"] == RESOURCE


def test_requests_are_logged_as_sign_ins_not_as_graph_calls(
    sim: SimulatorServer, http: httpx.Client
) -> None:
    http.post(APP_SERVICE)
    http.get(METADATA, params=QUERY, headers={"Metadata": "true"})

    stats = sim.state.stats()
    assert stats["login_requests_by_status"] == {"POST 405": 1, "GET 200": 1}
    assert stats["requests_by_status"] == {}
    assert [(method, status) for method, _, status in sim.state.requests] == [
        ("POST", 405),
        ("GET", 200),
    ]
