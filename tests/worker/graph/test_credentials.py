"""Choosing a credential: MEETREG_AUTH, or the credential that is set, and what each mode
lacks; where the delegated token cache lives."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.errors import ConfigError
from worker.settings import AuthMode, default_token_cache, load_settings


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
