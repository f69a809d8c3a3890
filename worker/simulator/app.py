"""The simulator's ASGI application: one entry point, routing on the raw path.

Starlette's router matches the *decoded* path, where `a%2Fb` has become `a/b`; Graph ids
may hold `/`, `?`, `#` or `..`. So the raw path (ASGI `raw_path`) is split on `/` first and
each segment percent-decoded exactly once, and only then routed:

    /_sim/...                                  control_routes (seeding, inspection, notify)
    /beta/..., /v1.0/...                       graph_routes (one route table for both)
    /{tenant}/v2.0/.well-known/...             login_routes
    /{tenant}/oauth2/v2.0/token, .../devicecode  login_routes
    /msi/token, /metadata/identity/oauth2/token  identity_routes (managed identity)
    anything else                              404 in Graph's error shape
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from worker.simulator.control_routes import ControlRoutes
from worker.simulator.graph_routes import GraphRoutes
from worker.simulator.identity import identity_flavour
from worker.simulator.identity_routes import IdentityRoutes
from worker.simulator.login_routes import LoginRoutes, is_login_path
from worker.simulator.paths import GRAPH_ROOTS
from worker.simulator.responses import Reply
from worker.simulator.state import SimulatorState
from worker.simulator.webhooks import Webhooks

logger = logging.getLogger(__name__)


def split_path(raw_path: str) -> list[str]:
    """Split a raw request path into segments, percent-decoding each exactly once."""
    return [unquote(segment, errors="replace") for segment in raw_path.split("/")[1:]]


class SimulatorApp:
    """ASGI app serving login, Graph and the control API from one SimulatorState.

    `stopping`, set by the server in its event loop, cuts simulated stalls short so that
    shutdown never waits for a 60-second hang to end. `webhooks` is Graph's outbound side
    (handshakes, notifications); the server closes it when its loop ends.
    """

    def __init__(self, state: SimulatorState) -> None:
        self.state = state
        self.stopping: asyncio.Event | None = None
        self.webhooks = Webhooks(state)
        self.graph = GraphRoutes(state, self.stall, self.webhooks)
        self.login = LoginRoutes(state)
        self.identity = IdentityRoutes(state)
        self.control = ControlRoutes(state, self.webhooks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is off and websockets are not served
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        segments = split_path(raw_path)
        request = Request(scope, receive)
        try:
            response = await self._route(request, segments, raw_path)
        except Exception:
            logger.exception("simulator failed on %s %s", request.method, raw_path)
            reply = Reply(500, code="UnknownError", message="The simulator failed; see its log.")
            response = reply.to_response(str(uuid.uuid4()), None)
        await response(scope, receive, send)

    async def _route(self, request: Request, segments: list[str], raw_path: str) -> Response:
        head = segments[0]
        if head == "_sim":
            return await self.control.handle(request, segments)
        if head in GRAPH_ROOTS:
            return await self.graph.handle(request, segments, raw_path)
        if is_login_path(segments):
            return await self.login.handle(request, segments, raw_path)
        flavour = identity_flavour(segments)
        if flavour is not None:
            return await self.identity.handle(request, flavour, raw_path)
        reply = Reply(
            404, code="UnknownError", message=f"Resource not found for the segment '{head}'."
        )
        self.state.record(request.method, raw_path, 404)
        return reply.to_response(str(uuid.uuid4()), request.headers.get("client-request-id"))

    async def stall(self, seconds: float) -> None:
        """Sleep `seconds`, or less if the server is stopping."""
        if self.stopping is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)
