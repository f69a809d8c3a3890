"""Entra's delegated side: the device-code flow, refresh tokens, and the account MSAL records.

    POST /{tenant}/oauth2/v2.0/devicecode   start: device_code, user_code, interval 1 s
    POST /{tenant}/oauth2/v2.0/token        grant_type=urn:ietf:params:oauth:grant-type:device_code
                                            (authorization_pending, then tokens),
                                            grant_type=refresh_token (new tokens)

Nobody types the code: a device code is approved, as the configured user, once it has
been polled `pending_polls` times. A success carries an `id_token` (unsigned: MSAL only
decodes it) and `client_info`, from which MSAL's cache makes an account. Access tokens
are minted by the `TokenIssuer` with the user as their subject, so Graph's `/me` knows who
is asking. No locking here; the `SimulatorState` holds the lock.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from worker.simulator.config import TOKEN_EXPIRES_IN_S
from worker.simulator.directory import Directory, User
from worker.simulator.errors import GraphFailure, LoginFailure
from worker.simulator.tokens import TokenIssuer

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
REFRESH_GRANT = "refresh_token"
DELEGATED_GRANTS = frozenset({DEVICE_CODE_GRANT, REFRESH_GRANT})
DEVICE_CODE_LIFETIME_S = 900
POLL_INTERVAL_S = 1  # MSAL polls at this interval (whole seconds): tests stay fast
# Scopes that ask for the sign-in itself, not for an API.
OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})


@dataclass(slots=True)
class DeviceCode:
    """A device-code flow in progress."""

    scopes: str
    expires_at: float
    polls_left: int


@dataclass(frozen=True, slots=True)
class Grant:
    """What a refresh token may be redeemed for: the user and the API scopes."""

    object_id: str
    scopes: str


class SignIn:
    """Device codes and refresh tokens of one tenant's public client app."""

    def __init__(
        self,
        issuer: TokenIssuer,
        directory: Directory,
        user_id: str,
        upn: str,
        pending_polls: int,
    ) -> None:
        self.issuer = issuer
        self.directory = directory
        self.user_id = user_id
        self.upn = upn
        self.pending_polls = pending_polls
        self.device_codes: dict[str, DeviceCode] = {}
        self.refresh_tokens: dict[str, Grant] = {}
        self.revoked: set[str] = set()
        self.device_code_grants = 0  # device codes redeemed for tokens
        self.refresh_grants = 0  # refresh tokens redeemed for tokens

    def sign_in_as(self, user_id: str, upn: str) -> None:
        """Approve later device codes as this user."""
        self.user_id, self.upn = user_id, upn

    def start(self, tenant: str, form: Mapping[str, str], base_url: str) -> dict[str, Any]:
        """`POST .../devicecode`: a new flow, or LoginFailure as Entra answers."""
        self._check_client(tenant, form)
        scopes = _api_scopes(form.get("scope", ""))
        device_code = secrets.token_urlsafe(32)
        user_code = secrets.token_hex(4).upper()
        self.device_codes[device_code] = DeviceCode(
            scopes, time.monotonic() + DEVICE_CODE_LIFETIME_S, self.pending_polls
        )
        uri = f"{base_url}/devicelogin"
        return {
            "user_code": user_code,
            "device_code": device_code,
            "verification_uri": uri,
            "expires_in": DEVICE_CODE_LIFETIME_S,
            "interval": POLL_INTERVAL_S,
            "message": f"To sign in, use a web browser to open the page {uri} and enter the "
            f"code {user_code} to authenticate.",
        }

    def redeem(self, tenant: str, form: Mapping[str, str], issuer_url: str) -> dict[str, Any]:
        """The token endpoint's answer to a delegated grant, or LoginFailure."""
        self._check_client(tenant, form)
        if form.get("grant_type") == DEVICE_CODE_GRANT:
            grant = self._device_code(form.get("device_code", ""))
            self.device_code_grants += 1
        else:
            grant = self._refresh(form.get("refresh_token", ""))
            self.refresh_grants += 1
        return self._tokens(grant, form.get("client_id", ""), issuer_url)

    def revoke_refresh_tokens(self) -> int:
        """Revoke every refresh token (an admin's "revoke sessions"); returns how many."""
        live = [token for token in self.refresh_tokens if token not in self.revoked]
        self.revoked.update(live)
        return len(live)

    def secrets_issued(self) -> list[str]:
        """Every refresh token handed out: what a leak check searches for."""
        return list(self.refresh_tokens)

    def _check_client(self, tenant: str, form: Mapping[str, str]) -> None:
        if not self.issuer.knows_tenant(tenant):
            raise LoginFailure(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        client_id = form.get("client_id", "")
        if client_id != self.issuer.client_id:
            raise LoginFailure(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.issuer.tenant_id}'.",
            )

    def _device_code(self, device_code: str) -> Grant:
        flow = self.device_codes.get(device_code)
        if flow is None:
            raise LoginFailure(
                400, "invalid_grant", 70000, "The provided value for 'device_code' is not valid."
            )
        if flow.expires_at < time.monotonic():
            raise LoginFailure(400, "expired_token", 70020, "The provided device code expired.")
        if flow.polls_left > 0:
            flow.polls_left -= 1
            raise LoginFailure(
                400,
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            )
        del self.device_codes[device_code]  # a device code is redeemed once
        return Grant(self._user().object_id, flow.scopes)

    def _refresh(self, refresh_token: str) -> Grant:
        grant = self.refresh_tokens.get(refresh_token)
        if grant is None or refresh_token in self.revoked:
            raise LoginFailure(
                400,
                "invalid_grant",
                700082,
                "The refresh token has expired due to inactivity. The token was issued on "
                "an earlier date and was inactive for 90.00:00:00.",
            )
        return grant

    def _user(self) -> User:
        try:
            return self.directory.find_user(self.user_id)
        except GraphFailure:
            return self.directory.add_user(self.user_id, self.upn)

    def _tokens(self, grant: Grant, client_id: str, issuer_url: str) -> dict[str, Any]:
        user = self.directory.users.get(grant.object_id) or self._user()
        refresh_token = secrets.token_urlsafe(48)
        # Entra rotates refresh tokens and leaves the old one valid: workers in several
        # processes may each redeem the one they last read.
        self.refresh_tokens[refresh_token] = grant
        now = int(time.time())
        claims = {
            "aud": client_id,
            "iss": issuer_url,
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_EXPIRES_IN_S,
            "oid": user.object_id,
            "sub": user.object_id,
            "tid": self.issuer.tenant_id,
            "preferred_username": user.upn,
            "name": user.upn.partition("@")[0],
            "ver": "2.0",
        }
        client_info = {"uid": user.object_id, "utid": self.issuer.tenant_id}
        return {
            "token_type": "Bearer",
            "scope": grant.scopes,
            "expires_in": TOKEN_EXPIRES_IN_S,
            "ext_expires_in": TOKEN_EXPIRES_IN_S,
            "access_token": self.issuer.mint(time.monotonic(), subject=user.object_id),
            "refresh_token": refresh_token,
            "id_token": ".".join((_b64({"typ": "JWT", "alg": "none"}), _b64(claims), "")),
            "client_info": _b64(client_info),
        }


def _api_scopes(scope: str) -> str:
    """The API scopes asked for (MSAL adds the OIDC ones); LoginFailure when there are none."""
    wanted = [part for part in scope.split() if part not in OIDC_SCOPES]
    if not wanted:
        raise LoginFailure(
            400,
            "invalid_scope",
            70011,
            f"The provided value for the input parameter 'scope' is not valid: {scope!r}.",
        )
    return " ".join(wanted)


def _b64(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
