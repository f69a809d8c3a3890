"""Every Graph call is counted by its answer, timed, and a "slow down" counted as such."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import REGISTRY

from worker.errors import GraphTransient
from worker.graph import GraphClient

BASE = "https://graph.example/beta"
ORGANIZER = "0f3a9c2e-5b7d-4e1f-9a8b-6c5d4e3f2a1b"
CREATED = {"id": "reg-1", "@odata.type": "#microsoft.graph.externalMeetingRegistration"}


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def snapshot() -> dict[str, float]:
    return {
        "post 429": sample("meetreg_graph_requests_total", method="POST", status="429"),
        "post 201": sample("meetreg_graph_requests_total", method="POST", status="201"),
        "get 404": sample("meetreg_graph_requests_total", method="GET", status="404"),
        "get error": sample("meetreg_graph_requests_total", method="GET", status="error"),
        "throttled": sample("meetreg_graph_throttled_total"),
        "timed": sample("meetreg_graph_request_seconds_count"),
    }


@pytest.fixture
def client() -> Iterator[GraphClient]:
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "1"}),
            httpx.Response(201, json=CREATED),
            httpx.Response(404, json={"error": {"code": "NotFound", "message": "none"}}),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers, None)
        if answer is None:
            raise httpx.ConnectError("refused", request=request)
        return answer

    http = httpx.Client(transport=httpx.MockTransport(handler))
    yield GraphClient(http, BASE)
    http.close()


def test_each_call_is_counted_by_method_and_status_and_timed(client: GraphClient) -> None:
    before = snapshot()
    with pytest.raises(GraphTransient):
        client.create_registration(ORGANIZER, "m", "everyone")
    client.create_registration(ORGANIZER, "m", "everyone")
    assert client.get_registration(ORGANIZER, "m") is None
    with pytest.raises(GraphTransient):
        client.get_registration(ORGANIZER, "m")
    after = snapshot()
    assert {name: after[name] - before[name] for name in after} == {
        "post 429": 1,
        "post 201": 1,
        "get 404": 1,
        "get error": 1,  # no answer at all
        "throttled": 1,
        "timed": 4,
    }
