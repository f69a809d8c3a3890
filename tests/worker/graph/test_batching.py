"""Calls packed into $batch requests: each caller gets its own item's answer."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import httpx
import pytest

from worker.errors import GraphPermanent, GraphTransient
from worker.graph import GraphClient
from worker.graph.batching import EnvelopeSender

BASE = "https://graph.example/beta"
EXTERNAL = "#microsoft.graph.externalMeetingRegistration"
ORGANIZER = "0f3a9c2e-5b7d-4e1f-9a8b-6c5d4e3f2a1b"


def batch_client(handler: Callable[[httpx.Request], httpx.Response], **kwargs) -> GraphClient:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return GraphClient(http, BASE, batch=EnvelopeSender(http, BASE, **kwargs))


def answer_each(items_seen: list[list[dict]], status_for: Callable[[dict], int]):
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/beta/$batch"
        items = json.loads(request.content)["requests"]
        items_seen.append(items)
        responses = []
        for item in reversed(items):  # any order, as Graph may answer
            status = status_for(item)
            body = (
                {
                    "id": "reg-" + item["url"].split("/")[4],
                    "@odata.type": "#microsoft.graph.externalMeetingRegistration",
                }
                if status == 201
                else {"error": {"code": "Forbidden", "message": "No Application Access Policy"}}
            )
            headers = {"Retry-After": "0.5"} if status == 429 else {}
            responses.append({"id": item["id"], "status": status, "headers": headers, "body": body})
        return httpx.Response(200, json={"responses": responses}, headers={"request-id": "outer"})

    return handler


def call_concurrently(client: GraphClient, meetings: list[str]) -> dict[str, object]:
    results: dict[str, object] = {}
    barrier = threading.Barrier(len(meetings))

    def one(meeting: str) -> None:
        barrier.wait()
        try:
            results[meeting] = client.create_registration(ORGANIZER, meeting, "everyone")
        except Exception as exc:
            results[meeting] = exc

    threads = [threading.Thread(target=one, args=(m,)) for m in meetings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return results


def test_concurrent_calls_share_batches_of_at_most_20_and_get_their_own_answers() -> None:
    seen: list[list[dict]] = []
    client = batch_client(answer_each(seen, lambda item: 201), linger_s=0.05)
    meetings = [f"m{i}" for i in range(30)]
    results = call_concurrently(client, meetings)
    client.close()
    assert {m: r.id for m, r in results.items()} == {m: f"reg-{m}" for m in meetings}
    assert sum(len(items) for items in seen) == 30
    assert max(len(items) for items in seen) <= 20
    assert len(seen) < 30  # packed, not one request per call
    first = seen[0][0]
    assert first["method"] == "POST" and first["url"].startswith("/users/")
    assert first["headers"]["Content-Type"] == "application/json"
    assert first["body"]["@odata.type"] == "#microsoft.graph.externalMeetingRegistration"


def test_each_item_is_judged_on_its_own_status() -> None:
    statuses = {"m-ok": 201, "m-forbidden": 403, "m-throttled": 429}
    client = batch_client(
        answer_each([], lambda item: statuses[item["url"].split("/")[4]]), linger_s=0.05
    )
    results = call_concurrently(client, list(statuses))
    client.close()
    assert results["m-ok"].id == "reg-m-ok"
    forbidden = results["m-forbidden"]
    assert isinstance(forbidden, GraphPermanent) and forbidden.status == 403
    assert forbidden.request_id == "outer"
    throttled = results["m-throttled"]
    assert isinstance(throttled, GraphTransient) and throttled.throttled
    assert throttled.retry_after_s == 0.5


def test_a_throttled_batch_request_throttles_every_item() -> None:
    client = batch_client(
        lambda request: httpx.Response(429, headers={"Retry-After": "2.128"}), linger_s=0.05
    )
    results = call_concurrently(client, ["a", "b"])
    client.close()
    assert all(isinstance(r, GraphTransient) and r.retry_after_s == 2.128 for r in results.values())


def test_an_item_missing_from_the_answer_is_ambiguous() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"responses": []})

    client = batch_client(handler)
    with pytest.raises(GraphTransient) as caught:
        client.create_registration(ORGANIZER, "m1", "everyone")
    client.close()
    assert caught.value.ambiguous


def test_a_timeout_of_the_batch_request_is_ambiguous_for_its_posts() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client = batch_client(handler)
    with pytest.raises(GraphTransient) as caught:
        client.create_registration(ORGANIZER, "m1", "everyone")
    client.close()
    assert caught.value.ambiguous and caught.value.status is None


@pytest.mark.parametrize("envelope_status", [424, 429, 503])
def test_an_envelope_that_is_not_2xx_still_gives_each_item_its_own_answer(
    envelope_status: int,
) -> None:
    """An older revision of Graph's throttling documentation answers a throttled batch 424,
    with a 429 (and its own Retry-After) inside for each throttled item."""
    statuses = {"m-ok": 201, "m-throttled": 429}
    inner = answer_each([], lambda item: statuses[item["url"].split("/")[4]])

    def handler(request: httpx.Request) -> httpx.Response:
        answered = inner(request)
        return httpx.Response(envelope_status, json=json.loads(answered.content))

    client = batch_client(handler, linger_s=0.05)
    results = call_concurrently(client, list(statuses))
    client.close()
    assert results["m-ok"].id == "reg-m-ok"
    throttled = results["m-throttled"]
    assert isinstance(throttled, GraphTransient) and throttled.throttled
    assert (throttled.status, throttled.retry_after_s) == (429, 0.5)


def test_an_envelope_that_is_not_2xx_without_item_answers_is_every_items_answer() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        error = {"error": {"code": "BadRequest", "message": "Invalid batch payload."}}
        return httpx.Response(400, json=error)

    client = batch_client(handler, linger_s=0.05)
    results = call_concurrently(client, ["a", "b"])
    client.close()
    assert all(isinstance(r, GraphPermanent) and r.status == 400 for r in results.values())


def test_answers_are_matched_to_callers_whatever_their_order_and_the_case_of_their_ids() -> None:
    """Graph compares request ids case-insensitively and may echo them in another case."""

    def handler(request: httpx.Request) -> httpx.Response:
        items = json.loads(request.content)["requests"]
        assert len({item["id"].casefold() for item in items}) == len(items)  # unique, any case
        responses = [
            {
                "id": item["id"].upper(),
                "status": 201,
                "body": {"id": "reg-" + item["url"].split("/")[4], "@odata.type": EXTERNAL},
            }
            for item in sorted(items, key=lambda item: item["url"], reverse=True)
        ]
        return httpx.Response(200, json={"responses": responses})

    client = batch_client(handler, linger_s=0.05)
    meetings = [f"m{i}" for i in range(12)]
    results = call_concurrently(client, meetings)
    client.close()
    assert {m: r.id for m, r in results.items()} == {m: f"reg-{m}" for m in meetings}
