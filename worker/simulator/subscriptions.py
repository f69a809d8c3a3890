"""Graph change-notification subscriptions to users' calendar events, and Graph's rules
for making and renewing them.

`draft()` checks a `POST /subscriptions` body as Graph does (resource, changeType,
clientState, expiry, URLs) and returns a subscription not yet kept: Graph first
validates the URLs (the handshake, done by `webhooks`), and keeps it only if that works.
An expired subscription is gone, as it is from Graph: not listed, not renewable, not
notified.

Plain data, no locking (the `SimulatorState` holds the lock) and no HTTP.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

from worker.simulator.directory import Directory
from worker.simulator.errors import GraphFailure
from worker.simulator.timestamps import graph_time, parse_time

CHANGE_TYPES = frozenset({"created", "updated", "deleted"})
MAX_CLIENT_STATE_CHARS = 128
_EVENTS_RESOURCE = re.compile(r"^/?users/([^/]+)/events$", re.IGNORECASE)
_LOOPBACK_NAMES = frozenset({"localhost"})
_NOT_FOUND = "The object was not found."


@dataclass(frozen=True, slots=True)
class Subscription:
    """One subscription; `user_id` is the objectId its resource named (by id or UPN)."""

    subscription_id: str
    resource: str
    user_id: str
    change_type: str
    notification_url: str
    lifecycle_url: str | None
    expires_at: datetime
    client_state: str | None
    application_id: str
    creator_id: str

    def covers(self, change_type: str) -> bool:
        return change_type in self.change_type.split(",")

    def to_graph(self) -> dict[str, Any]:
        return {
            "id": self.subscription_id,
            "resource": self.resource,
            "applicationId": self.application_id,
            "changeType": self.change_type,
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": graph_time(self.expires_at),
            "creatorId": self.creator_id,
            "includeResourceData": False,
            "latestSupportedTlsVersion": "v1_2",
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
        }


def draft(
    body: Mapping[str, Any],
    directory: Directory,
    *,
    now: datetime,
    max_minutes: int,
    application_id: str,
) -> Subscription:
    """The subscription a `POST /subscriptions` body asks for, not yet kept.

    Raises GraphFailure 400 `InvalidRequest` for a bad changeType, URL, resource,
    clientState or expiry, and 404 when the resource names an unknown user.
    """
    change_type = _change_type(body.get("changeType"))
    notification_url = _webhook_url(body.get("notificationUrl"), "notificationUrl")
    lifecycle = body.get("lifecycleNotificationUrl")
    lifecycle_url = (
        None if lifecycle is None else _webhook_url(lifecycle, "lifecycleNotificationUrl")
    )
    resource = body.get("resource")
    resource = resource if isinstance(resource, str) else ""
    found = _EVENTS_RESOURCE.match(resource)
    if found is None:
        raise _invalid(
            f"Resource {resource!r} is not supported; this simulator serves users/{{id}}/events."
        )
    client_state = body.get("clientState")
    if client_state is not None and (
        not isinstance(client_state, str) or len(client_state) > MAX_CLIENT_STATE_CHARS
    ):
        raise _invalid(f"clientState must be a string of at most {MAX_CLIENT_STATE_CHARS} chars.")
    expires_at = expiry(body.get("expirationDateTime"), now=now, max_minutes=max_minutes)
    try:
        user = directory.find_user(unquote(found.group(1)))
    except GraphFailure:
        raise GraphFailure(
            404, "ResourceNotFound", f"Resource '{resource}' does not exist."
        ) from None
    return Subscription(
        subscription_id=str(uuid.uuid4()),
        resource=resource,
        user_id=user.object_id,
        change_type=change_type,
        notification_url=notification_url,
        lifecycle_url=lifecycle_url,
        expires_at=expires_at,
        client_state=client_state,
        application_id=application_id,
        # The app's service principal: the same for every subscription the app makes.
        creator_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"serviceprincipal:{application_id}")),
    )


def expiry(value: object, *, now: datetime, max_minutes: int) -> datetime:
    """An `expirationDateTime` Graph accepts: in the future, at most `max_minutes` ahead.

    Raises GraphFailure 400 `InvalidRequest` naming the value otherwise."""
    if not isinstance(value, str):
        raise _invalid("expirationDateTime is required.")
    try:
        moment = parse_time(value)
    except ValueError:
        raise _invalid(f"expirationDateTime '{value}' is not a valid date and time.") from None
    if moment <= now:
        raise _invalid(
            f"Subscription expiration must be in the future; expirationDateTime '{value}' is not."
        )
    if moment > now + timedelta(minutes=max_minutes):
        raise _invalid(
            f"Subscription expiration can only be {max_minutes} minutes in the future; "
            f"expirationDateTime '{value}' is later."
        )
    return moment


def renewal(body: Mapping[str, Any], *, now: datetime, max_minutes: int) -> datetime:
    """The new expiry a `PATCH /subscriptions/{id}` body asks for, judged as at creation.

    Graph also lets a PATCH change notificationUrl (validating it again); the simulator
    does not, and says so. Raises GraphFailure 400 `InvalidRequest`."""
    others = sorted(k for k in body if k != "expirationDateTime" and not k.startswith("@odata."))
    if others:
        raise _invalid(f"The simulator renews expirationDateTime only; cannot change {others}.")
    return expiry(body.get("expirationDateTime"), now=now, max_minutes=max_minutes)


class Subscriptions:
    """The subscriptions Graph keeps for the app, by id."""

    def __init__(self) -> None:
        self.by_id: dict[str, Subscription] = {}

    def live(self, now: datetime) -> list[Subscription]:
        """Those not expired at `now`, oldest first (expired ones are dropped)."""
        self.by_id = {k: s for k, s in self.by_id.items() if s.expires_at > now}
        return list(self.by_id.values())

    def add(self, subscription: Subscription) -> None:
        self.by_id[subscription.subscription_id] = subscription

    def get(self, subscription_id: str, now: datetime) -> Subscription:
        """Raises GraphFailure 404 `ResourceNotFound` for an unknown or expired one."""
        subscription = self.by_id.get(subscription_id)
        if subscription is None or subscription.expires_at <= now:
            raise GraphFailure(404, "ResourceNotFound", _NOT_FOUND)
        return subscription

    def renew(self, subscription_id: str, expires_at: datetime, now: datetime) -> Subscription:
        """Raises GraphFailure 404 `ResourceNotFound` for an unknown or expired one."""
        renewed = replace(self.get(subscription_id, now), expires_at=expires_at)
        self.by_id[subscription_id] = renewed
        return renewed

    def remove(self, subscription_id: str) -> Subscription | None:
        return self.by_id.pop(subscription_id, None)

    def for_change(self, user_id: str, change_type: str, now: datetime) -> list[Subscription]:
        """The live subscriptions to `user_id`'s events (objectId) that cover `change_type`."""
        return [s for s in self.live(now) if s.user_id == user_id and s.covers(change_type)]


def _change_type(value: object) -> str:
    parts = [p.strip() for p in value.split(",")] if isinstance(value, str) else []
    if not parts or any(p not in CHANGE_TYPES for p in parts) or len(set(parts)) != len(parts):
        raise _invalid(
            f"changeType {value!r} is invalid: a comma-separated list of created, updated, deleted."
        )
    return ",".join(parts)


def _webhook_url(value: object, name: str) -> str:
    """An https URL; http only on loopback, where tests run their receivers."""
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or not parts.hostname or parts.scheme not in ("https", "http"):
        raise _invalid(f"{name} {value!r} is not an absolute URL.")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise _invalid(f"{name} must use https: {value!r}.")
    return str(value)


def _loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _invalid(message: str) -> GraphFailure:
    return GraphFailure(400, "InvalidRequest", message)
