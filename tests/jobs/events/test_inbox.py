"""The inbox of change notifications: each accepted once, a redelivery acknowledged without
a second task, and what became of each kept for a while."""

from __future__ import annotations

import redis

from jobs.events.inbox import RECEIVED, Inbox
from jobs.events.notifications import ChangeNotification
from worker import keys

NOTE = ChangeNotification("sub-1", "created", "user-1", "AAMkAD=", 'W/"1"')


def test_a_notification_is_accepted_once_and_a_redelivery_is_not(
    redis_client: redis.Redis,
) -> None:
    inbox = Inbox(redis_client, retention_s=3600)
    assert inbox.accept(NOTE)
    assert not inbox.accept(ChangeNotification("sub-1", "created", "user-1", "AAMkAD=", 'W/"1"'))
    assert inbox.record(NOTE)["state"] == RECEIVED
    assert 3500 < redis_client.ttl(keys.notification(NOTE.digest)) <= 3600


def test_a_later_change_of_the_same_event_is_a_new_notification(
    redis_client: redis.Redis,
) -> None:
    inbox = Inbox(redis_client, retention_s=3600)
    assert inbox.accept(NOTE)
    assert inbox.accept(ChangeNotification("sub-1", "updated", "user-1", "AAMkAD=", 'W/"2"'))


def test_a_forgotten_notification_is_accepted_again_when_graph_redelivers_it(
    redis_client: redis.Redis,
) -> None:
    inbox = Inbox(redis_client, retention_s=3600)
    inbox.accept(NOTE)
    inbox.forget(NOTE)
    assert inbox.record(NOTE) == {}
    assert inbox.accept(NOTE)


def test_what_became_of_a_notification_is_recorded_with_it(redis_client: redis.Redis) -> None:
    inbox = Inbox(redis_client, retention_s=3600)
    inbox.accept(NOTE)
    inbox.settle(NOTE, "registered", batch_id="evt-1", detail="a Teams meeting")
    kept = inbox.record(NOTE)
    assert kept["state"] == "registered"
    assert (kept["batch_id"], kept["detail"], kept["event_id"]) == (
        "evt-1",
        "a Teams meeting",
        "AAMkAD=",
    )
    assert kept["received_at"] and kept["settled_at"]
