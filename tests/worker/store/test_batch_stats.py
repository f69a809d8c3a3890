"""The outcome store's per-batch stats (the status page's): failures by how, rows over time."""

from __future__ import annotations

import pytest
import redis
from store_helpers import row

from worker.models import RowRecord, RowState
from worker.store.outcome_store import OutcomeStore
from worker.store.pausing import CANCELLED_REASON
from worker.store.records import FailureGroup


def failed(seq: int, http_status: int | None, error: str) -> RowRecord:
    record = row(seq, RowState.FAILED)
    record.http_status = http_status
    record.error = error
    return record


@pytest.fixture
def store(redis_client: redis.Redis) -> OutcomeStore:
    return OutcomeStore(redis_client)


def test_failed_rows_are_grouped_by_status_and_graph_code(store: OutcomeStore) -> None:
    store.create_batch("b1", "f.csv", [row(seq) for seq in range(1, 6)])
    store.save_row("b1", failed(1, 404, "NotFound: The requested online meeting was not found."))
    store.save_row("b1", failed(2, 404, "NotFound: Organizer Id mismatch"))
    store.save_row("b1", failed(3, 403, "Forbidden: No application access policy."))
    store.save_row("b1", failed(4, None, "the request timed out after 30 s"))
    store.save_row("b1", row(5, RowState.CREATED))

    assert store.batch_stats("b1").failures == [
        FailureGroup("404", "NotFound", 2),
        FailureGroup("-", "the request timed out after 30 s", 1),
        FailureGroup("403", "Forbidden", 1),
    ]


def test_a_failed_row_sent_again_leaves_its_group(store: OutcomeStore) -> None:
    store.create_batch("b1", "f.csv", [row(1), row(2)])
    store.save_row("b1", failed(1, 404, "NotFound: gone"))
    store.save_row("b1", failed(2, 403, "Forbidden: no policy"))

    store.save_row("b1", row(1), overwrite_final=True)  # what `meetreg retry` does

    assert store.batch_stats("b1").failures == [FailureGroup("403", "Forbidden", 1)]
    store.save_row("b1", failed(1, 403, "Forbidden: no policy"))
    assert store.batch_stats("b1").failures == [FailureGroup("403", "Forbidden", 2)]


def test_cancelled_rows_are_a_group_of_their_own(store: OutcomeStore) -> None:
    store.create_batch("b1", "f.csv", [row(1), row(2)])
    store.cancel_batch("b1")
    assert store.batch_stats("b1").failures == [FailureGroup("-", CANCELLED_REASON, 2)]


def test_rows_are_counted_once_per_time_they_become_final(store: OutcomeStore) -> None:
    # Rows final on arrival (invalid, duplicates) were never worked on: not counted.
    store.create_batch("b1", "f.csv", [row(1), row(2), row(3, RowState.INVALID)])
    store.save_row("b1", row(1, RowState.RUNNING))
    store.save_row("b1", row(1, RowState.CREATED))
    store.save_row("b1", failed(2, 404, "NotFound: gone"))
    store.save_row("b1", row(2), overwrite_final=True)
    store.save_row("b1", row(2, RowState.CREATED))

    finished = store.batch_stats("b1").finished_per_10s
    assert sum(rows for _, rows in finished) == 3
    start = store.row("b1", 2).updated_at  # type: ignore[union-attr]
    assert finished[-1][0] == start[:18] + "0Z"  # the 10 s it finished in


def test_recent_batches_are_newest_first_and_skip_expired_ones(
    store: OutcomeStore, redis_client: redis.Redis
) -> None:
    for batch_id in ("first", "second", "third"):
        store.create_batch(batch_id, "f.csv", [row(1)])
    redis_client.delete("meetreg:batch:second")  # as if it had expired

    assert [status.batch_id for status in store.recent_batches(10)] == ["third", "first"]
    assert [status.batch_id for status in store.recent_batches(1)] == ["third"]


def test_a_long_message_is_cut_yet_still_read(store: OutcomeStore) -> None:
    store.create_batch("b1", "f.csv", [row(1)])
    store.save_row("b1", failed(1, None, "é" * 100))  # 200 bytes: cut inside a character
    (group,) = store.batch_stats("b1").failures
    assert group.code.startswith("é" * 59)
    assert group.rows == 1
