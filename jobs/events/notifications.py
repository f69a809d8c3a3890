"""Graph change and lifecycle notifications: read, checked, and turned into plain records.

Graph POSTs `{"value": [...]}` to the webhook. Each item carries the `clientState` given
when the subscription was made; an item whose state does not match (compared in constant
time) is dropped, whoever sent it. Change items name the event in more than one form:
`Users/{userId}/Events/{eventId}`, `users/{userId}@{tenantId}/events/{eventId}` (Microsoft's
delivery samples) and `Users('{userId}')/Events('{eventId}')`, in either case; the event id
is also in `resourceData.id`, which wins. Lifecycle items carry `lifecycleEvent` instead,
and may arrive at either URL.

Every item names its subscription (`subscriptionId`); `tie_to_subscriptions` keeps only
those of subscriptions meetreg made, and takes the organizer from the subscription, not
from the text: the text is Graph's spelling of a user, the subscription is what meetreg
asked for.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from jobs.http.json_body import load_json
from worker.errors import InputError
from worker.validation import is_guid, is_path_step

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
    """Graph says something happened to a subscription itself. `user_id` is the user whose
    calendar the subscription watched, from meetreg's record of it ("" until tied)."""

    subscription_id: str
    event: str  # one of LIFECYCLE_EVENTS
    user_id: str = ""

    def to_json_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(slots=True)
class Delivery:
    """One POST from Graph, sorted: what to act on, and how much was dropped."""

    changes: list[ChangeNotification] = field(default_factory=list)
    lifecycle: list[LifecycleNotification] = field(default_factory=list)
    wrong_state: int = 0  # items whose clientState did not match: dropped
    unreadable: int = 0  # items with our clientState that name nothing we can act on
    unknown_subscription: int = 0  # items of subscriptions meetreg did not make: dropped


def tie_to_subscriptions(delivery: Delivery, organizer_of: Callable[[str], str | None]) -> Delivery:
    """The delivery's items of subscriptions meetreg made, each naming as its user the one
    `organizer_of(subscription_id)` gives (None: not ours, dropped and counted).

    A change whose text names another user than its subscription's (both objectIds) is
    counted unreadable: Graph only tells a subscription of its own calendar. Calls
    `organizer_of` once per subscription; raises what it raises."""
    known: dict[str, str | None] = {}

    def organizer(subscription_id: str) -> str | None:
        if subscription_id not in known:
            known[subscription_id] = organizer_of(subscription_id)
        return known[subscription_id]

    tied = Delivery(wrong_state=delivery.wrong_state, unreadable=delivery.unreadable)
    for change in delivery.changes:
        user_id = organizer(change.subscription_id)
        if user_id is None:
            tied.unknown_subscription += 1
        elif _other_users(user_id, change.user_id):
            tied.unreadable += 1
        else:
            tied.changes.append(replace(change, user_id=user_id))
    for note in delivery.lifecycle:
        user_id = organizer(note.subscription_id)
        if user_id is None:
            tied.unknown_subscription += 1
        else:
            tied.lifecycle.append(replace(note, user_id=user_id))
    return tied


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
    if is_path_step(event_id):  # never an event: a path step, once in a URL
        return None
    return ChangeNotification(
        subscription_id=subscription_id,
        change_type=change_type,
        user_id=_user_in_text(match.group("user")),
        event_id=event_id,
        etag=_text(data.get("@odata.etag")),
    )


def _other_users(subscribed: str, named: str) -> bool:
    """Whether two spellings surely name two users (a UPN cannot be told from here)."""
    return is_guid(subscribed) and is_guid(named) and subscribed.lower() != named.lower()


def _user_in_text(spelled: str) -> str:
    """The user a resource names: `{objectId}@{tenantId}` is the objectId in its tenant."""
    local, at, _tenant = spelled.partition("@")
    return local if at and is_guid(local) else spelled


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
