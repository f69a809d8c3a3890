"""The managed-identity token endpoints of an Azure host, as MSAL's ManagedIdentityClient
calls them (the flavour is chosen by the environment MSAL finds):

    GET /msi/token?api-version=2019-08-01&resource=...[&client_id=...]
        App Service / Functions: IDENTITY_ENDPOINT, header X-IDENTITY-HEADER: IDENTITY_HEADER;
        answers {"access_token", "expires_on" (epoch seconds), "resource", "token_type"},
        errors as {"statusCode", "message"}
    GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=...[&client_id=...]
        the VM's instance metadata service (IMDS) at AZURE_POD_IDENTITY_AUTHORITY_HOST,
        header Metadata: true; answers {"access_token", "expires_in", ...},
        errors as {"error", "error_description"}

The host has a system-assigned identity and the user-assigned ones configured; their
tokens are application tokens (no user), minted by the `TokenIssuer`. No locking here;
the `SimulatorState` holds the lock.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from worker.simulator.config import TOKEN_EXPIRES_IN_S
from worker.simulator.tokens import TokenIssuer

Flavour = Literal["app_service", "imds"]
APP_SERVICE_PATH = ["msi", "token"]
IMDS_PATH = ["metadata", "identity", "oauth2", "token"]
API_VERSIONS: dict[Flavour, str] = {"app_service": "2019-08-01", "imds": "2018-02-01"}
SYSTEM_ASSIGNED = "system-assigned"


@dataclass(frozen=True, slots=True)
class IdentityAnswer:
    """The endpoint's answer: a status and its JSON body."""

    status: int
    body: dict[str, Any]


def identity_flavour(segments: list[str]) -> Flavour | None:
    """Which managed-identity endpoint the path names, if any."""
    if segments == APP_SERVICE_PATH:
        return "app_service"
    if segments == IMDS_PATH:
        return "imds"
    return None


class ManagedIdentities:
    """The identities of the simulated host and the tokens they are given."""

    def __init__(self, issuer: TokenIssuer, header: str, user_assigned: tuple[str, ...]) -> None:
        self.issuer = issuer
        self.header = header
        self.user_assigned = {client_id.lower() for client_id in user_assigned}
        self.issued: dict[str, int] = {}  # identity -> tokens handed out

    def answer(
        self, flavour: Flavour, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> IdentityAnswer:
        """Check the request as the platform does, then hand out a token or refuse."""
        if flavour == "app_service":
            given = headers.get("x-identity-header", "")
            if not hmac.compare_digest(given.encode(), self.header.encode()):
                return _refuse(flavour, 401, "invalid_request", "X-IDENTITY-HEADER is not valid.")
        elif headers.get("metadata", "").lower() != "true":
            return _refuse(
                flavour, 400, "invalid_request", "Required metadata header not specified"
            )
        if query.get("api-version") != API_VERSIONS[flavour]:
            return _refuse(flavour, 400, "invalid_request", "The api-version is not supported.")
        resource = query.get("resource", "")
        if not resource:
            return _refuse(
                flavour, 400, "invalid_request", "Required query variable 'resource' is missing"
            )
        client_id = query.get("client_id")
        if client_id is not None and client_id.lower() not in self.user_assigned:
            return _refuse(
                flavour,
                400,
                "invalid_request",
                "Identity not found: no user-assigned managed identity has this client_id.",
            )
        identity = client_id.lower() if client_id else SYSTEM_ASSIGNED
        self.issued[identity] = self.issued.get(identity, 0) + 1
        token = self.issuer.mint(time.monotonic())
        body: dict[str, Any] = {
            "access_token": token,
            "expires_on": str(int(time.time()) + TOKEN_EXPIRES_IN_S),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": client_id or "00000000-0000-0000-0000-00000000beef",
        }
        if flavour == "imds":
            body["expires_in"] = str(TOKEN_EXPIRES_IN_S)
        return IdentityAnswer(200, body)


def _refuse(flavour: Flavour, status: int, error: str, message: str) -> IdentityAnswer:
    if flavour == "app_service":
        return IdentityAnswer(status, {"statusCode": status, "message": message})
    return IdentityAnswer(status, {"error": error, "error_description": message})
