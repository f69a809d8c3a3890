"""Graph change and lifecycle notifications: read, checked, and turned into plain records.

Graph POSTs `{"value": [...]}` to the webhook. Each item carries the `clientState` given
when the subscription was made; an item whose state does not match (compared in constant
time) is dropped, whoever sent it. Change items name the event as
`Users/{userId}/Events/{eventId}` (Graph capitalises them; the `Users('id')/Events('id')`
form is read too), with the event id also in `resourceData.id`. Lifecycle items carry
`lifecycleEvent` instead, and may arrive at either URL.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from jobs.json_body import load_json
from worker.errors import InputError

LIFECYCLE_EVENTS = frozenset({"reauthorizationRequired", "subscriptionRemoved", "missed"})
_RESOURCE = re.compile(
    r"^/?users(?:/|\(')(?P<user>[^/']+)(?:'\))?/events(?:/|\(')(?P<event>[^/']+)(?:'\))?$",
    re.IGNORECASE,
)
_MAX_ID = 512


@dataclass(frozen=True, slots=True)
class ChangeNotification:
    """An event in a subscribed calendar was created or changed."""

    subscription_id: str
    change_type: str
    user_id: str
    event_id: str
    etag: str = ""

    @property
    def digest(self) -> str:
        """Equal for a redelivery of the same notification, different for a later change."""
        text = "\x00".join(
            (self.subscription_id, self.change_type, self.user_id, self.event_id, self.etag)
        )
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def to_json_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class LifecycleNotification:
    """Graph says something happened to a subscription itself."""

    subscription_id: str
    event: str  # one of LIFECYCLE_EVENTS

    def to_json_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(slots=True)
class Delivery:
    """One POST from Graph, sorted: what to act on, and how much was dropped."""

    changes: list[ChangeNotification] = field(default_factory=list)
    lifecycle: list[LifecycleNotification] = field(default_factory=list)
    wrong_state: int = 0  # items whose clientState did not match: dropped
    unreadable: int = 0  # items with our clientState that name nothing we can act on


def read_delivery(body: bytes, client_state: str) -> Delivery:
    """Sort one delivery's items. Raises InputError when the body is not Graph's shape at
    all (not JSON, no `value` list): a forgery or a stray request, answered 400."""
    payload = load_json(body)
    items = payload.get("value") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        raise InputError('the body has no "value" list')
    expected = client_state.encode()
    delivery = Delivery()
    for item in items:
        state = item.get("clientState") if isinstance(item, dict) else None
        if not isinstance(state, str) or not hmac.compare_digest(state.encode(), expected):
            delivery.wrong_state += 1
            continue
        assert isinstance(item, dict)
        read = _lifecycle(item) if "lifecycleEvent" in item else _change(item)
        if isinstance(read, LifecycleNotification):
            delivery.lifecycle.append(read)
        elif isinstance(read, ChangeNotification):
            delivery.changes.append(read)
        else:
            delivery.unreadable += 1
    return delivery


def _change(item: dict[str, Any]) -> ChangeNotification | None:
    subscription_id = _text(item.get("subscriptionId"))
    change_type = _text(item.get("changeType"))
    match = _RESOURCE.match(_text(item.get("resource")))
    data = item.get("resourceData")
    data = data if isinstance(data, dict) else {}
    event_id = _text(data.get("id")) or (match.group("event") if match else "")
    if not (subscription_id and change_type and match and event_id):
        return None
    return ChangeNotification(
        subscription_id=subscription_id,
        change_type=change_type,
        user_id=match.group("user"),
        event_id=event_id,
        etag=_text(data.get("@odata.etag")),
    )


def _lifecycle(item: dict[str, Any]) -> LifecycleNotification | None:
    subscription_id = _text(item.get("subscriptionId"))
    event = _text(item.get("lifecycleEvent"))
    if not subscription_id or event not in LIFECYCLE_EVENTS:
        return None
    return LifecycleNotification(subscription_id=subscription_id, event=event)


def _text(value: object) -> str:
    """A short printable string from the payload, or "" for anything else."""
    if not isinstance(value, str) or len(value) > _MAX_ID or not value.isprintable():
        return ""
    return value.strip()
