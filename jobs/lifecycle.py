"""What meetreg does when Graph reports on a subscription itself (lifecycle notifications).

- `reauthorizationRequired`: renew it now (Graph would otherwise stop delivering).
- `subscriptionRemoved`: Graph dropped it; subscribe the same user to the same URLs again.
- `missed`: some notifications were lost; go through the user's events changed in the last
  `CATCH_UP_WINDOW` as if each had been notified. Their batch ids make this safe to repeat.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from jobs.enqueue import PublishMany
from jobs.events import EventOutcome, EventVerdict, catch_up
from jobs.notifications import LifecycleNotification
from jobs.subscriptions import SubscriptionBook, recreate, renew
from worker.graph.calendar import CalendarApi
from worker.store import OutcomeStore

CATCH_UP_WINDOW = timedelta(hours=24)


def handle_lifecycle(
    note: LifecycleNotification,
    *,
    calendar: CalendarApi,
    book: SubscriptionBook,
    store: OutcomeStore,
    publish: PublishMany,
    client_state: str,
    now: datetime,
) -> str:
    """Act on one lifecycle notification; returns one line saying what was done.
    Raises GraphError and StoreError."""
    record = book.get(note.subscription_id)
    if record is None:
        return f"subscription {note.subscription_id} is not one of ours: ignored"
    if note.event == "reauthorizationRequired":
        renewed = renew(calendar, book, record.id, client_state=client_state, now=now)
        return f"renewed {record.id} until {renewed.expires_at if renewed else '?'}"
    if note.event == "subscriptionRemoved":
        again = recreate(calendar, book, record.id, client_state=client_state, now=now)
        return f"recreated {record.id} as {again.id if again else '?'}"
    outcomes: list[EventOutcome] = catch_up(
        record.user_id, now - CATCH_UP_WINDOW, calendar=calendar, store=store, publish=publish
    )
    enqueued = sum(outcome.verdict is EventVerdict.ENQUEUED for outcome in outcomes)
    return f"caught up {record.user_id}: {len(outcomes)} events, {enqueued} meetings enqueued"
