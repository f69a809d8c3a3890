"""The one place a token source is chosen: MEETREG_AUTH (or the credential that is set)."""

from __future__ import annotations

from worker.graph.auth import MsalTokenSource, SharedTokenSource
from worker.graph.delegated import DelegatedTokenSource
from worker.graph.managed_identity import ManagedIdentityTokenSource
from worker.settings import AuthMode, Settings


def build_token_source(settings: Settings) -> SharedTokenSource:
    """The token source the settings configure, one per process.

    Raises ConfigError naming what is missing or unusable (a credential, a certificate,
    a token cache file others may read).
    """
    mode = settings.require_credentials()
    if mode is AuthMode.MANAGED_IDENTITY:
        return ManagedIdentityTokenSource(settings)
    if mode is AuthMode.DELEGATED:
        return DelegatedTokenSource(settings)
    return MsalTokenSource(settings)


def describe_source(source: SharedTokenSource) -> str:
    """What kind of token a source hands out and from where, for `meetreg doctor`."""
    if isinstance(source, DelegatedTokenSource):
        return f"delegated token for {source.signed_in_user()} from {source.authority}"
    return f"application token from {source.authority}"
