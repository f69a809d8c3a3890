"""The simulator's managed-identity endpoints over HTTPS, as MSAL calls them: App Service's
(X-IDENTITY-HEADER) and the instance metadata service's (Metadata: true)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from sim_helpers import ORGANIZER

from worker import keys
from worker.simulator import SimulatorConfig, SimulatorServer

USER_ASSIGNED = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
RESOURCE = "https://graph.microsoft.com"


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimulatorConfig(user_assigned_identities=(USER_ASSIGNED,))) as sim:
        yield sim


def app_service(
    sim: SimulatorServer, http: httpx.Client, header: str | None = None, **params: str
) -> httpx.Response:
    return http.get(
        "/msi/token",
        params={"api-version": "2019-08-01", "resource": RESOURCE, **params},
        headers={"X-IDENTITY-HEADER": header or sim.config.identity_header},
    )


def test_app_service_hands_the_system_identity_a_token_graph_accepts(sim, http):
    sim.state.add_user(ORGANIZER)
    response = app_service(sim, http)

    assert response.status_code == 200
    body = response.json()
    assert body["resource"] == RESOURCE and body["token_type"] == "Bearer"
    assert int(body["expires_on"]) > time.time() + 3000
    user = http.get(
        "/beta" + keys.user_path(ORGANIZER),
        headers={"Authorization": f"Bearer {body['access_token']}"},
    )
    assert user.status_code == 200
    assert sim.state.stats()["managed_identity_tokens"] == {"system-assigned": 1}


def test_app_service_refuses_a_wrong_identity_header_in_its_own_error_shape(sim, http):
    response = app_service(sim, http, header="not-the-header")
    assert response.status_code == 401
    assert set(response.json()) == {"statusCode", "message"}


def test_a_user_assigned_identity_must_be_attached_to_the_host(sim, http):
    assert app_service(sim, http, client_id=USER_ASSIGNED).status_code == 200
    unknown = app_service(sim, http, client_id="00000000-1111-2222-3333-444444444444")
    assert unknown.status_code == 400
    assert sim.state.stats()["managed_identity_tokens"] == {USER_ASSIGNED: 1}


def test_the_metadata_service_wants_its_header_and_answers_expires_in(sim, http):
    url = "/metadata/identity/oauth2/token"
    params = {"api-version": "2018-02-01", "resource": RESOURCE}

    without = http.get(url, params=params)
    given = http.get(url, params=params, headers={"Metadata": "true"})

    assert without.status_code == 400 and without.json()["error"] == "invalid_request"
    assert given.status_code == 200 and given.json()["expires_in"] == "3599"
