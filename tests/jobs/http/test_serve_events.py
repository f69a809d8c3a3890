"""Graph-shaped notifications into a running `meetreg serve`, a real worker, the simulator:
Teams meetings registered (others not), each resource form, redelivery."""

from __future__ import annotations

import pytest
import redis
from cli_helpers import wait_until
from pipeline_helpers import ORGANIZER, UPN, posts
from serve_helpers import Served

from worker import keys
from worker.simulator import SimulatorServer


def notes(client: redis.Redis) -> list[dict[str, str]]:
    found = []
    for key in client.scan_iter(keys.notification("*")):
        found.append({k.decode(): v.decode() for k, v in client.hgetall(key).items()})
    return found


def settled(client: redis.Redis, count: int) -> bool:
    records = notes(client)
    return len(records) == count and all(note["state"] != "received" for note in records)


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
