"""Choosing a credential (MEETREG_AUTH), the managed-identity and delegated token sources
against the simulator over HTTPS (real MSAL, real requests), and the token cache file."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from worker.errors import ConfigError, GraphAuthError, GraphPermanent
from worker.graph import build_graph_client
from worker.graph.credentials import build_token_source
from worker.graph.delegated import DelegatedTokenSource
from worker.graph.managed_identity import ManagedIdentityTokenSource, endpoint_was_busy
from worker.graph.token_file import TokenCacheFile
from worker.settings import AuthMode, Settings, default_token_cache, load_settings
from worker.simulator import SimulatorConfig, SimulatorServer

USER_ASSIGNED = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
SIGNED_IN = "5e7c1d2a-3b4f-4a6e-9c8d-7f6e5d4c3b2a"
SIGNED_IN_UPN = "grace@contoso.example"
OTHER_ORGANIZER = "0f3a9c2e-5b7d-4e1f-9a8b-6c5d4e3f2a1b"


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorServer]:
    # No pending poll: each sign-in here is immediate (the CLI test waits through one).
    config = SimulatorConfig(user_assigned_identities=(USER_ASSIGNED,), device_code_pending_polls=0)
    with SimulatorServer(config) as sim:
        yield sim


@pytest.fixture
def closing() -> Iterator[Callable]:
    opened: list = []

    def track(thing):
        opened.append(thing)
        return thing

    yield track
    for thing in opened:
        thing.close()


def managed_identity(
    sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch, client_id: str | None = None
) -> Settings:
    """Settings as on an App Service whose identity endpoint is the simulator."""
    for name in ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_ID", "AZURE_TENANT_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in sim.managed_identity_env(client_id).items():
        monkeypatch.setenv(name, value)
    return load_settings()


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


# Choosing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "mode"),
    [
        ({"AZURE_CLIENT_SECRET": "s"}, AuthMode.SECRET),
        ({"AZURE_CLIENT_CERTIFICATE_PATH": "/x.pem"}, AuthMode.CERTIFICATE),
        ({"AZURE_CLIENT_SECRET": "s", "AZURE_CLIENT_CERTIFICATE_PATH": "/x.pem"}, AuthMode.SECRET),
        (
            {
                "MEETREG_AUTH": "certificate",
                "AZURE_CLIENT_SECRET": "s",
                "AZURE_CLIENT_CERTIFICATE_PATH": "/x.pem",
            },
            AuthMode.CERTIFICATE,
        ),
        ({"MEETREG_AUTH": "managed-identity"}, AuthMode.MANAGED_IDENTITY),
        ({"MEETREG_AUTH": "delegated"}, AuthMode.DELEGATED),
        ({"MEETREG_AUTH": ""}, None),
        ({}, None),
    ],
)
def test_the_credential_mode_is_meetreg_auth_or_the_credential_that_is_set(
    monkeypatch: pytest.MonkeyPatch, values: dict[str, str], mode: AuthMode | None
) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    assert load_settings().auth_mode is mode


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {},
            "missing configuration: AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET or "
            "AZURE_CLIENT_CERTIFICATE_PATH (or MEETREG_AUTH=managed-identity or delegated)",
        ),
        (
            {"MEETREG_AUTH": "secret", "AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c"},
            "missing configuration (MEETREG_AUTH=secret): AZURE_CLIENT_SECRET",
        ),
        (
            {"MEETREG_AUTH": "delegated", "AZURE_CLIENT_SECRET": "s"},
            "missing configuration (MEETREG_AUTH=delegated): AZURE_TENANT_ID, AZURE_CLIENT_ID",
        ),
    ],
)
def test_what_a_mode_lacks_is_named_on_one_line(
    monkeypatch: pytest.MonkeyPatch, values: dict[str, str], message: str
) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        load_settings().require_credentials()
    assert str(refused.value) == message


def test_managed_identity_needs_no_secret_and_an_unknown_mode_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MEETREG_AUTH", "managed-identity")
    assert load_settings().require_credentials() is AuthMode.MANAGED_IDENTITY
    monkeypatch.setenv("MEETREG_AUTH", "password")
    with pytest.raises(ConfigError, match=r"^MEETREG_AUTH: Input should be 'secret', 'certif"):
        load_settings()


def test_the_token_cache_lives_in_the_users_config_folder_unless_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_token_cache() == tmp_path / "meetreg" / "token-cache.json"
    assert load_settings().token_cache == tmp_path / "meetreg" / "token-cache.json"
    monkeypatch.setenv("MEETREG_TOKEN_CACHE", str(tmp_path / "elsewhere.json"))
    assert load_settings().token_cache == tmp_path / "elsewhere.json"


# The cache file ----------------------------------------------------------------------------


def test_the_cache_file_is_created_private_even_under_a_permissive_umask(tmp_path: Path) -> None:
    path = tmp_path / "new" / "cache.json"
    old = os.umask(0)
    try:
        TokenCacheFile(path).write('{"a": 1}')
        TokenCacheFile(path).write('{"a": 2}')  # replaced, not appended
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert TokenCacheFile(path).read() == '{"a": 2}'
    assert [p.name for p in path.parent.iterdir()] == ["cache.json"]  # no temporary left


def test_a_cache_file_others_may_read_is_refused_naming_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    path.write_text("{}")
    path.chmod(0o644)
    with pytest.raises(ConfigError) as refused:
        TokenCacheFile(path).read()
    message = str(refused.value)
    assert "\n" not in message
    assert f"{path} has mode 0644" in message and f"chmod 600 {path}" in message
    assert TokenCacheFile(tmp_path / "absent.json").read() is None


def refusal(action: Callable[[], object]) -> str:
    with pytest.raises(ConfigError) as refused:
        action()
    message = str(refused.value)
    assert "\n" not in message and message.startswith("MEETREG_TOKEN_CACHE: ")
    return message


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777], ids=["0770", "0707", "0777"])
def test_a_cache_folder_others_may_write_to_is_refused_and_left_as_it_is(
    tmp_path: Path, mode: int
) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(mode)
    path = folder / "cache.json"
    cache = TokenCacheFile(path)

    assert f"chmod 700 {folder}" in refusal(lambda: cache.write('{"a": 1}'))
    assert not path.exists()  # nothing written where others could swap it
    assert stat.S_IMODE(folder.stat().st_mode) == mode

    path.write_text("{}")
    path.chmod(0o600)
    assert f"{folder} is writable by group or others" in refusal(cache.read)


def test_a_cache_file_that_is_a_symbolic_link_is_neither_read_nor_written_through(
    tmp_path: Path,
) -> None:
    elsewhere = tmp_path / "planted.json"
    elsewhere.write_text('{"planted": true}')
    elsewhere.chmod(0o600)
    folder = tmp_path / "meetreg"
    folder.mkdir(mode=0o700)
    path = folder / "cache.json"
    path.symlink_to(elsewhere)
    cache = TokenCacheFile(path)

    assert "is a symbolic link" in refusal(cache.read)
    assert "is a symbolic link" in refusal(lambda: cache.write('{"a": 1}'))
    assert elsewhere.read_text() == '{"planted": true}'
    assert path.is_symlink()


def test_a_cache_file_or_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "meetreg"
    folder.mkdir(mode=0o700)
    path = folder / "cache.json"
    TokenCacheFile(path).write('{"a": 1}')
    someone_else = os.geteuid() + 1  # what our own files are to another user

    as_another = TokenCacheFile(path, owner_uid=someone_else)
    assert f"{folder} belongs to uid {os.geteuid()}" in refusal(as_another.read)
    assert f"{folder} belongs to uid {os.geteuid()}" in refusal(lambda: as_another.write("{}"))
    assert path.read_text() == '{"a": 1}'


# Managed identity --------------------------------------------------------------------------


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


# Delegated ---------------------------------------------------------------------------------


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
