"""`meetreg retry` of a big batch: every failed row back to `queued`, each sent once."""

from __future__ import annotations

from collections.abc import Iterable

import redis
from store_helpers import row

from jobs.enqueue import Chunk, requeue_failed
from worker.models import RowState
from worker.store.core import READ_PAGE
from worker.store.outcome_store import OutcomeStore


def test_retry_puts_back_the_failed_rows_of_every_page_before_sending_their_chunks(
    redis_client: redis.Redis,
) -> None:
    store = OutcomeStore(redis_client)
    total = 2 * READ_PAGE + 10  # three pages of rows
    failed = {seq for seq in range(1, total + 1) if seq % 3 == 0}
    store.create_batch(
        "b",
        "f.csv",
        (
            row(seq, RowState.FAILED if seq in failed else RowState.CREATED)
            for seq in range(1, total + 1)
        ),
    )
    sent: list[int] = []

    def publish(chunks: Iterable[Chunk]) -> int:
        count = 0
        for batch_id, start, stop in chunks:
            # What a worker taking this message at once would find: its rows queued.
            rows = store.rows(batch_id, range(start, stop))
            sent.extend(r.seq for r in rows if r is not None and r.status is RowState.QUEUED)
            assert all(r is not None and r.status is not RowState.FAILED for r in rows)
            count += 1
        return count

    assert requeue_failed(store, "b", publish=publish) == len(failed)
    assert sorted(sent) == sorted(failed)  # each failed row in exactly one chunk
    status = store.batch_status("b")
    assert (status.counts["queued"], status.counts["failed"]) == (len(failed), 0)
    assert status.counts["created"] == total - len(failed)
