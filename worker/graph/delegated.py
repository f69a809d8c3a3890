"""Delegated tokens: the organizer who ran `meetreg login` acts through Graph's `/me`.

`meetreg login` runs the device-code flow once (`DelegatedTokenSource.login`) and keeps
MSAL's token cache in a private file (`token_file`). Workers, in any number of processes,
load that file and call `acquire_token_silent_with_error` for its account: a cached access
token, or a new one redeemed with the refresh token, written back to the file. No account,
or a refresh Entra refuses, is a GraphAuthError telling the operator to sign in again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msal

from worker.errors import GraphAuthError, GraphTransient
from worker.graph.auth import SharedTokenSource, uses_instance_discovery
from worker.graph.token_file import TokenCacheFile
from worker.settings import Settings

# Enough to enable registration on one's own meetings (the delegated permission Graph's
# reference names for the call); MSAL adds openid, profile and offline_access (the refresh
# token) itself.
DELEGATED_PERMISSION = "OnlineMeetings.ReadWrite"
LOGIN_HINT = "run `meetreg login`"
# Errors that no refresh will cure: the refresh token expired, was revoked, or the user
# must consent or pass MFA again.
_SIGN_IN_AGAIN = frozenset({"invalid_grant", "interaction_required", "consent_required"})


@dataclass(frozen=True, slots=True)
class SignedInUser:
    """The account in the token cache: its objectId and its UPN (Entra's username)."""

    object_id: str
    username: str

    def matches(self, user_id: str) -> bool:
        """Whether a row's user_id (objectId or UPN) names this user."""
        return user_id.strip().lower() in (self.object_id.lower(), self.username.lower())

    def __str__(self) -> str:
        return f"{self.username} ({self.object_id})" if self.username else self.object_id


def delegated_scopes(graph_base_url: str) -> list[str]:
    """The delegated scopes on the Graph resource GRAPH_BASE_URL lives on."""
    parts = urlsplit(graph_base_url)
    return [f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/{DELEGATED_PERMISSION}"]


class DelegatedTokenSource(SharedTokenSource):
    """Tokens of the signed-in organizer from the token cache file (MEETREG_TOKEN_CACHE).

    Raises ConfigError at construction when the file exists but others may read it;
    `token()` raises GraphAuthError (not signed in, or the sign-in has lapsed) or
    GraphTransient (login host unreachable).
    """

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.monotonic) -> None:
        settings.require_credentials()
        super().__init__(
            f"{settings.authority_host}/{settings.tenant_id}",
            settings.request_timeout_s,
            clock=clock,
            ca=settings.login_ca,
        )
        self.scopes = delegated_scopes(settings.graph_base_url)
        self.file = TokenCacheFile(settings.token_cache)
        self._client_id = settings.client_id
        self._instance_discovery = uses_instance_discovery(settings.authority_host)
        self._cache = msal.SerializableTokenCache()
        self._app: Any = None  # msal ships no type hints
        self._user: SignedInUser | None = None
        self._load()  # a file others can read is refused now, not at the first row

    def signed_in_user(self) -> SignedInUser:
        """Who the tokens act for; raises GraphAuthError when nobody is signed in."""
        with self._lock:
            if self._user is None or self.file.changed():
                self._load()
                self._user = self._account_user(self._account())
            return self._user

    def login(self, show: Callable[[str], None]) -> SignedInUser:
        """The device-code flow: `show` Entra's instruction (URL and code), wait for the
        user, and save the new cache (replacing any earlier sign-in). Raises GraphAuthError
        (refused, declined, expired) or GraphTransient."""
        with self._lock:
            self._cache.deserialize("{}")  # a new sign-in replaces the old one
            flow = self._call(lambda: self._application().initiate_device_flow(self.scopes))
            if "user_code" not in flow:
                raise self._refused(flow)
            show(str(flow.get("message") or flow.get("verification_uri", "")))
            result = self._call(lambda: self._application().acquire_token_by_device_flow(flow))
            if "access_token" not in result:
                raise self._refused(result)
            self._save()
            self._user = self._account_user(self._account())
            return self._user

    def _acquire(self, *, forget: bool) -> Any:
        if self.file.changed():
            self._load()
        account = self._account()
        self._user = self._account_user(account)
        result = self._application().acquire_token_silent_with_error(
            self.scopes, account, force_refresh=forget
        )
        if result is None:
            raise GraphAuthError(
                f"the sign-in in {self.file.path} holds no usable token: {LOGIN_HINT}",
                code="login_required",
            )
        if "access_token" in result:
            self._save()  # a refresh rotates the refresh token: keep the new one
        return result

    def _refused(self, result: dict[str, Any]) -> GraphTransient | GraphAuthError:
        refused = super()._refused(result)
        if isinstance(refused, GraphAuthError) and refused.code in _SIGN_IN_AGAIN:
            return GraphAuthError(
                f"{refused.message}; {LOGIN_HINT}",
                code=refused.code,
                request_id=refused.request_id,
            )
        return refused

    def _application(self) -> Any:
        if self._app is None:
            self._app = self._build_app(
                lambda: msal.PublicClientApplication(
                    self._client_id,
                    authority=self.authority,
                    instance_discovery=self._instance_discovery,
                    token_cache=self._cache,
                    http_client=self._session,
                )
            )
        return self._app

    def _load(self) -> None:
        """Read the cache file into MSAL's cache, in place (the application keeps it)."""
        text = self.file.read()
        try:
            self._cache.deserialize(text or "{}")
        except ValueError:
            raise GraphAuthError(
                f"{self.file.path} is not a token cache: {LOGIN_HINT}", code="login_required"
            ) from None

    def _save(self) -> None:
        if self._cache.has_state_changed:
            self.file.write(self._cache.serialize())
            self._cache.has_state_changed = False

    def _account(self) -> dict[str, Any]:
        accounts = self._application().get_accounts()
        if not accounts:
            where = self.file.path if self.file.exists() else f"{self.file.path} (no such file)"
            raise GraphAuthError(
                f"nobody is signed in: no account in the token cache {where}; {LOGIN_HINT}",
                code="login_required",
            )
        return dict(accounts[0])

    @staticmethod
    def _account_user(account: dict[str, Any]) -> SignedInUser:
        return SignedInUser(
            object_id=str(account.get("local_account_id") or ""),
            username=str(account.get("username") or ""),
        )
