"""What meetreg does when Graph reports on a subscription itself (lifecycle notifications).

Each of the three means notifications may have been lost, and Graph advises reading what
changed meanwhile; so each ends in a catch-up: the user's events changed in the last
`CATCH_UP_WINDOW`, as if each had been notified. Their batch ids make this safe to repeat.
Before it:

- `reauthorizationRequired`: renew the subscription now (Graph would otherwise stop
  delivering); one Graph no longer has is created again.
- `subscriptionRemoved`: Graph dropped it; subscribe the same user to the same URLs again.
- `missed`: nothing more.

The subscription is mended first and the catch-up comes after, so that nothing changed in
between goes unseen. A task retried after the mending (the catch-up failed) finds no
record of a recreated subscription: the notification's own `user_id`, tied to it when it
arrived, still names whose events to read.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from jobs.enqueue import PublishMany
from jobs.events.calendar_events import EventOutcome, EventVerdict, catch_up
from jobs.events.notifications import LifecycleNotification
from jobs.events.subscriptions import SubscriptionBook, recreate, renew
from worker.graph.calendar import CalendarApi
from worker.store.outcome_store import OutcomeStore

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
    if record is None and not note.user_id:
        return f"subscription {note.subscription_id} is not one of ours: ignored"
    done = []
    if record is None:
        done.append(f"{note.subscription_id} already mended")
    elif note.event == "reauthorizationRequired":
        renewed = renew(calendar, book, record.id, client_state=client_state, now=now)
        done.append(f"renewed {record.id} until {renewed.expires_at if renewed else '?'}")
    elif note.event == "subscriptionRemoved":
        again = recreate(calendar, book, record.id, client_state=client_state, now=now)
        done.append(f"recreated {record.id} as {again.id if again else '?'}")
    user_id = record.user_id if record is not None else note.user_id
    outcomes: list[EventOutcome] = catch_up(
        user_id, now - CATCH_UP_WINDOW, calendar=calendar, store=store, publish=publish
    )
    enqueued = sum(outcome.verdict is EventVerdict.ENQUEUED for outcome in outcomes)
    done.append(f"caught up {user_id}: {len(outcomes)} events, {enqueued} meetings enqueued")
    return "; ".join(done)
