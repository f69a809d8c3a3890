"""CalendarApi against exact answer sequences (httpx.MockTransport)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from worker.errors import GraphPermanent, GraphTransient
from worker.graph.calendar import CalendarApi, parse_iso, subscription_expiry

BASE = "https://graph.example/v1.0"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def api(handler) -> CalendarApi:
    return CalendarApi(httpx.Client(transport=httpx.MockTransport(handler)), BASE)


def subscription(request: httpx.Request, sub_id: str = "sub-1") -> httpx.Response:
    body = json.loads(request.content)
    return httpx.Response(
        201,
        json={
            "id": sub_id,
            "resource": "users/u/events",
            "expirationDateTime": body["expirationDateTime"],
        },
    )


def test_a_subscription_asks_for_the_longest_life_graph_grants() -> None:
    sent: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return subscription(request)

    made = api(handler).create_subscription(
        "u@contoso.example",
        notification_url="https://x/n",
        lifecycle_url="https://x/l",
        client_state="cs",
        now=NOW,
    )
    assert made.expires_at == subscription_expiry(NOW)
    assert NOW + timedelta(days=6, hours=23) < made.expires_at <= NOW + timedelta(days=7)
    (body,) = sent
    assert body["resource"] == "users/u%40contoso.example/events"
    assert body["changeType"] == "created,updated"
    assert body["lifecycleNotificationUrl"] == "https://x/l"


def test_a_400_on_the_expiry_is_asked_again_with_the_older_maximum() -> None:
    expiries: list[datetime] = []

    def handler(request: httpx.Request) -> httpx.Response:
        expiry = parse_iso(json.loads(request.content)["expirationDateTime"])
        expiries.append(expiry)
        if expiry > NOW + timedelta(minutes=4230):
            return httpx.Response(
                400, json={"error": {"code": "InvalidRequest", "message": "expiry"}}
            )
        return subscription(request)

    made = api(handler).create_subscription(
        "u", notification_url="https://x/n", lifecycle_url=None, client_state="cs", now=NOW
    )
    assert len(expiries) == 2
    assert made.expires_at == subscription_expiry(NOW, 4230)


def test_a_second_400_stands() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": {"code": "InvalidRequest", "message": "no"}})

    with pytest.raises(GraphPermanent) as caught:
        api(handler).renew_subscription("sub-1", now=NOW)
    assert caught.value.status == 400


def test_events_are_followed_across_pages_on_the_same_host_only() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "page=2" in str(request.url):
            return httpx.Response(
                200,
                json={"value": [{"id": "e2"}], "@odata.nextLink": "https://evil.example/v1.0/x"},
            )
        assert "lastModifiedDateTime%20ge%202026-11-27T12%3A00%3A00Z" in str(request.url)
        return httpx.Response(
            200, json={"value": [{"id": "e1"}], "@odata.nextLink": f"{BASE}/users/u/events?page=2"}
        )

    events = api(handler).events_changed_since("u", NOW - timedelta(days=1))
    assert next(events)["id"] == "e1"
    assert next(events)["id"] == "e2"
    with pytest.raises(GraphTransient, match="nextLink"):
        next(events)


def test_a_deleted_event_is_none_not_an_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": {"code": "ErrorItemNotFound", "message": "gone"}})

    assert api(handler).get_event("u", "e") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-05T11:50:00Z", datetime(2026, 12, 5, 11, 50, tzinfo=UTC)),
        ("2026-12-05T11:50:00.1234567Z", datetime(2026, 12, 5, 11, 50, 0, 123456, tzinfo=UTC)),
        ("2026-12-05T11:50:00.5+00:00", datetime(2026, 12, 5, 11, 50, 0, 500000, tzinfo=UTC)),
        ("2026-12-05T11:50:00", datetime(2026, 12, 5, 11, 50, tzinfo=UTC)),
    ],
)
def test_graph_timestamps_with_up_to_seven_fraction_digits_are_read(
    text: str, expected: datetime
) -> None:
    assert parse_iso(text) == expected
