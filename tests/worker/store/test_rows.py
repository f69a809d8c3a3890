"""Rows: every change of state moves the batch's counters with it."""

import redis
from store_helpers import row

from worker import keys
from worker.models import RowState
from worker.store.outcome_store import OutcomeStore
from worker.store.records import Ending


def test_every_transition_moves_the_counters_so_they_always_add_up(store: OutcomeStore) -> None:
    store.create_batch("b1", "f.csv", [row(1), row(2)])
    for state in (RowState.RUNNING, RowState.RETRYING, RowState.RUNNING, RowState.CREATED):
        record = store.row("b1", 1)
        assert record is not None
        record.status = state
        assert store.save_row("b1", record)
        status = store.batch_status("b1")
        assert sum(status.counts.values()) == 2
        assert status.counts[state] == 1
    second = row(2, RowState.FAILED)
    store.save_row("b1", second)
    assert store.batch_status("b1").finished


def test_a_final_row_is_not_overwritten_by_a_stale_worker(store: OutcomeStore) -> None:
    store.create_batch("b1", "f.csv", [row(1)])
    store.save_row("b1", row(1, RowState.CREATED))
    assert not store.save_row("b1", row(1, RowState.RUNNING))
    assert store.batch_status("b1").counts["created"] == 1
    assert store.save_row("b1", row(1, RowState.QUEUED), overwrite_final=True)  # retry does
    assert store.batch_status("b1").counts["queued"] == 1


def test_rows_read_back_in_input_order_across_pages(store: OutcomeStore) -> None:
    store.create_batch("big", "f.csv", (row(seq) for seq in range(1, 2502)))
    seqs = [r.seq for r in store.iter_rows("big", 2501)]
    assert seqs == list(range(1, 2502))


def test_rows_leave_the_working_set_as_they_leave_work_and_it_expires_with_the_batch(
    store: OutcomeStore, redis_client: redis.Redis
) -> None:
    store.create_batch("b1", "f.csv", [row(1), row(2)])
    store.claim("b1", row(1), "m1", "a", 10_000)
    store.save_row("b1", row(2, RowState.RETRYING))
    assert redis_client.zcard(keys.working("b1")) == 2
    assert 2 * 86_400 - 5 < redis_client.ttl(keys.working("b1")) <= 2 * 86_400
    store.finish("b1", Ending(row=row(1, RowState.CREATED)))
    store.save_row("b1", row(2, RowState.QUEUED))  # a paused batch puts its row back
    assert not redis_client.exists(keys.working("b1"))  # finished rows keep no key
    store.claim("b1", row(2), "m2", "a", 10_000)
    store.delete_batch("b1")
    assert not redis_client.exists(keys.working("b1"))
