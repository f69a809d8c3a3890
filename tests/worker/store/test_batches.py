"""Batches: their counters, retention and stalls."""

import pytest
import redis
from cli_helpers import wait_until
from store_helpers import row

from worker import keys
from worker.errors import UnknownBatchError
from worker.models import RowState
from worker.store.outcome_store import OutcomeStore
from worker.store.records import Claim, Ending


def test_new_batch_counts_rows_by_their_starting_state(store: OutcomeStore) -> None:
    total = store.create_batch(
        "b1", "f.csv", [row(1), row(2), row(3, RowState.INVALID), row(4, RowState.SKIPPED)]
    )
    status = store.batch_status("b1")
    assert total == status.total == 4
    assert status.counts["queued"] == 2
    assert status.counts["invalid"] == status.counts["skipped"] == 1
    assert not status.finished


def test_batch_and_rows_expire_after_the_retention(
    store: OutcomeStore, redis_client: redis.Redis
) -> None:
    store.create_batch("b1", "f.csv", [row(1)])
    for key in (keys.batch("b1"), keys.rows("b1")):
        assert 2 * 86_400 - 5 < redis_client.ttl(key) <= 2 * 86_400


def test_unknown_batch_is_an_error_naming_it(store: OutcomeStore) -> None:
    with pytest.raises(UnknownBatchError, match="nope"):
        store.batch_status("nope")


# Stalls: rows in workers' hands that stop moving. A short window on Redis' own clock.
STALL_AFTER_S = 0.3


@pytest.fixture
def watched(redis_client: redis.Redis) -> OutcomeStore:
    return OutcomeStore(redis_client, stall_after_s=STALL_AFTER_S)


def wait_stalled(store: OutcomeStore, batch_id: str) -> None:
    wait_until(
        lambda: store.batch_status(batch_id).stalled, timeout_s=10, what=f"{batch_id} stalled"
    )


def test_rows_claimed_and_left_stall_their_batch_once_the_window_passes(
    watched: OutcomeStore,
) -> None:
    watched.create_batch("left", "f.csv", [row(1), row(2), row(3)])
    for seq in (1, 2):  # leases taken, and nobody renews them or finishes the rows
        assert watched.claim("left", row(seq), f"m{seq}", "gone", 10_000)[0] is Claim.CLAIMED
    fresh = watched.batch_status("left")
    assert fresh.working == 2 and not fresh.stalled
    assert fresh.oldest_running_s is not None and fresh.oldest_running_s < STALL_AFTER_S

    wait_stalled(watched, "left")
    status = watched.batch_status("left")
    assert status.oldest_running_s is not None and status.oldest_running_s > STALL_AFTER_S
    assert status.since_progress_s is not None and status.since_progress_s > STALL_AFTER_S
    shown = status.to_json_dict()
    assert shown["stalled"] is True
    assert shown["oldest_running_s"] >= STALL_AFTER_S  # in tenths of a second
    assert shown["last_progress_at"].endswith("Z")
    assert shown["finished"] is False and shown["counts"]["running"] == 2  # as before
    # Taking a row up again without ever finishing it (a sweeper's re-send, say) is not
    # progress: the row stays running, and the batch stalled.
    assert watched.claim("left", row(1), "m1", "gone", 10_000)[0] is Claim.CLAIMED
    assert watched.batch_status("left").stalled


def test_a_row_that_moves_ends_the_stall_and_the_oldest_row_is_the_one_left_longest(
    watched: OutcomeStore,
) -> None:
    watched.create_batch("b", "f.csv", [row(1), row(2)])
    watched.claim("b", row(1), "m1", "a", 10_000)
    wait_stalled(watched, "b")
    left_s = watched.batch_status("b").oldest_running_s
    assert left_s is not None

    watched.claim("b", row(2), "m2", "b", 10_000)  # the batch moves
    moved = watched.batch_status("b")
    assert not moved.stalled
    assert moved.since_progress_s is not None and moved.since_progress_s < STALL_AFTER_S
    assert moved.oldest_running_s is not None and moved.oldest_running_s >= left_s  # row 1

    watched.finish("b", Ending(row=row(1, RowState.CREATED)))
    after = watched.batch_status("b")
    assert after.oldest_running_s is not None and after.oldest_running_s < left_s  # row 2
    assert not after.stalled


def test_a_batch_only_queued_or_paused_does_not_stall(watched: OutcomeStore) -> None:
    watched.create_batch("waiting", "f.csv", [row(1)])  # behind another batch, say
    watched.create_batch("paused", "f.csv", [row(1), row(2)])
    watched.claim("paused", row(1), "m1", "a", 10_000)
    watched.pause_batch("paused", "the operator said so")

    def quiet_past_the_window() -> bool:
        since = [watched.batch_status(b).since_progress_s for b in ("waiting", "paused")]
        return all(s is not None and s > STALL_AFTER_S * 2 for s in since)

    wait_until(quiet_past_the_window, timeout_s=10, what="both batches quiet")
    for batch_id in ("waiting", "paused"):
        status = watched.batch_status(batch_id)
        assert not status.stalled and status.to_json_dict()["stalled"] is False, batch_id
    assert watched.batch_status("waiting").oldest_running_s is None
