"""What Graph POSTs to a subscriber, and the record of each POST the simulator made.

A change notification names the event in one of two forms Graph's documentation shows:
`Users/{objectId}/Events/{eventId}`, or `users/{objectId}@{tenantId}/events/{eventId}` as
in Microsoft's delivery samples (whose `resourceData.@odata.id` capitalises it). Both use
the objectId even when the subscription named a UPN. A lifecycle notification carries
`lifecycleEvent` instead. Both leave `clientState` out when the subscription has none.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from worker.simulator.config import ResourceForm
from worker.simulator.subscriptions import Subscription
from worker.simulator.timestamps import graph_time

LIFECYCLE_EVENTS = frozenset({"reauthorizationRequired", "subscriptionRemoved", "missed"})
DeliveryKind = Literal["validation", "change", "lifecycle", "raw"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST the simulator made to a subscriber's URL.

    `status` is None when no answer came (refused, reset, or slower than the timeout;
    `error` says which). `payload` is the JSON sent (None for a validation request).
    `attempt` counts from 1; a higher one is a redelivery of the same payload.
    """

    kind: DeliveryKind
    url: str
    status: int | None
    elapsed_s: float
    payload: dict[str, Any] | None = None
    error: str | None = None
    attempt: int = 1

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def redeliverable(self) -> bool:
        """Graph sends it again: the receiver answered 5xx, or did not answer."""
        return self.status is None or self.status >= 500

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "elapsed_s": round(self.elapsed_s, 4)}


def change_item(
    subscription: Subscription,
    tenant_id: str,
    change_type: str,
    event_id: str,
    etag: str | None,
    form: ResourceForm = "users",
) -> dict[str, Any]:
    """One item of a change notification about an event of the subscription's user, its
    resource spelled in `form` ("users" or "users@tenant")."""
    if form == "users@tenant":
        user = f"{subscription.user_id}@{tenant_id}"
        resource, odata_id = f"users/{user}/events/{event_id}", f"Users/{user}/Events/{event_id}"
    else:
        resource = odata_id = f"Users/{subscription.user_id}/Events/{event_id}"
    data: dict[str, Any] = {"@odata.type": "#Microsoft.Graph.Event", "@odata.id": odata_id}
    if etag is not None:  # a deleted event has none left to tell
        data["@odata.etag"] = etag
    data["id"] = event_id
    item: dict[str, Any] = {
        "subscriptionId": subscription.subscription_id,
        "subscriptionExpirationDateTime": graph_time(subscription.expires_at),
        "changeType": change_type,
        "resource": resource,
        "resourceData": data,
    }
    if subscription.client_state is not None:
        item["clientState"] = subscription.client_state
    item["tenantId"] = tenant_id
    return item


def lifecycle_item(subscription: Subscription, tenant_id: str, event: str) -> dict[str, Any]:
    """One lifecycle notification item; `event` is one of LIFECYCLE_EVENTS."""
    item: dict[str, Any] = {
        "subscriptionId": subscription.subscription_id,
        "subscriptionExpirationDateTime": graph_time(subscription.expires_at),
        "tenantId": tenant_id,
    }
    if subscription.client_state is not None:
        item["clientState"] = subscription.client_state
    item["lifecycleEvent"] = event
    return item
