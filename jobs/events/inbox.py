"""Change notifications accepted by `meetreg serve`, kept in Redis until done with.

The webhook answers Graph `202` only after a notification is recorded here and its task is
on the queue, so nothing accepted is lost; the record says what became of it. A redelivered
notification (Graph retries for hours when it is not sure we got it) finds its record and
is acknowledged without a second task.
"""

from __future__ import annotations

from typing import Any, cast

import redis

from jobs.events.notifications import ChangeNotification
from worker import keys
from worker.redis.connection import store_errors
from worker.store.encoding import as_text, now_iso

RECEIVED = "received"


class Inbox:
    """One hash per accepted notification, kept `retention_s`."""

    def __init__(self, client: redis.Redis, retention_s: int) -> None:
        self.redis = client
        self.retention_s = retention_s

    @store_errors
    def accept(self, note: ChangeNotification) -> bool:
        """Record a new notification; False if it was recorded before (a redelivery)."""
        key = keys.notification(note.digest)
        if not self.redis.hsetnx(key, "received_at", now_iso()):
            return False
        fields: dict[str, Any] = {**note.to_json_dict(), "state": RECEIVED}
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(key, mapping=cast(Any, fields))
        pipe.expire(key, self.retention_s)
        pipe.execute()
        return True

    @store_errors
    def forget(self, note: ChangeNotification) -> None:
        """Its task could not be queued: let Graph's redelivery be accepted afresh."""
        self.redis.delete(keys.notification(note.digest))

    @store_errors
    def settle(
        self, note: ChangeNotification, state: str, *, batch_id: str = "", detail: str = ""
    ) -> None:
        """What became of it: an EventVerdict, or `failed` with the reason."""
        fields = {"state": state, "batch_id": batch_id, "detail": detail, "settled_at": now_iso()}
        self.redis.hset(keys.notification(note.digest), mapping=cast(Any, fields))

    @store_errors
    def record(self, note: ChangeNotification) -> dict[str, str]:
        raw = self.redis.hgetall(keys.notification(note.digest))
        return {as_text(k): as_text(v) for k, v in raw.items()}
