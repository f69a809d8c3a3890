"""The credentials `meetreg serve` accepts, read from an `Authorization` header.

    Bearer API_KEY                  everything the API key opens: writing and reading
    Basic any-user:VIEWER_KEY       reading (the status page, batch JSON, reports), as a
    Basic any-user:API_KEY          browser's sign-in dialog sends it

Every comparison is constant-time, and each key is compared whatever the header's
form, so the time an answer takes says nothing about which part was wrong.
"""

from __future__ import annotations

import base64
import binascii
import hmac

# What a browser shows in its sign-in dialog, and the encoding it should use.
BASIC_CHALLENGE = 'Basic realm="meetreg", charset="UTF-8"'


def same_key(presented: str, key: str) -> bool:
    return hmac.compare_digest(presented.encode(), key.encode())


def bearer_token(header: str) -> str | None:
    """The token of a `Bearer` header, else None."""
    scheme, _, presented = header.partition(" ")
    return presented.strip() if scheme.lower() == "bearer" else None


def basic_password(header: str) -> str | None:
    """The password of a `Basic` header (the user name is not looked at), else None:
    not Basic, not base64, no colon, not UTF-8."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, colon, password = decoded.partition(":")
    return password if colon else None


def holds_api_key(header: str, api_key: str | None) -> bool:
    """The header presents the API key as a bearer token (what writing needs)."""
    token = bearer_token(header)
    if api_key is None or token is None:
        return False
    return same_key(token, api_key)


def may_read(header: str, *, viewer_key: str | None, api_key: str | None) -> bool:
    """The header presents the viewer key (Basic) or the API key (Bearer or Basic)."""
    password = basic_password(header)
    token = bearer_token(header)
    allowed = False
    # Compared even when absent (against nothing that can match): the same work each time.
    for presented, key in (
        (password, viewer_key),
        (password, api_key),
        (token, api_key),
    ):
        matches = same_key(presented or "", key or "")
        allowed |= matches and presented is not None and key is not None
    return allowed
