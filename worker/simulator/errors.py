"""The error shapes the simulator answers with, as Graph and Entra spell them.

    GraphFailure   a Graph error: status, `code`, message, optional `Retry-After`
    LoginFailure   an Entra token-endpoint error: status, `error`, AADSTS description

State methods raise these; the routes turn them into responses, adding the request-id.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Any

from worker.simulator.config import RetryAfterStyle


class GraphFailure(Exception):
    """Graph refused the request: `status` and `code` are what a client branches on."""

    def __init__(
        self, status: int, code: str, message: str, *, retry_after: str | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class LoginFailure(Exception):
    """The token endpoint refused: OAuth `error` plus an AADSTS `description`."""

    def __init__(self, status: int, error: str, aadsts: int, description: str) -> None:
        super().__init__(f"{error}: AADSTS{aadsts}: {description}")
        self.status = status
        self.error = error
        self.aadsts = aadsts
        self.description = description


def now_iso() -> str:
    """The current UTC time as Graph writes it in `innerError.date`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def graph_error_body(
    code: str, message: str, request_id: str, client_request_id: str | None = None
) -> dict[str, Any]:
    """Graph's error body, with `innerError.request-id` equal to the response header."""
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": now_iso(),
                "request-id": request_id,
                "client-request-id": client_request_id or request_id,
            },
        }
    }


def login_error_body(failure: LoginFailure, correlation_id: str | None = None) -> dict[str, Any]:
    """Entra's token-endpoint error body (MSAL hands it back as a dict)."""
    trace_id = str(uuid.uuid4())
    correlation_id = correlation_id or str(uuid.uuid4())
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return {
        "error": failure.error,
        "error_description": (
            f"AADSTS{failure.aadsts}: {failure.description} Trace ID: {trace_id} "
            f"Correlation ID: {correlation_id} Timestamp: {stamp}"
        ),
        "error_codes": [failure.aadsts],
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={failure.aadsts}",
    }


def format_retry_after(seconds: float, style: RetryAfterStyle) -> str:
    """Spell a wait as a `Retry-After` value: "2" (rounded up, so never early) or "2.128"."""
    seconds = max(seconds, 0.0)
    if style == "int":
        # The epsilon keeps 2.0000000001 (float noise) from becoming "3".
        return str(math.ceil(seconds - 1e-9))
    return f"{max(seconds, 0.001):.3f}"
