"""Reading Graph's notification deliveries: what is acted on, what is dropped."""

from __future__ import annotations

import json

import pytest

from jobs.notifications import ChangeNotification, LifecycleNotification, read_delivery
from worker.errors import InputError

STATE = "s3cret-client-state-0123456789"
USER = "6e5d8c9a-0a4b-4c7e-9d7e-2b1f0a9c3d11"


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
    ],
)
def test_both_resource_forms_graph_uses_are_read(resource: str) -> None:
    (note,) = read_delivery(body(change(resource)), STATE).changes
    assert (note.user_id, note.event_id) == (USER, "AAMkAD=")


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
