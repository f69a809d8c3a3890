"""App-only tokens from the managed identity of the Azure host meetreg runs on.

MSAL's `ManagedIdentityClient` finds the host's token endpoint from the environment the
platform sets: App Service, Functions and Container Apps set IDENTITY_ENDPOINT and
IDENTITY_HEADER; Azure Machine Learning MSI_ENDPOINT and MSI_SECRET; a VM or AKS has the
instance metadata service (IMDS, AZURE_POD_IDENTITY_AUTHORITY_HOST or 169.254.169.254).
No secret is configured: AZURE_CLIENT_ID, when set, picks a user-assigned identity.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import msal

from worker.errors import GraphAuthError, GraphTransient
from worker.graph.auth import SharedTokenSource
from worker.settings import Settings

IMDS_HOST = "http://169.254.169.254"
# App Service's endpoint answers errors as {"statusCode": N, "message": ...}; MSAL passes
# them on as `invalid_scope` with "N, message" for a description. N says whether to retry.
_STATUS_IN_DESCRIPTION = re.compile(r"^\s*(\d{3})\s*,")


def graph_resource(graph_base_url: str) -> str:
    """The resource a managed identity asks a token for: Graph's root, without a path."""
    parts = urlsplit(graph_base_url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def identity_endpoint() -> str:
    """Which token endpoint MSAL will use here, as the errors name it (no secret in it)."""
    if os.environ.get("IDENTITY_ENDPOINT") and os.environ.get("IDENTITY_HEADER"):
        if os.environ.get("IDENTITY_SERVER_THUMBPRINT"):
            return f"the Service Fabric identity endpoint {os.environ['IDENTITY_ENDPOINT']}"
        return f"the App Service identity endpoint {os.environ['IDENTITY_ENDPOINT']}"
    if os.environ.get("MSI_ENDPOINT") and os.environ.get("MSI_SECRET"):
        return f"the Machine Learning identity endpoint {os.environ['MSI_ENDPOINT']}"
    host = os.environ.get("AZURE_POD_IDENTITY_AUTHORITY_HOST", IMDS_HOST)
    return f"the instance metadata service at {host.rstrip('/')}"


class ManagedIdentityTokenSource(SharedTokenSource):
    """Tokens from one MSAL ManagedIdentityClient per process (it caches them until near
    expiry). `token()` raises GraphAuthError (no identity, no access) or GraphTransient."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.monotonic) -> None:
        user_assigned = settings.client_id
        self.identity = (
            f"user-assigned managed identity {user_assigned}"
            if user_assigned
            else "system-assigned managed identity"
        )
        super().__init__(
            f"{identity_endpoint()} for the {self.identity}",
            settings.request_timeout_s,
            secrets=tuple(
                value
                for value in (os.environ.get("IDENTITY_HEADER"), os.environ.get("MSI_SECRET"))
                if value
            ),
            clock=clock,
            ca=settings.login_ca,
        )
        self.resource = graph_resource(settings.graph_base_url)
        self._cache = msal.TokenCache()
        self._client = msal.ManagedIdentityClient(
            msal.UserAssignedManagedIdentity(client_id=user_assigned)
            if user_assigned
            else msal.SystemAssignedManagedIdentity(),
            http_client=self._session,
            token_cache=self._cache,
        )

    def _acquire(self, *, forget: bool) -> Any:
        if forget:
            # MSAL's cache would hand back the very token Graph just refused.
            held = list(self._cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN))
            for entry in held:
                self._cache.remove_at(entry)
        return self._client.acquire_token_for_client(resource=self.resource)

    def _refused(self, result: dict[str, Any]) -> GraphTransient | GraphAuthError:
        refused = super()._refused(result)
        if isinstance(refused, GraphAuthError) and endpoint_was_busy(result):
            return GraphTransient(refused.message, code=refused.code, ambiguous=False)
        return refused


def endpoint_was_busy(result: dict[str, Any]) -> bool:
    """Whether MSAL's error result hides an HTTP 429 or 5xx of the identity endpoint (App
    Service's errors arrive as `invalid_scope` with "status, message"): worth a retry."""
    found = _STATUS_IN_DESCRIPTION.match(str(result.get("error_description") or ""))
    status = int(found.group(1)) if found else 0
    return status == 429 or status >= 500
