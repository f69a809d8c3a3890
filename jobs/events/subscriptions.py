"""The Graph subscriptions meetreg keeps: one per user's calendar, recorded in Redis.

Graph ends an Outlook event subscription after at most seven days, so meetreg records each
one it creates (`meetreg:subscriptions`) and renews it before it lapses: the nightly job
renews every subscription that would lapse within `RENEW_WITHIN`, and a
`reauthorizationRequired` lifecycle notification renews one at once. A subscription Graph
removed (`subscriptionRemoved`, or 404 on renewal) is created again with the same user and
URLs. The client state is not recorded: it is a secret, and lives in the settings only.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import redis

from worker import keys
from worker.errors import GraphError, GraphPermanent
from worker.graph.calendar import CalendarApi, Subscription, iso, parse_iso
from worker.redis.connection import store_errors

log = logging.getLogger(__name__)

# Longer than a day, so that one missed nightly run still leaves a day to renew in; well
# under the shortest lifetime Graph grants (4,230 minutes in older documentation).
RENEW_WITHIN = timedelta(hours=48)
# A record past its expiry this long is dropped: nothing will renew or recreate it.
FORGET_AFTER = timedelta(days=7)


@dataclass(slots=True)
class SubscriptionRecord:
    """What meetreg remembers of one subscription."""

    id: str
    user_id: str
    notification_url: str
    lifecycle_url: str | None
    expires_at: str  # ISO 8601, UTC
    created_at: str
    renewed_at: str = ""

    @property
    def expiry(self) -> datetime:
        return parse_iso(self.expires_at)


@dataclass(slots=True)
class RenewalSummary:
    """What one renewal pass did, by subscription id (failed: id -> reason)."""

    renewed: list[str] = field(default_factory=list)
    recreated: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


class SubscriptionBook:
    """The subscription records in Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    @store_errors
    def save(self, record: SubscriptionRecord) -> None:
        self.redis.hset(keys.SUBSCRIPTIONS, record.id, json.dumps(asdict(record)))

    @store_errors
    def remove(self, subscription_id: str) -> None:
        self.redis.hdel(keys.SUBSCRIPTIONS, subscription_id)

    @store_errors
    def get(self, subscription_id: str) -> SubscriptionRecord | None:
        raw = self.redis.hget(keys.SUBSCRIPTIONS, subscription_id)
        return None if raw is None else SubscriptionRecord(**json.loads(raw))

    def organizer_of(self, subscription_id: str) -> str | None:
        """The user whose calendar the subscription watches; None when it is not ours."""
        record = self.get(subscription_id)
        return None if record is None else record.user_id

    @store_errors
    def all(self) -> list[SubscriptionRecord]:
        """Every record, soonest to lapse first."""
        records = [
            SubscriptionRecord(**json.loads(raw)) for raw in self.redis.hvals(keys.SUBSCRIPTIONS)
        ]
        return sorted(records, key=lambda record: record.expires_at)


def subscribe(
    api: CalendarApi,
    book: SubscriptionBook,
    user_id: str,
    *,
    notification_url: str,
    lifecycle_url: str | None,
    client_state: str,
    now: datetime,
) -> SubscriptionRecord:
    """Subscribe to the user's calendar, or renew the subscription that already does so
    to the same URL: two would deliver every notification twice. Raises GraphError."""
    for record in book.all():
        if record.user_id == user_id and record.notification_url == notification_url:
            try:
                return _renew(api, book, record, now)
            except GraphPermanent as exc:
                if exc.status != 404:
                    raise
                book.remove(record.id)  # Graph forgot it: subscribe anew below
    created = api.create_subscription(
        user_id,
        notification_url=notification_url,
        lifecycle_url=lifecycle_url,
        client_state=client_state,
        now=now,
    )
    record = SubscriptionRecord(
        id=created.id,
        user_id=user_id,
        notification_url=notification_url,
        lifecycle_url=lifecycle_url,
        expires_at=iso(created.expires_at),
        created_at=iso(now),
    )
    book.save(record)
    return record


def renew(
    api: CalendarApi,
    book: SubscriptionBook,
    subscription_id: str,
    *,
    client_state: str,
    now: datetime,
) -> SubscriptionRecord | None:
    """Renew one subscription; if Graph no longer has it, create it again. None when meetreg
    has no record of it (not ours). Raises GraphError."""
    record = book.get(subscription_id)
    if record is None:
        return None
    try:
        return _renew(api, book, record, now)
    except GraphPermanent as exc:
        if exc.status != 404:
            raise
    return recreate(api, book, subscription_id, client_state=client_state, now=now)


def recreate(
    api: CalendarApi,
    book: SubscriptionBook,
    subscription_id: str,
    *,
    client_state: str,
    now: datetime,
) -> SubscriptionRecord | None:
    """Graph removed the subscription: subscribe the same user to the same URLs again."""
    record = book.get(subscription_id)
    if record is None:
        return None
    api.delete_subscription(subscription_id)  # if only half-removed, nothing is delivered twice
    book.remove(subscription_id)
    return subscribe(
        api,
        book,
        record.user_id,
        notification_url=record.notification_url,
        lifecycle_url=record.lifecycle_url,
        client_state=client_state,
        now=now,
    )


def renew_due(
    api: CalendarApi,
    book: SubscriptionBook,
    *,
    client_state: str,
    now: datetime,
    within: timedelta = RENEW_WITHIN,
) -> RenewalSummary:
    """Renew every subscription that lapses within `within` (recreating lapsed ones); one
    failure does not stop the others. Raises StoreError only."""
    summary = RenewalSummary()
    for record in book.all():
        if record.expiry > now + within:
            continue
        if record.expiry < now - FORGET_AFTER:
            book.remove(record.id)
            continue
        try:
            if record.expiry <= now:
                done = recreate(api, book, record.id, client_state=client_state, now=now)
                summary.recreated.append(done.id if done else record.id)
            else:
                done = renew(api, book, record.id, client_state=client_state, now=now)
                if done is not None and done.id != record.id:
                    summary.recreated.append(done.id)
                else:
                    summary.renewed.append(record.id)
        except GraphError as exc:
            summary.failed[record.id] = exc.describe()
            log.warning("could not renew subscription %s: %s", record.id, exc.describe())
    return summary


def _renew(
    api: CalendarApi, book: SubscriptionBook, record: SubscriptionRecord, now: datetime
) -> SubscriptionRecord:
    renewed: Subscription = api.renew_subscription(record.id, now=now)
    record.expires_at = iso(renewed.expires_at)
    record.renewed_at = iso(now)
    book.save(record)
    return record


def utc_now() -> datetime:
    return datetime.now(UTC)
