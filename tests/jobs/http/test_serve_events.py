"""Graph-shaped notifications into a running `meetreg serve`, a real worker, the simulator:
subscribing, Teams meetings registered (others not), redelivery, lifecycle events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import redis
from cli_helpers import meetreg, wait_until
from pipeline_helpers import ORGANIZER, UPN, posts
from serve_helpers import CLIENT_STATE, Served

from jobs.events.subscriptions import SubscriptionBook
from worker import keys
from worker.graph.calendar import parse_iso
from worker.simulator import SimulatorServer


@pytest.fixture
def subscribed(
    served: Served,
    worker: None,
    sim: SimulatorServer,
    serve_env: dict[str, str],
    redis_client: redis.Redis,
) -> str:
    """The organizer's calendar subscribed through `meetreg subscribe`; its id."""
    done = meetreg(
        "subscribe",
        "--user",
        UPN,
        "--notification-url",
        f"{served.url}/graph/notifications",
        "--lifecycle-url",
        f"{served.url}/graph/lifecycle",
        env=serve_env,
    )
    assert done.returncode == 0, done.stderr
    (subscription,) = sim.state.subscriptions()
    return str(subscription["id"])


def notes(client: redis.Redis) -> list[dict[str, str]]:
    found = []
    for key in client.scan_iter(keys.notification("*")):
        found.append({k.decode(): v.decode() for k, v in client.hgetall(key).items()})
    return found


def settled(client: redis.Redis, count: int) -> bool:
    records = notes(client)
    return len(records) == count and all(note["state"] != "received" for note in records)


def test_subscribe_makes_one_validated_subscription_and_renews_it_when_asked_again(
    subscribed: str, served: Served, sim: SimulatorServer, serve_env: dict[str, str]
) -> None:
    (subscription,) = sim.state.subscriptions()
    assert subscription["clientState"] == CLIENT_STATE
    assert subscription["resource"] in (
        f"users/{UPN.replace('@', '%40')}/events",
        f"users/{UPN}/events",
    )
    handshakes = [d for d in sim.state.deliveries() if d.kind == "validation"]
    assert {d.url.split("?")[0] for d in handshakes} == {
        f"{served.url}/graph/notifications",
        f"{served.url}/graph/lifecycle",
    }
    assert all(d.status == 200 for d in handshakes)

    listed = json.loads(meetreg("subscriptions", "--json", env=serve_env).stdout)
    assert [record["id"] for record in listed] == [subscribed]
    expiry = parse_iso(listed[0]["expires_at"])
    assert timedelta(days=6) < expiry - datetime.now(UTC) <= timedelta(days=7)

    again = meetreg(
        "subscribe",
        "--user",
        UPN,
        "--notification-url",
        f"{served.url}/graph/notifications",
        env=serve_env,
    )
    assert again.returncode == 0, again.stderr
    assert [s["id"] for s in sim.state.subscriptions()] == [subscribed]
    assert subscribed in again.stdout


def test_subscribe_to_a_url_that_fails_graphs_handshake_exits_1_naming_the_user(
    served: Served, sim: SimulatorServer, serve_env: dict[str, str]
) -> None:
    result = meetreg(
        "subscribe",
        "--user",
        ORGANIZER,
        "--notification-url",
        f"{served.url}/healthz",
        env=serve_env,
    )
    assert result.returncode == 1
    assert ORGANIZER in result.stderr
    assert "validation" in result.stderr.lower()
    assert "Traceback" not in result.stderr
    assert sim.state.subscriptions() == []


def test_a_new_teams_meeting_is_registered_and_other_events_are_not(
    subscribed: str, sim: SimulatorServer, redis_client: redis.Redis
) -> None:
    teams = sim.state.add_event(ORGANIZER, meeting_id="event-meeting")
    not_online = sim.state.add_event(ORGANIZER, teams=False)
    as_attendee = sim.state.add_event(ORGANIZER, organizer=False, meeting_id="someone-elses")
    deliveries = [
        sim.notify_event(ORGANIZER, event["id"]) for event in (teams, not_online, as_attendee)
    ]
    for (delivery,) in deliveries:
        assert delivery.status == 202
        assert delivery.elapsed_s < 3

    wait_until(lambda: settled(redis_client, 3), timeout_s=30, what="three notifications handled")
    wait_until(
        lambda: sim.state.registration("event-meeting") is not None,
        timeout_s=30,
        what="registration",
    )
    states = sorted(note["state"] for note in notes(redis_client))
    assert states == ["enqueued", "not_organizer", "not_teams"]
    assert sim.state.registration("someone-elses") is None
    assert posts(sim) == 1


@pytest.mark.parametrize("form", ["users", "users@tenant"])
def test_each_resource_form_graph_sends_registers_the_meeting_of_the_subscriptions_user(
    subscribed: str, sim: SimulatorServer, redis_client: redis.Redis, form: str
) -> None:
    sim.state.set_resource_form(form)
    event = sim.state.add_event(ORGANIZER, meeting_id=f"meeting-{form}")
    (delivery,) = sim.notify_event(ORGANIZER, event["id"])
    assert delivery.status == 202
    assert delivery.payload is not None
    resource = delivery.payload["value"][0]["resource"]
    assert (f"@{sim.tenant_id}/" in resource) is (form == "users@tenant")

    wait_until(lambda: settled(redis_client, 1), timeout_s=30, what="the notification handled")
    (note,) = notes(redis_client)
    assert (note["state"], note["user_id"]) == ("enqueued", UPN)  # as subscribed, by UPN
    wait_until(
        lambda: sim.state.registration(f"meeting-{form}") is not None,
        timeout_s=30,
        what="registration",
    )
    assert posts(sim) == 1


def test_a_redelivered_notification_registers_nothing_twice(
    subscribed: str, served: Served, sim: SimulatorServer, redis_client: redis.Redis
) -> None:
    event = sim.state.add_event(ORGANIZER, meeting_id="redelivered")
    (first,) = sim.notify_event(ORGANIZER, event["id"])
    wait_until(
        lambda: sim.state.registration("redelivered") is not None, timeout_s=30, what="registration"
    )
    assert first.payload is not None
    again = sim.deliver(f"{served.url}/graph/notifications", first.payload)
    assert again.status == 202
    (later,) = sim.notify_event(ORGANIZER, event["id"], "updated")  # a change: new etag
    assert later.status == 202

    wait_until(lambda: settled(redis_client, 2), timeout_s=30, what="both notifications handled")
    assert sorted(note["state"] for note in notes(redis_client)) == ["already_enqueued", "enqueued"]
    assert posts(sim) == 1
    assert redis_client.zcard(keys.BATCHES) == 1


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


def test_the_nightly_job_renews_a_subscription_about_to_lapse_and_leaves_the_others(
    subscribed: str,
    sim: SimulatorServer,
    serve_env: dict[str, str],
    redis_client: redis.Redis,
    tmp_path,
) -> None:
    book = SubscriptionBook(redis_client)
    record = book.get(subscribed)
    assert record is not None
    soon = datetime.now(UTC) + timedelta(hours=3)
    record.expires_at = soon.strftime("%Y-%m-%dT%H:%M:%SZ")  # as if made six days ago
    book.save(record)

    env = {**serve_env, "MEETREG_DROP_DIR": str(tmp_path)}
    first = meetreg("nightly", "--once", "--json", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert json.loads(first.stdout)["subscriptions"]["renewed"] == [subscribed]
    renewed = book.get(subscribed)
    assert renewed is not None and renewed.expiry - datetime.now(UTC) > timedelta(days=6)
    (at_graph,) = sim.state.subscriptions()
    assert parse_iso(at_graph["expirationDateTime"]) == renewed.expiry

    second = meetreg("nightly", "--once", "--json", env=env)
    assert json.loads(second.stdout)["subscriptions"]["renewed"] == []  # not due again
