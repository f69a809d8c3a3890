"""`meetreg serve` over HTTP, without a worker: the handshake, the doors and their locks."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest
import redis
from cli_helpers import wait_until
from metrics_helpers import samples, value
from pipeline_helpers import ORGANIZER
from serve_helpers import API_KEY, CLIENT_STATE, Served, bearer

from jobs.events.subscriptions import SubscriptionBook, SubscriptionRecord
from worker import keys

TOKEN = "Validation: Testing client application reachability for subscription Request-Id: 5f1c+/&=?"


@pytest.mark.parametrize("path", ["/graph/notifications", "/graph/lifecycle"])
def test_the_validation_handshake_echoes_the_decoded_token_as_plain_text(
    served: Served, path: str
) -> None:
    answer = served.http.post(f"{path}?validationToken={quote(TOKEN, safe='')}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.text == TOKEN


def test_a_registration_request_needs_the_api_key(
    served: Served, redis_client: redis.Redis
) -> None:
    item = {"user_id": ORGANIZER, "meeting_id": "m-1"}
    for headers in ({}, bearer("wrong-key-0123456789abcdef"), {"Authorization": API_KEY}):
        answer = served.http.post("/api/registrations", json=item, headers=headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
    assert redis_client.zcard(keys.BATCHES) == 0


def test_invalid_items_are_422_with_each_error_and_nothing_is_enqueued(
    served: Served, redis_client: redis.Redis
) -> None:
    items = [
        {"user_id": ORGANIZER, "meeting_id": "m-1"},
        {"user_id": "nobody", "meeting_id": "m-2"},
    ]
    answer = served.http.post("/api/registrations", json=items, headers=bearer())
    assert answer.status_code == 422
    (error,) = answer.json()["items"]
    assert error["index"] == 1
    assert "user_id" in error["error"]
    assert redis_client.zcard(keys.BATCHES) == 0
    assert redis_client.llen(keys.QUEUE) == 0


def test_a_valid_request_is_recorded_and_queued_under_its_batch_id(
    served: Served, redis_client: redis.Redis
) -> None:
    items = [{"userId": ORGANIZER, "meetingId": f"m-{i}"} for i in range(3)]
    answer = served.http.post("/api/registrations?batch_id=api-1", json=items, headers=bearer())
    assert answer.status_code == 202
    assert answer.json() == {"batch_id": "api-1", "total": 3, "resumed": False}
    assert int(redis_client.hget(keys.batch("api-1"), "queued")) == 3
    assert redis_client.llen(keys.QUEUE) == 1  # one chunk of three rows

    again = served.http.post("/api/registrations?batch_id=api-1", json=items, headers=bearer())
    assert again.json()["resumed"] is True  # a client's retry adds no rows


def test_other_items_under_an_existing_batch_id_are_409_and_nothing_is_enqueued(
    served: Served, redis_client: redis.Redis
) -> None:
    items = [{"userId": ORGANIZER, "meetingId": f"m-{i}"} for i in range(3)]
    url = "/api/registrations?batch_id=api-2"
    assert served.http.post(url, json=items, headers=bearer()).status_code == 202
    rows_before = redis_client.hgetall(keys.rows("api-2"))
    queued_before = redis_client.llen(keys.QUEUE)

    for other in (
        [{"userId": ORGANIZER, "meetingId": f"x-{i}"} for i in range(3)],  # as many items
        list(reversed(items)),  # the same items, in another order
        [{**item, "allowedRegistrant": "organization"} for item in items],
        items[:2],
    ):
        answer = served.http.post(url, json=other, headers=bearer())
        assert answer.status_code == 409, answer.text
        message = answer.json()["error"]
        assert "api-2" in message and "rows differ" in message and "\n" not in message

    assert redis_client.hgetall(keys.rows("api-2")) == rows_before
    assert redis_client.llen(keys.QUEUE) == queued_before
    same = served.http.post(url, json=items, headers=bearer())
    assert (same.status_code, same.json()["resumed"]) == (202, True)


def test_a_body_over_the_limit_is_413_and_nothing_is_read_into_a_batch(
    served: Served, redis_client: redis.Redis
) -> None:
    items = [{"user_id": ORGANIZER, "meeting_id": f"m-{i:060d}"} for i in range(1000)]
    answer = served.http.post("/api/registrations", content=json.dumps(items), headers=bearer())
    assert answer.status_code == 413
    assert redis_client.zcard(keys.BATCHES) == 0


def test_metrics_need_no_key_and_show_what_this_server_recorded_and_the_shared_gauges(
    served: Served, redis_client: redis.Redis
) -> None:
    before = samples(served.http.get("/metrics").text)
    same = {"userId": ORGANIZER, "meetingId": "m-metrics"}
    answer = served.http.post("/api/registrations?batch_id=m1", json=[same, same], headers=bearer())
    assert answer.status_code == 202
    page = served.http.get("/metrics")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/plain; version=0.0.4")
    after = samples(page.text)
    # The repeated row is `skipped` the moment this server records the batch.
    skipped = ("meetreg_rows_total", {"outcome": "skipped"})
    assert value(after, skipped[0], **skipped[1]) == value(before, skipped[0], **skipped[1]) + 1
    assert value(after, "meetreg_queue_depth") == redis_client.llen(keys.QUEUE) == 1
    assert value(after, "meetreg_batches_in_progress") == 1
    assert value(after, "meetreg_rate_limit_effective") > 0
    assert served.http.post("/metrics").status_code == 405


def test_unknown_paths_and_methods_are_refused(served: Served) -> None:
    assert served.http.get("/nothing-here").status_code == 404
    assert served.http.get("/graph/notifications").status_code == 405
    assert served.http.get("/api/registrations", headers=bearer()).status_code == 405


def test_a_notification_with_a_wrong_client_state_is_acknowledged_and_dropped(
    served: Served, redis_client: redis.Redis
) -> None:
    forged = {
        "value": [
            {
                "subscriptionId": "s",
                "changeType": "created",
                "resource": f"Users/{ORGANIZER}/Events/e-1",
                "resourceData": {"id": "e-1"},
                "clientState": CLIENT_STATE[:-1] + "X",
            }
        ]
    }
    answer = served.http.post("/graph/notifications", json=forged)
    assert answer.status_code == 202
    assert redis_client.llen(keys.QUEUE) == 0
    assert list(redis_client.scan_iter(keys.notification("*"))) == []


@pytest.mark.parametrize("path", ["/graph/notifications", "/graph/lifecycle"])
def test_a_notification_of_a_subscription_meetreg_did_not_make_is_acknowledged_and_dropped(
    served: Served, redis_client: redis.Redis, path: str
) -> None:
    change = {
        "subscriptionId": "made-by-someone-else",
        "changeType": "created",
        "resource": f"Users/{ORGANIZER}/Events/e-1",
        "resourceData": {"id": "e-1"},
        "clientState": CLIENT_STATE,
    }
    lifecycle = {
        "subscriptionId": "made-by-someone-else",
        "lifecycleEvent": "missed",
        "clientState": CLIENT_STATE,
    }
    answer = served.http.post(path, json={"value": [change, lifecycle]})
    assert answer.status_code == 202
    assert redis_client.llen(keys.QUEUE) == 0
    assert list(redis_client.scan_iter(keys.notification("*"))) == []
    wait_until(
        lambda: (
            "dropped 2 notification(s) of subscriptions meetreg did not make"
            in served.log.read_text()
        ),
        timeout_s=10,
        what="the drop in serve's log",
    )


def test_a_body_that_is_not_a_notification_is_400(served: Served) -> None:
    assert served.http.post("/graph/notifications", content=b"hello").status_code == 400


def test_health_is_503_while_no_worker_has_beaten(
    served: Served, redis_client: redis.Redis
) -> None:
    answer = served.http.get("/healthz")
    assert answer.status_code == 503
    assert answer.json() == {"ok": False, "redis": "ok", "workers": 0}


def test_ready_while_redis_answers_even_with_no_worker_and_no_credential(
    served: Served, redis_client: redis.Redis
) -> None:
    # Readiness keeps the webhook in service through a worker outage: what serve accepts
    # waits in Redis for the workers (the health check is the one that wants a worker).
    answer = served.http.get("/readyz")
    assert (answer.status_code, answer.json()) == (200, {"ok": True, "redis": "ok"})


@pytest.mark.parametrize("path", ["/graph/notifications", "/api/registrations"])
def test_a_body_nested_too_deeply_is_400_not_a_crash(served: Served, path: str) -> None:
    answer = served.http.post(path, content=b"[" * 20_000 + b"]" * 20_000, headers=bearer())
    assert answer.status_code == 400
    assert "nested" in answer.json()["error"]
    assert served.http.get("/healthz").status_code in (200, 503)  # still serving


def test_a_thousand_notifications_are_each_acknowledged_within_three_seconds(
    served: Served, redis_client: redis.Redis
) -> None:
    SubscriptionBook(redis_client).save(
        SubscriptionRecord(
            id="load",
            user_id=ORGANIZER,
            notification_url=f"{served.url}/graph/notifications",
            lifecycle_url=None,
            expires_at="2099-01-01T00:00:00Z",
            created_at="2024-01-01T00:00:00Z",
        )
    )

    def deliver(i: int) -> tuple[int, float]:
        note = {
            "subscriptionId": "load",
            "changeType": "created",
            "resource": f"Users/{ORGANIZER}/Events/e-{i}",
            "resourceData": {"id": f"e-{i}", "@odata.etag": 'W/"1"'},
            "clientState": CLIENT_STATE,
        }
        started = time.monotonic()
        answer = served.http.post("/graph/notifications", json={"value": [note]})
        return answer.status_code, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(deliver, range(1000)))
    assert {status for status, _ in results} == {202}
    slowest = max(elapsed for _, elapsed in results)
    assert slowest < 3.0, f"slowest acknowledgement took {slowest:.2f} s"
    assert len(list(redis_client.scan_iter(keys.notification("*"), count=1000))) == 1000
    assert redis_client.llen(keys.QUEUE) == 1000  # one task each, nothing lost


def test_a_body_mixing_meetings_and_registrants_is_refused_whole(
    served: Served, redis_client: redis.Redis
) -> None:
    items = [
        {"user_id": ORGANIZER, "meeting_id": "m-1"},
        {"webinarId": "w-1@w-2", "email": "ann@contoso.example", "firstName": "A", "lastName": "L"},
    ]
    before = set(redis_client.scan_iter("*"))
    answer = served.http.post("/api/registrations", json=items, headers=bearer())
    assert answer.status_code == 400
    assert answer.json()["error"] == (
        "the body mixes meeting items and webinar registrant items: send each kind on its own"
    )
    assert set(redis_client.scan_iter("*")) == before  # nothing enqueued


def test_a_bad_registrant_item_is_refused_with_its_reason(served: Served) -> None:
    items = [
        {"webinarId": "w-1@w-2", "email": "ann@contoso.example", "firstName": "A", "lastName": "L"},
        {"webinarId": "w-1@w-2", "email": "not-an-address", "firstName": "B", "lastName": "L"},
        {
            "webinarId": "w-1@w-2",
            "email": "cy@contoso.example",
            "firstName": "C",
            "lastName": "L",
            "answers": ["CTO"],
        },
    ]
    answer = served.http.post("/api/registrations", json=items, headers=bearer())
    assert answer.status_code == 422
    assert answer.json()["items"] == [
        {"index": 1, "error": "email is not an email address"},
        {"index": 2, "error": "answers must be an object of question id to answer"},
    ]
