"""Pausing a batch: workers leave its rows as they are until it is unpaused; cancelling
ends the rows instead. The safety valve pauses a batch by itself (worker/store/lua/finish.lua)."""

from __future__ import annotations

from worker import keys
from worker.errors import InputError
from worker.models import RowState
from worker.redis.connection import store_errors
from worker.store.batches import Batches
from worker.store.encoding import now_iso
from worker.store.rows import Rows

CANCELLED_REASON = "cancelled by the operator"


class Pausing(Batches, Rows):
    """Pauses, unpauses and cancels batches."""

    @store_errors
    def pause_batch(self, batch_id: str, reason: str) -> bool:
        """Pause the batch (workers leave its rows as they are); False if it was already."""
        self.batch_status(batch_id)
        paused = bool(self.redis.hsetnx(keys.batch(batch_id), "paused", reason))
        if paused:
            self.redis.hset(keys.batch(batch_id), "paused_at", now_iso())
        return paused

    @store_errors
    def is_paused(self, batch_id: str) -> bool:
        """Whether the batch is paused (or cancelled) now: one read."""
        return bool(self.redis.hexists(keys.batch(batch_id), "paused"))

    @store_errors
    def unpause_batch(self, batch_id: str) -> None:
        """Lift the pause and forget the failures that caused it. Raises InputError for a
        cancelled batch: its rows are being ended, not resumed."""
        if self.batch_status(batch_id).cancelled:
            raise InputError(f"batch {batch_id!r} was cancelled; enqueue its file again instead")
        self.redis.hdel(keys.batch(batch_id), "paused", "paused_at")
        self.redis.delete(keys.valve(batch_id))

    @store_errors
    def cancel_batch(self, batch_id: str) -> int:
        """End the batch: every row not final and not in a worker's hands now becomes
        `failed` (cancelled); those in a worker's hands end as they finish, or as a worker
        takes them up again. Returns how many rows were ended here."""
        status = self.batch_status(batch_id)
        batch_key = keys.batch(batch_id)
        self.redis.hset(batch_key, mapping={"cancelled": "1", "paused_at": now_iso()})
        self.redis.hset(batch_key, "paused", CANCELLED_REASON)
        ended = 0
        for row in self.iter_rows(batch_id, status.total):
            if row.status.is_final or row.status is RowState.RUNNING:
                continue
            row.status = RowState.FAILED
            row.error = CANCELLED_REASON
            ended += self.save_row(batch_id, row)
        return ended
