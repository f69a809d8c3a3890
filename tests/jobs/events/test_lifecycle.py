"""Lifecycle notifications into a running `meetreg serve` and a real worker: each renews,
recreates or leaves the subscription, then catches up on what changed meanwhile."""

from __future__ import annotations

import pytest
import redis
from cli_helpers import wait_until
from pipeline_helpers import ORGANIZER, UPN

from jobs.events.subscriptions import SubscriptionBook
from worker.simulator import SimulatorServer


def test_lifecycle_events_renew_recreate_and_catch_up(
    subscribed: str, sim: SimulatorServer, redis_client: redis.Redis
) -> None:
    book = SubscriptionBook(redis_client)
    sim.notify_lifecycle(subscribed, "reauthorizationRequired")
    wait_until(lambda: book.get(subscribed).renewed_at != "", timeout_s=30, what="a renewal")
    assert any(method == "PATCH" for method, _, _ in sim.state.requests)

    sim.notify_lifecycle(subscribed, "subscriptionRemoved")
    wait_until(
        lambda: book.get(subscribed) is None and len(book.all()) == 1,
        timeout_s=30,
        what="a new one",
    )
    (recreated,) = sim.state.subscriptions()
    assert recreated["id"] == book.all()[0].id != subscribed

    missed = sim.state.add_event(ORGANIZER, meeting_id="missed-meeting")  # never notified
    sim.notify_lifecycle(str(recreated["id"]), "missed")
    wait_until(
        lambda: sim.state.registration("missed-meeting") is not None, timeout_s=30, what="catch-up"
    )
    assert missed["id"]


@pytest.mark.parametrize("event", ["reauthorizationRequired", "subscriptionRemoved", "missed"])
def test_every_lifecycle_event_catches_up_on_meetings_never_notified(
    subscribed: str, sim: SimulatorServer, redis_client: redis.Redis, event: str
) -> None:
    """Graph advises reading what changed after each of the three: notifications may have
    been lost meanwhile."""
    book = SubscriptionBook(redis_client)
    sim.state.add_event(ORGANIZER, meeting_id=f"unnotified-{event}")  # never notified

    sim.notify_lifecycle(subscribed, event)

    wait_until(
        lambda: sim.state.registration(f"unnotified-{event}") is not None,
        timeout_s=30,
        what="the catch-up",
    )
    if event == "reauthorizationRequired":
        record = book.get(subscribed)
        assert record is not None and record.renewed_at != ""
    if event == "subscriptionRemoved":
        assert book.get(subscribed) is None
        (recreated,) = sim.state.subscriptions()
        assert [record.id for record in book.all()] == [recreated["id"]]


def test_a_catch_up_that_fails_after_the_subscription_was_recreated_is_done_on_retry(
    subscribed: str, sim: SimulatorServer, redis_client: redis.Redis
) -> None:
    book = SubscriptionBook(redis_client)
    sim.state.add_event(ORGANIZER, meeting_id="caught-up-late")
    # The catch-up's read of the user's events is throttled once: the task is retried,
    # after the subscription was made again and its old record dropped.
    sim.state.script(UPN, [{"status": 429, "retry_after": "1"}])

    sim.notify_lifecycle(subscribed, "subscriptionRemoved")

    wait_until(
        lambda: sim.state.registration("caught-up-late") is not None,
        timeout_s=30,
        what="the catch-up on retry",
    )
    assert any(status == 429 for _, _, status in sim.state.requests)
    assert len(book.all()) == 1 and len(sim.state.subscriptions()) == 1  # recreated once
