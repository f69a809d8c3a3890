"""Reading Graph's notification deliveries: what is acted on, what is dropped."""

from __future__ import annotations

import json

import pytest

from jobs.events.notifications import (
    ChangeNotification,
    Delivery,
    LifecycleNotification,
    read_delivery,
    tie_to_subscriptions,
)
from worker.errors import InputError

STATE = "s3cret-client-state-0123456789"
USER = "6e5d8c9a-0a4b-4c7e-9d7e-2b1f0a9c3d11"
TENANT = "84bd8158-6d4d-4958-8b9f-9d6445542f95"


def change(resource: str = f"Users/{USER}/Events/AAMkAD=", **extra: object) -> dict:
    item = {
        "subscriptionId": "sub-1",
        "changeType": "created",
        "resource": resource,
        "resourceData": {"@odata.etag": 'W/"1"', "id": "AAMkAD="},
        "clientState": STATE,
        "tenantId": "t",
    }
    item.update(extra)
    return item


def body(*items: dict) -> bytes:
    return json.dumps({"value": list(items)}).encode()


def test_a_change_with_our_client_state_names_the_user_and_event() -> None:
    delivery = read_delivery(body(change()), STATE)
    assert delivery.changes == [ChangeNotification("sub-1", "created", USER, "AAMkAD=", 'W/"1"')]
    assert delivery.wrong_state == 0


@pytest.mark.parametrize("state", ["wrong", STATE + "x", STATE[:-1], "", None, 42])
def test_items_without_our_client_state_are_dropped(state: object) -> None:
    delivery = read_delivery(body(change(clientState=state), change()), STATE)
    assert len(delivery.changes) == 1
    assert delivery.wrong_state == 1


@pytest.mark.parametrize(
    "resource",
    [
        f"Users/{USER}/Events/AAMkAD=",
        f"users/{USER}/events/AAMkAD=",
        f"Users('{USER}')/Events('AAMkAD=')",
        f"users/{USER}@{TENANT}/events/AAMkAD=",
        f"Users/{USER}@{TENANT}/Events/AAMkAD=",
        f"USERS/{USER.upper()}@{TENANT}/EVENTS/AAMkAD=",
    ],
)
def test_every_resource_form_graph_uses_is_read(resource: str) -> None:
    (note,) = read_delivery(body(change(resource)), STATE).changes
    assert (note.user_id.lower(), note.event_id) == (USER, "AAMkAD=")


def test_the_event_id_comes_from_resource_data_else_from_the_resource() -> None:
    resource = f"users/{USER}@{TENANT}/events/from-resource"
    (named,) = read_delivery(body(change(resource)), STATE).changes
    (unnamed,) = read_delivery(body(change(resource, resourceData={})), STATE).changes
    assert (named.event_id, unnamed.event_id) == ("AAMkAD=", "from-resource")


@pytest.mark.parametrize("event_id", [".", ".."])
def test_an_event_id_that_is_a_path_step_is_unreadable(event_id: str) -> None:
    item = change(f"Users/{USER}/Events/{event_id}", resourceData={"id": event_id})
    delivery = read_delivery(body(item), STATE)
    assert (delivery.changes, delivery.unreadable) == ([], 1)


SUBSCRIBED = {"sub-1": USER, "sub-upn": "ada@contoso.example", "sub-other": TENANT}


def test_items_are_tied_to_our_subscriptions_and_others_dropped_and_counted() -> None:
    asked: list[str] = []

    def organizer_of(subscription_id: str) -> str | None:
        asked.append(subscription_id)
        return SUBSCRIBED.get(subscription_id)

    lifecycle = {"lifecycleEvent": "missed", "clientState": STATE}
    delivery = read_delivery(
        body(
            change(),
            change(subscriptionId="not-ours"),
            {**lifecycle, "subscriptionId": "sub-upn"},
            {**lifecycle, "subscriptionId": "not-ours"},
            change(clientState="wrong"),
        ),
        STATE,
    )
    tied = tie_to_subscriptions(delivery, organizer_of)
    assert tied.changes == [ChangeNotification("sub-1", "created", USER, "AAMkAD=", 'W/"1"')]
    assert tied.lifecycle == [LifecycleNotification("sub-upn", "missed", "ada@contoso.example")]
    assert (tied.unknown_subscription, tied.wrong_state, tied.unreadable) == (2, 1, 0)
    assert sorted(asked) == ["not-ours", "sub-1", "sub-upn"]  # once per subscription


def test_the_organizer_is_the_subscriptions_user_not_the_texts() -> None:
    by_upn = change(f"users/{USER}@{TENANT}/events/AAMkAD=", subscriptionId="sub-upn")
    elsewhere = change(subscriptionId="sub-other")  # Graph names another user than subscribed
    tied = tie_to_subscriptions(read_delivery(body(by_upn, elsewhere), STATE), SUBSCRIBED.get)
    assert [note.user_id for note in tied.changes] == ["ada@contoso.example"]
    assert tied.unreadable == 1


def test_a_delivery_without_items_of_ours_is_empty_once_tied() -> None:
    assert tie_to_subscriptions(Delivery(wrong_state=3), SUBSCRIBED.get) == Delivery(wrong_state=3)


def test_an_item_naming_no_event_is_counted_unreadable_not_acted_on() -> None:
    delivery = read_delivery(body(change("Users/x/Messages/y"), change(subscriptionId="")), STATE)
    assert delivery.changes == []
    assert delivery.unreadable == 2


def test_lifecycle_items_are_sorted_out_at_either_url() -> None:
    item = {"subscriptionId": "sub-1", "lifecycleEvent": "missed", "clientState": STATE}
    unknown = {**item, "lifecycleEvent": "somethingNew"}
    delivery = read_delivery(body(item, unknown, change()), STATE)
    assert delivery.lifecycle == [LifecycleNotification("sub-1", "missed")]
    assert len(delivery.changes) == 1
    assert delivery.unreadable == 1


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'{"value": 3}', b"\xff\xfe", b"{}"])
def test_a_body_that_is_not_graphs_shape_is_refused(raw: bytes) -> None:
    with pytest.raises(InputError):
        read_delivery(raw, STATE)


def test_a_redelivery_has_the_same_digest_and_a_later_change_another() -> None:
    first = read_delivery(body(change()), STATE).changes[0]
    again = read_delivery(body(change()), STATE).changes[0]
    later = change(resourceData={"@odata.etag": 'W/"2"', "id": "AAMkAD="}, changeType="updated")
    assert first.digest == again.digest
    assert read_delivery(body(later), STATE).changes[0].digest != first.digest
