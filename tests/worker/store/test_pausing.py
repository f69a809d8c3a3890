"""Pausing: the safety valve, unpausing and cancelling."""

import pytest
import redis
from store_helpers import row

from worker.errors import InputError
from worker.models import RowState
from worker.store.outcome_store import OutcomeStore
from worker.store.records import Claim, Ending


def fail_rows(store: OutcomeStore, seqs: range, signature: str, users: int) -> list[bool]:
    """Finish rows as failed with `signature`, their organizers taken in turn from `users`."""
    paused = []
    for seq in seqs:
        failed = row(seq, RowState.FAILED)
        failed.user_id = f"user-{seq % users}"
        failed.error = "Forbidden: No Application Access Policy found for this app"
        paused.append(
            store.finish("v", Ending(row=failed, signature=signature, user_id=failed.user_id))[1]
        )
    return paused


@pytest.fixture
def valve_store(redis_client: redis.Redis) -> OutcomeStore:
    store = OutcomeStore(redis_client, pause_after=5, pause_min_users=3)
    store.create_batch("v", "f.csv", [row(seq) for seq in range(1, 21)])
    return store


def test_the_same_failure_for_three_users_in_a_row_pauses_the_batch(
    valve_store: OutcomeStore,
) -> None:
    paused = fail_rows(valve_store, range(1, 7), "403 Forbidden", users=3)
    assert paused == [False, False, False, False, True, False]  # the fifth trips it, once
    status = valve_store.batch_status("v")
    assert status.paused.startswith("the last 5 rows that reached Graph, for 3 users")
    assert "No Application Access Policy" in status.paused
    assert status.to_json_dict()["paused"] is True
    claim, _, _ = valve_store.claim("v", row(10), "m10", "t", 10_000)
    assert claim is Claim.PAUSED
    assert valve_store.row("v", 10).status is RowState.QUEUED  # left for `resume`


@pytest.mark.parametrize(
    ("setup", "why"),
    [
        (lambda s: fail_rows(s, range(1, 7), "403 Forbidden", users=2), "two users"),
        (
            lambda s: [
                fail_rows(s, range(1, 4), "403 Forbidden", 3),
                fail_rows(s, range(4, 7), "404 NotFound", 3),
            ],
            "mixed",
        ),
    ],
)
def test_failures_of_few_users_or_of_different_kinds_do_not_pause(
    valve_store: OutcomeStore, setup, why
) -> None:
    setup(valve_store)
    assert valve_store.batch_status("v").paused == "", why


def test_a_success_in_between_starts_the_count_again(valve_store: OutcomeStore) -> None:
    fail_rows(valve_store, range(1, 5), "403 Forbidden", users=3)
    valve_store.finish("v", Ending(row=row(5, RowState.CREATED), signature="ok", user_id="u"))
    assert fail_rows(valve_store, range(6, 10), "403 Forbidden", users=3) == [False] * 4
    assert fail_rows(valve_store, range(10, 11), "403 Forbidden", users=3) == [True]


def test_unpausing_lets_rows_be_claimed_and_forgets_the_failures(valve_store: OutcomeStore) -> None:
    assert not valve_store.is_paused("v")
    fail_rows(valve_store, range(1, 6), "403 Forbidden", users=3)
    assert valve_store.is_paused("v")
    valve_store.unpause_batch("v")
    assert valve_store.batch_status("v").paused == ""
    assert not valve_store.is_paused("v")
    assert valve_store.claim("v", row(10), "m10", "t", 10_000)[0] is Claim.CLAIMED
    assert fail_rows(valve_store, range(11, 15), "403 Forbidden", users=3) == [False] * 4


def test_cancelling_ends_waiting_rows_now_and_running_ones_when_taken_up(
    valve_store: OutcomeStore,
) -> None:
    assert valve_store.claim("v", row(1), "m1", "t", 10_000)[0] is Claim.CLAIMED  # running
    assert valve_store.cancel_batch("v") == 19
    status = valve_store.batch_status("v")
    assert (status.counts["failed"], status.counts["running"], status.cancelled) == (19, 1, True)
    assert status.to_json_dict()["paused"] is False  # cancelled, not paused
    # A worker taking row 1 up again (its first one died) ends it too.
    assert valve_store.claim("v", row(1), "m1", "t2", 10_000)[0] is Claim.ROW_FINAL
    ended = valve_store.row("v", 1)
    assert ended.status is RowState.FAILED and ended.error == "cancelled by the operator"
    assert valve_store.batch_status("v").finished
    with pytest.raises(InputError):
        valve_store.unpause_batch("v")
