"""Microsoft Graph for meetreg: the client, its tokens, and `Retry-After`.

    client.py       GraphClient (registration, user and meeting calls), Registration, Deletion,
                    build_http_client / build_graph_client; httpx -> worker.errors
    auth.py         TokenSource, SharedTokenSource (msal -> worker.errors), BearerAuth,
                    MsalTokenSource (a secret or a certificate)
    managed_identity.py  ManagedIdentityTokenSource (the Azure host's identity)
    delegated.py    DelegatedTokenSource (`meetreg login`'s organizer, `/me`)
    token_file.py   the delegated token cache file (0600, atomic)
    credentials.py  build_token_source: the one place MEETREG_AUTH is acted on
    retry_after.py  parse_retry_after

Callers see only worker.errors' exceptions; httpx and msal stay inside this package.
"""

from worker.graph.auth import BearerAuth, MsalTokenSource, StaticTokenSource, TokenSource
from worker.graph.client import (
    Deletion,
    GraphClient,
    Registration,
    build_graph_client,
    build_http_client,
)
from worker.graph.retry_after import parse_retry_after

__all__ = [
    "BearerAuth",
    "Deletion",
    "GraphClient",
    "MsalTokenSource",
    "Registration",
    "StaticTokenSource",
    "TokenSource",
    "build_graph_client",
    "build_http_client",
    "parse_retry_after",
]
