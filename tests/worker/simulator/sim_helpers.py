"""Helpers shared by the simulator's tests: ids, a thin Graph caller, error checks."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import httpx

from worker import keys
from worker.simulator import SimulatorServer
from worker.simulator.sign_in import DEVICE_CODE_GRANT

ORGANIZER = "0f3a9c2e-5b7d-4e1f-9a8b-6c5d4e3f2a1b"
ORGANIZER_UPN = "ada@contoso.example"
OTHER_USER = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
MEETING = "MSo1N2Y5ZGFjYy03MWJmLTQ3NDMtYjQxMy01M2EdFGkdRWHJlQ"

EXTERNAL = {
    "@odata.type": "#microsoft.graph.externalMeetingRegistration",
    "allowedRegistrant": "everyone",
}

SCOPE = "https://graph.microsoft.com/OnlineMeetings.ReadWrite openid profile offline_access"


def fetch_token(sim: SimulatorServer, http: httpx.Client) -> str:
    return sim.fetch_token(http)


def login_url(sim: SimulatorServer, endpoint: str) -> str:
    return f"/{sim.tenant_id}/oauth2/v2.0/{endpoint}"


def start(sim: SimulatorServer, http: httpx.Client) -> dict[str, Any]:
    """Start a device-code flow; its answer."""
    response = http.post(
        login_url(sim, "devicecode"), data={"client_id": sim.client_id, "scope": SCOPE}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def poll(sim: SimulatorServer, http: httpx.Client, device_code: str) -> httpx.Response:
    form = {"grant_type": DEVICE_CODE_GRANT, "client_id": sim.client_id, "device_code": device_code}
    return http.post(login_url(sim, "token"), data=form)


def signed_in(sim: SimulatorServer, http: httpx.Client) -> dict[str, Any]:
    """The token answer of a device-code sign-in (pending once, then approved)."""
    flow = start(sim, http)
    assert poll(sim, http, flow["device_code"]).json()["error"] == "authorization_pending"
    answer = poll(sim, http, flow["device_code"])
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def delegated_token(sim: SimulatorServer, http: httpx.Client, user_id: str, upn: str) -> str:
    """A delegated access token acting for `user_id`, as `meetreg login` gets one."""
    sim.state.sign_in_as(user_id, upn)
    return str(signed_in(sim, http)["access_token"])


class Graph:
    """A thin Graph caller for tests: paths built with worker.keys, a bearer token set."""

    def __init__(self, sim: SimulatorServer, http: httpx.Client) -> None:
        self.sim = sim
        self.http = http
        self.token = fetch_token(sim, http)

    def request(
        self, method: str, path: str, *, root: str = "beta", **kwargs: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self.http.request(method, f"/{root}{path}", headers=headers, **kwargs)

    def v1(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A call under /v1.0, where meetreg reads events and subscribes."""
        return self.request(method, path, root="v1.0", **kwargs)

    def post_registration(
        self,
        meeting_id: str = MEETING,
        user_id: str = ORGANIZER,
        body: Any = EXTERNAL,
        **kwargs: Any,
    ) -> httpx.Response:
        return self.request(
            "POST", keys.registration_path(user_id, meeting_id), json=body, **kwargs
        )

    def get_registration(
        self, meeting_id: str = MEETING, user_id: str = ORGANIZER
    ) -> httpx.Response:
        return self.request("GET", keys.registration_path(user_id, meeting_id))

    def delete_registration(
        self, meeting_id: str = MEETING, user_id: str = ORGANIZER
    ) -> httpx.Response:
        return self.request("DELETE", keys.registration_path(user_id, meeting_id))


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The Graph error of a response, checking its request-id matches the header."""
    error = response.json()["error"]
    assert error["innerError"]["request-id"] == response.headers["request-id"]
    return dict(error)


def wait_until(condition: Callable[[], object], timeout_s: float = 5.0) -> None:
    """Poll `condition` until it holds; fail the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(0.01)


def free_port() -> int:
    """A loopback port nothing listens on (a webhook that cannot be reached)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
