"""The managed-identity token source against the simulator's App Service identity endpoint
over HTTPS (real MSAL, real requests)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from worker.errors import GraphAuthError
from worker.graph import build_graph_client
from worker.graph.credentials import build_token_source
from worker.graph.managed_identity import ManagedIdentityTokenSource, endpoint_was_busy
from worker.settings import Settings, load_settings
from worker.simulator import SimulatorConfig, SimulatorServer

USER_ASSIGNED = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
OTHER_ORGANIZER = "0f3a9c2e-5b7d-4e1f-9a8b-6c5d4e3f2a1b"


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimulatorConfig(user_assigned_identities=(USER_ASSIGNED,))) as sim:
        yield sim


def managed_identity(
    sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch, client_id: str | None = None
) -> Settings:
    """Settings as on an App Service whose identity endpoint is the simulator."""
    for name in ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_ID", "AZURE_TENANT_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in sim.managed_identity_env(client_id).items():
        monkeypatch.setenv(name, value)
    return load_settings()


def test_a_system_assigned_identity_gets_a_token_graph_accepts(sim, monkeypatch, closing):
    sim.state.add_meeting(OTHER_ORGANIZER, "m-1")
    settings = managed_identity(sim, monkeypatch)
    source = build_token_source(settings)
    assert isinstance(source, ManagedIdentityTokenSource)
    closing(source)
    graph = closing(build_graph_client(settings))

    assert graph.get_registration(OTHER_ORGANIZER, "m-1") is None
    assert graph.get_registration(OTHER_ORGANIZER, "m-1") is None
    assert sim.state.stats()["managed_identity_tokens"] == {"system-assigned": 1}
    sim.state.expire_tokens()  # Graph forgets it; MSAL's cache still holds it
    assert graph.get_registration(OTHER_ORGANIZER, "m-1") is None  # 401, a new token, sent again
    assert sim.state.stats()["managed_identity_tokens"] == {"system-assigned": 2}


def test_azure_client_id_picks_a_user_assigned_identity(sim, monkeypatch, closing):
    source = closing(build_token_source(managed_identity(sim, monkeypatch, USER_ASSIGNED)))
    assert source.token()
    assert sim.state.stats()["managed_identity_tokens"] == {USER_ASSIGNED: 1}


def test_a_refused_identity_is_an_auth_error_naming_the_endpoint_not_the_header(
    sim, monkeypatch, closing
):
    settings = managed_identity(sim, monkeypatch)
    monkeypatch.setenv("IDENTITY_HEADER", "a-wrong-identity-header")
    source = closing(build_token_source(settings))
    with pytest.raises(GraphAuthError) as refused:
        source.token()
    message = str(refused.value)
    assert f"App Service identity endpoint {sim.https_url}/msi/token" in message
    assert "system-assigned managed identity" in message
    assert "a-wrong-identity-header" not in message


@pytest.mark.parametrize(
    ("description", "busy"),
    [
        ("500, An unexpected error occured while fetching the AAD Token.", True),
        ("503, Service Unavailable", True),
        ("429, Too many requests", True),
        ("400, No User Assigned or Delegated Managed Identity found", False),
        ("401, X-IDENTITY-HEADER is not valid.", False),
        ("Identity not found", False),
        ("", False),
    ],
)
def test_an_identity_endpoint_that_was_busy_is_worth_a_retry(description: str, busy: bool) -> None:
    result = {"error": "invalid_scope", "error_description": description}
    assert endpoint_was_busy(result) is busy
