"""How a Graph answer becomes an HTTP response: the request-id, the error shape, JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from worker.simulator.errors import GraphFailure, graph_error_body

# What Graph itself sends; a client must not insist on a bare "application/json".
GRAPH_JSON = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;"
    "charset=utf-8"
)
WWW_AUTHENTICATE = (
    'Bearer realm="", '
    'authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    'client_id="00000003-0000-0000-c000-000000000000"'
)


def json_response(
    body: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
    media_type: str = "application/json",
) -> Response:
    """A compact JSON response."""
    content = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return Response(content, status, headers, media_type=media_type)


@dataclass(slots=True)
class Reply:
    """One Graph answer before it is rendered: a body, or an error `code` and `message`."""

    status: int
    body: dict[str, Any] | None = None
    code: str | None = None
    message: str = ""
    retry_after: str | None = None

    @classmethod
    def failure(cls, failure: GraphFailure) -> Reply:
        return cls(
            failure.status,
            code=failure.code,
            message=failure.message,
            retry_after=failure.retry_after,
        )

    @property
    def retry_after_s(self) -> float | None:
        return float(self.retry_after) if self.retry_after is not None else None

    def render(
        self, request_id: str, client_request_id: str | None
    ) -> tuple[dict[str, str], dict[str, Any] | None]:
        """Headers and body; an error body carries the same request-id as the header."""
        headers = {"request-id": request_id, "client-request-id": client_request_id or request_id}
        if self.retry_after is not None:
            headers["Retry-After"] = self.retry_after
        if self.status == 401:
            headers["WWW-Authenticate"] = WWW_AUTHENTICATE
        if self.code is not None:
            return headers, graph_error_body(self.code, self.message, request_id, client_request_id)
        return headers, self.body

    def to_response(self, request_id: str, client_request_id: str | None) -> Response:
        headers, body = self.render(request_id, client_request_id)
        if body is None:
            return Response(status_code=self.status, headers=headers)
        return json_response(body, self.status, headers, GRAPH_JSON)
