"""The Entra endpoints MSAL Python needs: discovery, token, and the device-code start.

    GET  /{tenant}/v2.0/.well-known/openid-configuration
    POST /{tenant}/oauth2/v2.0/token         client credentials (`tokens`), device code and
                                             refresh token grants (`sign_in`)
    POST /{tenant}/oauth2/v2.0/devicecode

MSAL builds the authority from the discovery document, so every URL in it points back at
the simulator (at whichever host and port the request came to).
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from worker.simulator.errors import LoginFailure, login_error_body
from worker.simulator.responses import json_response
from worker.simulator.state import SimulatorState

_DISCOVERY = ["v2.0", ".well-known", "openid-configuration"]
_TOKEN = ["oauth2", "v2.0", "token"]
_DEVICE_CODE = ["oauth2", "v2.0", "devicecode"]


def is_login_path(segments: list[str]) -> bool:
    """Whether the segments name one of the login endpoints (for any tenant)."""
    return (
        len(segments) == 4
        and bool(segments[0])
        and segments[1:] in (_DISCOVERY, _TOKEN, _DEVICE_CODE)
    )


class LoginRoutes:
    """Answers the login endpoints from a SimulatorState."""

    def __init__(self, state: SimulatorState) -> None:
        self.state = state

    async def handle(self, request: Request, segments: list[str], raw_path: str) -> Response:
        """Answer one request for which `is_login_path(segments)` holds."""
        tenant = segments[0]
        latency_s = self.state.latency_s()
        if latency_s:
            await asyncio.sleep(latency_s)
        if segments[1:] == _DISCOVERY:
            response = self._discovery(request, tenant)
        else:
            response = await self._token(request, tenant, device_code=segments[1:] == _DEVICE_CODE)
        self.state.record(request.method, raw_path, response.status_code, graph=False)
        return response

    def _discovery(self, request: Request, tenant: str) -> Response:
        if request.method != "GET":
            return json_response({"error": "invalid_request"}, 405)
        if not self.state.knows_tenant(tenant):
            failure = LoginFailure(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
            return json_response(login_error_body(failure), 400)
        base = f"{request.url.scheme}://{request.url.netloc}/{tenant}"
        return json_response(
            {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "jwks_uri": f"{request.url.scheme}://{request.url.netloc}/{tenant}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "grant_types_supported": [
                    "client_credentials",
                    "refresh_token",
                    "urn:ietf:params:oauth:grant-type:device_code",
                ],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                "tenant_region_scope": "EU",
            }
        )

    async def _token(self, request: Request, tenant: str, *, device_code: bool) -> Response:
        if request.method != "POST":
            return json_response({"error": "invalid_request"}, 405)
        form = dict(
            parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        )
        headers = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}
        origin = f"{request.url.scheme}://{request.url.netloc}"
        try:
            if device_code:
                answer = self.state.start_device_flow(tenant, form, origin)
            else:
                answer = self.state.issue_token(tenant, form, f"{origin}/{tenant}/v2.0")
        except LoginFailure as failure:
            body = login_error_body(failure, request.headers.get("client-request-id"))
            return json_response(body, failure.status, headers)
        return json_response(answer, 200, headers)
