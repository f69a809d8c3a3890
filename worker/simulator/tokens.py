"""The Entra token endpoint's rules: which client may have a token, and which tokens are live.

Client credentials here: a secret, or a client assertion (a JWT signed with the app's
certificate); the delegated grants (`sign_in`) and managed identities (`identity`) mint
their tokens through `mint`, a delegated one carrying the user it acts for. Tokens are
random opaque strings that die `ttl_s` after issue, or at once on `expire_all()`, while
the response always says `expires_in: 3599`, so a client's cache keeps offering a token
the server has already forgotten: how "refresh on 401" is tested.
No locking here; the `SimulatorState` holds the lock.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from worker.simulator.config import TOKEN_EXPIRES_IN_S
from worker.simulator.errors import LoginFailure

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Tokens are pruned when this many are held; a test process asks for a handful.
_PRUNE_AT = 10_000


class TokenIssuer:
    """Issues and checks application tokens for one tenant and one client app."""

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        certificates: tuple[str, ...] = (),
        ttl_s: float = 3600.0,
    ) -> None:
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.ttl_s = ttl_s
        self.public_keys = [
            x509.load_pem_x509_certificate(pem.encode()).public_key() for pem in certificates
        ]
        self.issued = 0
        self._expires_at: dict[str, float] = {}  # token -> time.monotonic() deadline
        self._subjects: dict[str, str] = {}  # delegated token -> the user's objectId

    def knows_tenant(self, tenant: str) -> bool:
        return tenant.lower() == self.tenant_id.lower()

    def issue(
        self, tenant: str, form: Mapping[str, str], now: float | None = None
    ) -> dict[str, Any]:
        """Answer a client-credentials token request, or raise LoginFailure as Entra would."""
        now = time.monotonic() if now is None else now
        if not self.knows_tenant(tenant):
            raise LoginFailure(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        grant = form.get("grant_type", "")
        if grant != "client_credentials":
            raise LoginFailure(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant}'.",
            )
        client_id = form.get("client_id", "")
        if client_id != self.client_id:
            raise LoginFailure(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.tenant_id}'.",
            )
        scope = form.get("scope", "")
        if not any(part.endswith("/.default") for part in scope.split()):
            raise LoginFailure(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope!r} is not valid.",
            )
        self._authenticate(form)
        token = self.mint(now)
        return {
            "token_type": "Bearer",
            "expires_in": TOKEN_EXPIRES_IN_S,
            "ext_expires_in": TOKEN_EXPIRES_IN_S,
            "access_token": token,
        }

    def mint(self, now: float, subject: str | None = None) -> str:
        """A new bearer token Graph accepts for `ttl_s`: the app's own (`subject` None), or
        one acting for the user whose objectId is `subject` (a delegated token)."""
        token = secrets.token_urlsafe(32)
        if len(self._expires_at) >= _PRUNE_AT:
            self._expires_at = {t: at for t, at in self._expires_at.items() if at > now}
            self._subjects = {t: s for t, s in self._subjects.items() if t in self._expires_at}
        self._expires_at[token] = now + self.ttl_s
        if subject is not None:
            self._subjects[token] = subject
        self.issued += 1
        return token

    def subject(self, token: str | None) -> str | None:
        """The user a delegated token acts for; None for an application token."""
        return self._subjects.get(token) if token else None

    def tokens(self) -> list[str]:
        """Every token issued and not yet pruned: what a leak check searches for."""
        return list(self._expires_at)

    def valid(self, token: str | None, now: float | None = None) -> bool:
        """Whether Graph accepts this bearer token now."""
        if not token:
            return False
        expires_at = self._expires_at.get(token)
        return expires_at is not None and expires_at > (time.monotonic() if now is None else now)

    def expire_all(self) -> int:
        """Expire every token issued so far; returns how many were live."""
        now = time.monotonic()
        live = sum(1 for at in self._expires_at.values() if at > now)
        self._expires_at.clear()
        return live

    def _authenticate(self, form: Mapping[str, str]) -> None:
        secret = form.get("client_secret")
        if secret is not None:
            if not hmac.compare_digest(secret.encode(), self.client_secret.encode()):
                raise LoginFailure(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request "
                    f"is the client secret value, not the client secret ID, for a secret added to "
                    f"app '{self.client_id}'.",
                )
            return
        assertion = form.get("client_assertion")
        if assertion is None or form.get("client_assertion_type") != ASSERTION_TYPE:
            raise LoginFailure(
                401,
                "invalid_client",
                7000216,
                "'client_assertion', 'client_secret' or 'request' is required for the "
                "'client_credentials' grant type.",
            )
        self._check_assertion(assertion)

    def _check_assertion(self, assertion: str) -> None:
        try:
            header_b64, payload_b64, signature_b64 = assertion.split(".")
            header = json.loads(_b64url(header_b64))
            payload = json.loads(_b64url(payload_b64))
            signature = _b64url(signature_b64)
        except (ValueError, binascii.Error) as exc:
            raise LoginFailure(
                401, "invalid_client", 50027, "JWT token is invalid or malformed."
            ) from exc
        if payload.get("sub") != self.client_id or payload.get("iss") != self.client_id:
            raise LoginFailure(
                401,
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match.",
            )
        if isinstance(payload.get("exp"), int | float) and payload["exp"] < time.time():
            raise LoginFailure(
                401,
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range.",
            )
        if not self.public_keys:
            return  # no certificate registered: a well-formed assertion is enough
        signed = f"{header_b64}.{payload_b64}".encode()
        if not any(
            _verifies(key, str(header.get("alg")), signed, signature) for key in self.public_keys
        ):
            raise LoginFailure(
                401, "invalid_client", 700027, "Client assertion contains an invalid signature."
            )


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _verifies(key: object, alg: str, signed: bytes, signature: bytes) -> bool:
    """Check a JWS signature for the algorithms MSAL uses (PS256, RS256) and ES256."""
    try:
        if isinstance(key, rsa.RSAPublicKey) and alg == "RS256":
            key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, rsa.RSAPublicKey) and alg == "PS256":
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
            key.verify(signature, signed, pss, hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey) and alg == "ES256":
            half = len(signature) // 2
            der = encode_dss_signature(
                int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
            )
            key.verify(der, signed, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except InvalidSignature:
        return False
    return True
