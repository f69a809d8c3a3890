"""The delegated token source: `meetreg login`'s device code written to the cache file, then
workers acting as the signed-in user from that cache, against the simulator over HTTPS."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from worker.errors import ConfigError, GraphAuthError, GraphPermanent
from worker.graph import build_graph_client
from worker.graph.credentials import build_token_source
from worker.graph.delegated import DelegatedTokenSource
from worker.settings import Settings, load_settings
from worker.simulator import SimulatorConfig, SimulatorServer

SIGNED_IN = "5e7c1d2a-3b4f-4a6e-9c8d-7f6e5d4c3b2a"
SIGNED_IN_UPN = "grace@contoso.example"
OTHER_ORGANIZER = "0f3a9c2e-5b7d-4e1f-9a8b-6c5d4e3f2a1b"


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorServer]:
    # No pending poll: each sign-in here is immediate (the CLI test waits through one).
    with SimulatorServer(SimulatorConfig(device_code_pending_polls=0)) as sim:
        yield sim


def delegated(sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch, cache: Path) -> Settings:
    sim.state.sign_in_as(SIGNED_IN, SIGNED_IN_UPN)
    monkeypatch.delenv("AZURE_CLIENT_SECRET")
    for name, value in sim.delegated_env(cache).items():
        monkeypatch.setenv(name, value)
    return load_settings()


def signed_in_cache(sim: SimulatorServer, settings: Settings, closing: Callable) -> Path:
    """`meetreg login`'s work: the device-code flow once, the cache file written."""
    shown: list[str] = []
    closing(DelegatedTokenSource(settings)).login(shown.append)
    assert "enter the code" in shown[0]
    return settings.token_cache


def test_workers_use_the_cache_login_wrote_without_another_device_code(
    sim, monkeypatch, tmp_path, closing
):
    settings = delegated(sim, monkeypatch, tmp_path / "cache.json")
    signed_in_cache(sim, settings, closing)
    assert stat.S_IMODE(settings.token_cache.stat().st_mode) == 0o600
    sim.state.add_meeting(SIGNED_IN, "mine")

    graph = closing(build_graph_client(settings))  # as a worker process would
    created = graph.create_registration(SIGNED_IN_UPN, "mine", "everyone")
    sim.state.expire_tokens()
    found = graph.get_registration(SIGNED_IN, "mine")  # 401, refreshed, sent again

    assert found is not None and found.id == created.id
    paths = [path for _, path, _ in sim.state.requests if "onlineMeetings" in path]
    assert paths and all(path.startswith("/beta/me/onlineMeetings/") for path in paths)
    stats = sim.state.stats()
    assert stats["device_code_grants"] == 1 and stats["refresh_grants"] == 1


def test_a_row_of_another_organizer_fails_without_reaching_graph(
    sim, monkeypatch, tmp_path, closing
):
    settings = delegated(sim, monkeypatch, tmp_path / "cache.json")
    signed_in_cache(sim, settings, closing)
    sim.state.add_meeting(OTHER_ORGANIZER, "theirs")
    graph = closing(build_graph_client(settings))
    before = len(sim.state.requests)

    with pytest.raises(GraphPermanent) as refused:
        graph.create_registration(OTHER_ORGANIZER, "theirs", "everyone")
    with pytest.raises(GraphPermanent):
        graph.resolve_user_id("someone.else@contoso.example")

    assert refused.value.code == "NotSignedInOrganizer"
    assert SIGNED_IN_UPN in str(refused.value) and OTHER_ORGANIZER in str(refused.value)
    assert graph.resolve_user_id(SIGNED_IN_UPN.upper()) == SIGNED_IN  # no GET /users needed
    assert not [p for _, p, _ in sim.state.requests[before:] if "/beta/" in p]
    assert sim.state.registration("theirs") is None


def test_without_a_cache_the_error_says_to_run_meetreg_login(sim, monkeypatch, tmp_path, closing):
    settings = delegated(sim, monkeypatch, tmp_path / "never-written.json")
    source = closing(build_token_source(settings))
    with pytest.raises(GraphAuthError, match=r"never-written\.json \(no such file\); run `meet"):
        source.token()


def test_a_lapsed_sign_in_says_to_run_meetreg_login(sim, monkeypatch, tmp_path, closing):
    settings = delegated(sim, monkeypatch, tmp_path / "cache.json")
    cache = signed_in_cache(sim, settings, closing)
    expire_cached_access_tokens(cache)
    sim.state.revoke_refresh_tokens()

    source = closing(build_token_source(settings))
    with pytest.raises(GraphAuthError) as refused:
        source.token()

    assert refused.value.code == "invalid_grant"
    assert "(AADSTS700082)" in str(refused.value) and "run `meetreg login`" in str(refused.value)


def test_a_cache_readable_by_others_is_refused_before_any_call(sim, monkeypatch, tmp_path, closing):
    settings = delegated(sim, monkeypatch, tmp_path / "cache.json")
    signed_in_cache(sim, settings, closing).chmod(0o644)
    with pytest.raises(ConfigError, match="has mode 0644"):
        build_token_source(settings)


def expire_cached_access_tokens(cache: Path) -> None:
    """What the cache looks like after the access token's hour has passed."""
    data = json.loads(cache.read_text())
    for entry in data["AccessToken"].values():
        entry["expires_on"] = entry["extended_expires_on"] = "0"
    cache.write_text(json.dumps(data))
