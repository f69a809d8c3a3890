"""The managed-identity token endpoints over HTTP (rules in `identity`): App Service's
`GET /msi/token` and the instance metadata service's `GET /metadata/identity/oauth2/token`."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from worker.simulator.identity import Flavour
from worker.simulator.responses import json_response
from worker.simulator.state import SimulatorState


class IdentityRoutes:
    """Answers the managed-identity endpoints from a SimulatorState."""

    def __init__(self, state: SimulatorState) -> None:
        self.state = state

    async def handle(self, request: Request, flavour: Flavour, raw_path: str) -> Response:
        if request.method != "GET":
            response = json_response({"error": "invalid_request"}, 405)
        else:
            query = dict(parse_qsl(request.scope["query_string"].decode("utf-8", "replace")))
            answer = self.state.managed_identity_token(flavour, request.headers, query)
            response = json_response(answer.body, answer.status)
        self.state.record(request.method, raw_path, response.status_code, graph=False)
        return response
