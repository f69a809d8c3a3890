"""worker.simulator.notifications: what Graph POSTs to a webhook, and what a delivery of it
records."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sim_helpers import ORGANIZER

from worker.simulator.notifications import Delivery, change_item, lifecycle_item
from worker.simulator.subscriptions import Subscription

TENANT = "contoso-tenant"
SUBSCRIPTION = Subscription(
    subscription_id="sub-1",
    resource=f"/users/{ORGANIZER}/events",
    user_id=ORGANIZER,
    change_type="created,updated",
    notification_url="https://hook.example/graph/notifications",
    lifecycle_url=None,
    expires_at=datetime(2026, 12, 1, tzinfo=UTC),
    client_state="secret",
    application_id="app",
    creator_id="app",
)


@pytest.mark.parametrize(
    ("status", "acknowledged", "redeliverable"),
    [(202, True, False), (400, False, False), (503, False, True), (None, False, True)],
)
def test_only_5xx_or_no_answer_is_redelivered(status, acknowledged, redeliverable):
    delivery = Delivery("change", "https://hook.example", status, 0.123456)

    assert (delivery.acknowledged, delivery.redeliverable) == (acknowledged, redeliverable)
    assert delivery.to_json()["elapsed_s"] == 0.1235


def test_a_change_item_names_the_event_in_either_resource_form():
    plain = change_item(SUBSCRIPTION, TENANT, "updated", "AAMkAD1=", 'W/"x"')
    tenanted = change_item(SUBSCRIPTION, TENANT, "updated", "AAMkAD1=", 'W/"x"', "users@tenant")

    assert plain["resource"] == f"Users/{ORGANIZER}/Events/AAMkAD1="
    assert tenanted["resource"] == f"users/{ORGANIZER}@{TENANT}/events/AAMkAD1="
    assert plain["resourceData"]["@odata.etag"] == 'W/"x"'
    assert (plain["clientState"], plain["tenantId"], plain["changeType"]) == (
        "secret",
        TENANT,
        "updated",
    )
    assert plain["subscriptionExpirationDateTime"].startswith("2026-12-01T00:00:00")


def test_a_deleted_events_item_has_no_etag():
    item = change_item(SUBSCRIPTION, TENANT, "deleted", "AAMkAD1=", None)

    assert "@odata.etag" not in item["resourceData"]


def test_a_lifecycle_item_names_its_event_and_subscription():
    item = lifecycle_item(SUBSCRIPTION, TENANT, "reauthorizationRequired")

    assert item["lifecycleEvent"] == "reauthorizationRequired"
    assert (item["subscriptionId"], item["clientState"]) == ("sub-1", "secret")
